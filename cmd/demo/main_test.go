package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

var transition = regexp.MustCompile(`^\S+ (\S+) (leads|stopped leading) (\S+), term (\d+)$`)

// transcript turns the demo's lines into a ledger per component.
type transcript struct {
	mu    sync.Mutex
	led   map[string]*leadertest.Ledger
	lines []string
}

func newTranscript() *transcript { return &transcript{led: map[string]*leadertest.Ledger{}} }

func (tr *transcript) ledger(component string) *leadertest.Ledger {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.led[component] == nil {
		tr.led[component] = leadertest.New()
	}
	return tr.led[component]
}

func (tr *transcript) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		tr.record(sc.Text())
	}
}

// record notes one line of output.
func (tr *transcript) record(line string) {
	tr.mu.Lock()
	tr.lines = append(tr.lines, line)
	tr.mu.Unlock()
	m := transition.FindStringSubmatch(line)
	if m == nil {
		return
	}
	var token int32
	fmt.Sscan(m[4], &token)
	if m[2] == "leads" {
		tr.ledger(m[3]).Begin(m[1], token)
	} else {
		tr.ledger(m[3]).End(m[1])
	}
}

func (tr *transcript) text() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

// TestDemoInMemory runs the demo without a cluster long enough for a
// graceful stop, a crash and their recoveries, and checks its log: one
// leader per component at a time, hand-over at once after the graceful
// stop, and only after the lease after the crash.
func TestDemoInMemory(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr, pw := io.Pipe()
	tr := newTranscript()
	read := make(chan struct{})
	go func() { defer close(read); tr.read(pr) }()
	ctx, cancel := context.WithTimeout(context.Background(), 16*time.Second)
	defer cancel()
	err := run(ctx, options{replicas: 3, components: 4}, nil, pw)
	require.NoError(t, err)
	pw.Close()
	<-read
	out := tr.text()
	t.Log("\n" + out)
	assert.Contains(t, out, "stops gracefully")
	assert.Contains(t, out, "crashes")
	assert.Contains(t, out, "starts again")
	assert.Contains(t, out, "demo: stopped; every lease released")
	assert.Contains(t, out, " over → ", "placement's moves show in the log (a replica that starts again is given its share)")
	for _, n := range names(4) {
		l := tr.ledger(n)
		l.Check(t)
		assert.GreaterOrEqual(t, l.Ended(), 2, "%s changed hands", n)
		assert.Empty(t, l.Leaders(), "%s's work stopped at the end", n)
	}
	// Hand-over times, from the timestamps in the log.
	graceful := handOver(t, out, "stops gracefully")
	assert.Less(t, graceful, time.Second, "after a graceful stop a standby leads at once")
	crash := handOver(t, out, "crashes")
	// From the last renewal a standby saw, which a loaded machine can
	// delay by a second or so: well above the hand-over, below the lease.
	assert.Greater(t, crash, time.Second, "after a crash standbys wait for the lease (3s) from the last renewal they saw")
	assert.Less(t, crash, 4*time.Second)
}

// handOver is the time from the fault line containing fault to the next
// "leads" line.
func handOver(t *testing.T, out, fault string) time.Duration {
	t.Helper()
	var at time.Time
	for _, line := range strings.Split(out, "\n") {
		stamp, rest, _ := strings.Cut(line, " ")
		ts, err := time.Parse("15:04:05.000", stamp)
		if err != nil {
			continue
		}
		if at.IsZero() {
			if strings.Contains(rest, fault) {
				at = ts
			}
			continue
		}
		if strings.Contains(rest, " leads ") {
			return ts.Sub(at)
		}
	}
	t.Fatalf("no hand-over after %q", fault)
	return 0
}

// TestDemoOnRealAPIServer runs three demo processes on Leases: one leaves
// early, gracefully; each component has one leader at a time, changes
// hands when the first process leaves, and every lease is released at
// the end.
func TestDemoOnRealAPIServer(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kubeconfig := kubetest.Kubeconfig(t)
	bin := proctest.Build(t, ".")
	tr := newTranscript()
	start := func(id string, d time.Duration) *proctest.Process {
		return proctest.Start(t, id, tr.record, []string{"TENURE_NAMESPACE=" + ns, "TENURE_IDENTITY=" + id},
			bin, "--kubeconfig", kubeconfig, "--plain", "--components", "3", "--duration", d.String())
	}
	procs := []*proctest.Process{start("p1", 7*time.Second)} // first, so it leads; leaves early
	time.Sleep(500 * time.Millisecond)
	procs = append(procs, start("p2", 12*time.Second), start("p3", 12*time.Second))
	for _, p := range procs {
		assert.NoError(t, p.Wait(t, 30*time.Second), "%s exits 0", p.Name)
	}
	t.Log("\n" + tr.text())
	led := tr.checkLedgers(t, names(3))
	for _, n := range names(3) {
		assert.GreaterOrEqual(t, led[n].Ended(), 2, "%s changed hands when p1 left", n)
		assert.Empty(t, led[n].Leaders(), "%s's work stopped at the end", n)
		lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), n, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, *lease.Spec.HolderIdentity, "%s released at the end", n)
	}
}
