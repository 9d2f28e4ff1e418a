package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/internal/proctest"
	"github.com/tenure/tenure/locks"
)

// shares counts, per process, the components whose leader work runs now,
// and says whether every component has exactly one leader.
func (tr *transcript) shares(components []string) (map[string]int, bool) {
	count := map[string]int{}
	ok := true
	for _, c := range components {
		who := tr.ledger(c).Leaders()
		if len(who) != 1 {
			ok = false
			continue
		}
		count[who[0]]++
	}
	return count, ok
}

// waitShares waits up to timeout for every component to have one leader
// and the processes to lead as many as want says, and returns how long
// that took.
func (tr *transcript) waitShares(t *testing.T, components []string, want map[string]int, timeout time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		got, ok := tr.shares(components)
		if ok && assert.ObjectsAreEqual(want, got) {
			return time.Since(began)
		}
		if time.Since(began) > timeout {
			t.Fatalf("the shares are %v (every component led: %v), not %v, %v on; output:\n%s", got, ok, want, timeout, tr.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	moveLine    = regexp.MustCompile(`^(\S+) (\S+) handed (\S+) over → (\S+)$`)
	leadsLine   = regexp.MustCompile(`^(\S+) (\S+) leads (\S+), term \d+$`)
	stoppedLine = regexp.MustCompile(`^(\S+) (\S+) stopped leading (\S+), term \d+$`)
)

// move is one "→" line of the demo's log.
type move struct{ from, component, to string }

// byStamp is the log's lines in the order of their time stamps: the
// processes' lines reach the test through a pipe each, and one of them can
// be read late.
func (tr *transcript) byStamp() []string {
	tr.mu.Lock()
	lines := append([]string(nil), tr.lines...)
	tr.mu.Unlock()
	stamp := func(line string) string { return line[:min(len(line), len("15:04:05.000"))] }
	slices.SortStableFunc(lines, func(a, b string) int { return strings.Compare(stamp(a), stamp(b)) })
	return lines
}

// checkLedgers checks each component's terms as the processes' clock saw
// them (one machine's): the ledgers replayed from the lines in the order
// of their time stamps, rather than as they arrived. It returns the
// replayed ledgers.
func (tr *transcript) checkLedgers(t *testing.T, components []string) map[string]*leadertest.Ledger {
	t.Helper()
	replay := newTranscript()
	for _, line := range tr.byStamp() {
		replay.record(line)
	}
	out := map[string]*leadertest.Ledger{}
	for _, c := range components {
		out[c] = replay.ledger(c)
		out[c].Check(t)
	}
	return out
}

// checkMoves returns the moves in the log and checks that each went where
// its "→" said: the next to lead the component after its leader stopped
// (by the lines' time stamps) is the replica it was handed to.
func (tr *transcript) checkMoves(t *testing.T) []move {
	t.Helper()
	lines := tr.byStamp()
	var moves []move
	for i, line := range lines {
		m := moveLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		mv := move{from: m[2], component: m[3], to: m[4]}
		moves = append(moves, mv)
		stopped := -1
		for j := i - 1; j >= 0 && stopped < 0; j-- {
			if s := stoppedLine.FindStringSubmatch(lines[j]); s != nil && s[2] == mv.from && s[3] == mv.component {
				stopped = j
			}
		}
		if !assert.GreaterOrEqual(t, stopped, 0, "%q: %s stopped leading %s before", line, mv.from, mv.component) {
			continue
		}
		next := ""
		for _, later := range lines[stopped+1:] {
			if l := leadsLine.FindStringSubmatch(later); l != nil && l[3] == mv.component {
				next = l[2]
				break
			}
		}
		// A leadership handed to a replica that is stopping is not taken,
		// and comes back to its leader only after a take-back wait.
		assert.Equal(t, mv.to, next, "%q: the next to lead %s (the replica it was handed to did not take it)", line, mv.component)
	}
	return moves
}

// TestDemoPlacementOnRealAPIServer runs three demo processes on Leases
// with placement on (the demo's default), 6 components, started 0.3 s
// apart: they end up leading 2 each, through moves that the log shows
// ("→" and each process's share); when one stops gracefully its
// leaderships move to the two others, 3 each, and to the last one when
// the second stops; each component has one leader at a time and every
// lease is released at the end.
func TestDemoPlacementOnRealAPIServer(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kubeconfig := kubetest.Kubeconfig(t)
	bin := proctest.Build(t, ".")
	const n = 6
	comps := names(n)
	tr := newTranscript()
	start := func(id string) *proctest.Process {
		// The test stops each with SIGTERM; --duration only bounds a
		// process the test lost.
		return proctest.Start(t, id, tr.record, []string{"TENURE_NAMESPACE=" + ns, "TENURE_IDENTITY=" + id},
			bin, "--kubeconfig", kubeconfig, "--plain", "--components", "6", "--duration", "60s")
	}
	stop := func(p *proctest.Process) {
		t.Helper()
		require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, p.Wait(t, 15*time.Second), "%s exits 0 after SIGTERM", p.Name)
	}
	p1 := start("p1")
	time.Sleep(300 * time.Millisecond)
	p2 := start("p2")
	time.Sleep(300 * time.Millisecond)
	p3 := start("p3")

	// The Leases are new: the first leader waits a lease (3 s), then
	// placement spreads the components.
	took := tr.waitShares(t, comps, map[string]int{"p1": 2, "p2": 2, "p3": 2}, 12*time.Second)
	t.Logf("2/2/2 %v after the last start", took.Round(time.Millisecond))
	spread := tr.checkMoves(t)
	assert.NotEmpty(t, spread, "the spreading shows as moves (→)")
	time.Sleep(time.Second)
	got, _ := tr.shares(comps)
	assert.Equal(t, map[string]int{"p1": 2, "p2": 2, "p3": 2}, got, "the shares stay put once balanced")
	for _, p := range []*proctest.Process{p1, p2, p3} {
		p.WaitFor(t, p.Name+" share 2/6", 2*time.Second)
	}

	// p3 leaves gracefully: its two leaderships move to the others.
	stop(p3)
	took = tr.waitShares(t, comps, map[string]int{"p1": 3, "p2": 3}, 5*time.Second)
	t.Logf("3/3 %v after p3 exited", took.Round(time.Millisecond))
	for _, p := range []*proctest.Process{p1, p2} {
		p.WaitFor(t, p.Name+" share 3/6", 2*time.Second)
	}
	fromP3 := 0
	for _, mv := range tr.checkMoves(t) {
		if mv.from == "p3" {
			fromP3++
			assert.Contains(t, []string{"p1", "p2"}, mv.to)
		}
	}
	assert.Equal(t, 2, fromP3, "p3's two leaderships are handed over (→) as it stops")

	// Then p1: p2, the last, leads everything; then p2, releasing.
	stop(p1)
	tr.waitShares(t, comps, map[string]int{"p2": 6}, 5*time.Second)
	p2.WaitFor(t, "p2 share 6/6", 2*time.Second)
	stop(p2)
	p2.WaitFor(t, "p2 share 0/6", time.Second)

	t.Log("\n" + tr.text())
	tr.checkMoves(t)
	tr.checkLedgers(t, comps)
	for _, c := range comps {
		assert.Empty(t, tr.ledger(c).Leaders(), "%s's work stopped at the end", c)
		lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), c, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, *lease.Spec.HolderIdentity, "%s released at the end", c)
	}
}

// TestRenderCluster checks the live view of --kubeconfig mode: each
// replica's share, as this one sees the leaders, and the "→" of a move
// under way.
func TestRenderCluster(t *testing.T) {
	status := []framework.ComponentStatus{
		{Name: "billing", Lock: "Lease ns/billing", Leading: true, Leader: "p1", HandOverTo: "p2",
			Term: election.Term{FencingToken: 4}, Observed: true, Record: locks.Record{HolderIdentity: "p1", LeaderTransitions: 4}},
		{Name: "reports", Lock: "Lease ns/reports", Leading: true, Leader: "p1",
			Term: election.Term{FencingToken: 1}, Observed: true, Record: locks.Record{HolderIdentity: "p1", LeaderTransitions: 1}},
		{Name: "mailer", Lock: "Lease ns/mailer", Leader: "p2", Observed: true, Record: locks.Record{HolderIdentity: "p2", LeaderTransitions: 2}},
		{Name: "indexer", Lock: "Lease ns/indexer"},
	}
	out := renderCluster("p1", status, []string{"12:00:00.000 p2 leads mailer, term 2"})
	t.Log("\n" + out)
	for _, want := range []string{
		`^(\x1b\[H\x1b\[2J)?tenure demo: replica p1 on Leases, leading 2/4 `,
		`^COMPONENT +LEADER +TERM +LOCK$`,
		`^billing +p1 \(us\) → p2 +4 Lease ns/billing$`,
		`^reports +p1 \(us\) +1 Lease ns/reports$`,
		`^mailer +p2 +2 Lease ns/mailer$`,
		`^indexer +\(none\) +- Lease ns/indexer$`,
		`^REPLICA +SHARE +LEADS$`,
		`^p1 \(us\) +2/4 billing \(term 4 → p2\), reports \(term 1\)$`,
		`^p2 +1/4 mailer$`,
		`^  12:00:00.000 p2 leads mailer, term 2$`,
	} {
		assert.Regexp(t, regexp.MustCompile(`(?m)`+want), out)
	}

	// A replica that leads nothing is a standby, and sees the others.
	out = renderCluster("p3", status[2:], nil)
	assert.Regexp(t, regexp.MustCompile(`(?m)^p3 \(us\) +0/2 standby$`), out)
	assert.Regexp(t, regexp.MustCompile(`(?m)^p2 +1/2 mailer$`), out)
}
