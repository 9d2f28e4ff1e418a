package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tenure/tenure/control"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

// kubectlTenure runs the kubectl-tenure binary bin against the test API
// server, in namespace ns, bounded by a minute.
type kubectlTenure struct {
	bin, kubeconfig, ns string
}

type result struct {
	out, err string
	code     int
}

func (k kubectlTenure) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.kubeconfig, "-n", k.ns}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{out: out.String(), err: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err, "kubectl-tenure %v", args)
	}
	t.Logf("$ kubectl tenure %s\n%s%s(exit %d)", strings.Join(args, " "), r.out, r.err, r.code)
	return r
}

// leaderOf is the replica whose work leads component now, per the log.
func (tr *transcript) leaderOf(t *testing.T, component string) string {
	t.Helper()
	who := tr.ledger(component).Leaders()
	require.Len(t, who, 1, "%s has one leader", component)
	return who[0]
}

// startDemos starts a demo process (bin) of each identity in ns on Leases
// with n components, 0.3 s apart, recording their lines in tr. The test
// stops them; --duration bounds a process the test lost.
func startDemos(t *testing.T, tr *transcript, bin, kubeconfig, ns string, n int, ids ...string) map[string]*proctest.Process {
	t.Helper()
	procs := map[string]*proctest.Process{}
	for _, id := range ids {
		procs[id] = proctest.Start(t, id, tr.record, []string{"TENURE_NAMESPACE=" + ns, "TENURE_IDENTITY=" + id},
			bin, "--kubeconfig", kubeconfig, "--plain", "--components", fmt.Sprint(n), "--duration", "120s")
		time.Sleep(300 * time.Millisecond)
	}
	return procs
}

// forget ends the terms of process id, killed: its work stopped with it.
// The log gets a "stopped leading" line for each, as if id had written
// it, so that the ledgers replayed from the log (checkLedgers) end them too.
func (tr *transcript) forget(id string) {
	tr.mu.Lock()
	var led []string
	for c, l := range tr.led {
		if slices.Contains(l.Leaders(), id) {
			led = append(led, c)
		}
	}
	tr.mu.Unlock()
	for _, c := range led {
		tr.record(time.Now().Format("15:04:05.000") + " " + id + " stopped leading " + c + ", term 0")
	}
}

// grantOperatorRole binds deploy/operator's tenure-operator ClusterRole to
// user in ns.
func grantOperatorRole(t *testing.T, cs kubernetes.Interface, ns, user string) {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/operator/rbac.yaml")
	require.NoError(t, err)
	ctx := context.Background()
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var role rbacv1.ClusterRole
		require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &role))
		role.Name += "-" + ns // cluster-wide objects: one per test namespace
		_, err := cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{}) })
	}
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenure-operator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "tenure-operator-" + ns},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// TestKubectlTenureOnDemoProcesses runs kubectl-tenure against three demo
// processes on Leases with placement on (6 components, 2 each), as an
// operator bound to deploy/operator's Role: status as tables and JSON;
// move (a planned hand-over in milliseconds); two moves of one component at
// once; cordon and uncordon; drain; a move to a replica killed just
// before; and bad input, each a one-line error and exit 1. The log's
// ledgers show one leader per component at a time throughout.
func TestKubectlTenureOnDemoProcesses(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kubeconfig := kubetest.Kubeconfig(t)
	demo := proctest.Build(t, ".")
	kt := kubectlTenure{bin: proctest.Build(t, "../kubectl-tenure"), kubeconfig: kubeconfig, ns: ns}
	grantOperatorRole(t, cs, ns, "operator")
	op := func(args ...string) result { return kt.run(t, append([]string{"--as", "operator"}, args...)...) }

	comps := names(6)
	tr := newTranscript()
	procs := startDemos(t, tr, demo, kubeconfig, ns, len(comps), "p1", "p2", "p3")
	even := map[string]int{"p1": 2, "p2": 2, "p3": 2}
	tr.waitShares(t, comps, even, 15*time.Second)

	// status, as tables.
	r := op("status")
	require.Zero(t, r.code, r.err)
	for _, c := range comps {
		assert.Regexp(t, regexp.MustCompile(`(?m)^`+c+` +lease +`+tr.leaderOf(t, c)+` +\d+ +\S+ +\S+ ago +- +- +p1,p2,p3$`), r.out)
	}
	for _, id := range []string{"p1", "p2", "p3"} {
		assert.Regexp(t, regexp.MustCompile(`(?m)^`+id+` +demo +\S+ +2/6 +\S+ +- +- +ready$`), r.out)
	}
	assert.Regexp(t, regexp.MustCompile(`(?m)^tenure-placement-demo +lease +p\d \(placement coordinator\) `), r.out)

	// status, as JSON.
	r = op("status", "-o", "json")
	require.Zero(t, r.code, r.err)
	var st struct {
		APIVersion, Kind string
		control.Status
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &st))
	assert.Equal(t, "tenure.dev/v1alpha1", st.APIVersion)
	assert.Equal(t, "Status", st.Kind)
	assert.Len(t, st.Elections, 7, "6 components and the placement coordinator")
	require.Len(t, st.Members, 3)
	for _, m := range st.Members {
		assert.Len(t, m.Leads, 2, "%s leads 2", m.Identity)
		assert.Len(t, m.Components, 6)
	}

	// pause: the group's placement is frozen: a cordon moves nothing, and
	// the moves below are the operator's alone, until resume.
	r = op("pause")
	require.Zero(t, r.code, r.err)
	assert.Equal(t, "placement of group demo paused\n", r.out)
	time.Sleep(1500 * time.Millisecond) // the coordinator's next read of its Lease
	r = op("cordon", "p2")
	require.Zero(t, r.code, r.err)
	assert.Equal(t, "p2 cordoned\n", r.out)
	assert.Equal(t, "p2 already cordoned\n", op("cordon", "p2").out)
	time.Sleep(2 * time.Second)
	got, _ := tr.shares(comps)
	assert.Equal(t, even, got, "nothing moves while placement is paused")
	r = op("status")
	assert.Regexp(t, regexp.MustCompile(`(?m)^tenure-placement-demo +lease +p\d \(placement coordinator\) +\d+ +\S+ +\S+ ago +- +group `), r.out)
	assert.Regexp(t, regexp.MustCompile(`(?m)^`+comps[0]+` +lease .* group +p1,p2,p3$`), r.out)
	assert.Regexp(t, regexp.MustCompile(`(?m)^p2 +demo +\S+ +2/6 .* cordoned$`), r.out)

	// move: a component of p1's to p3, seen by status --watch.
	var c1 string
	for _, c := range comps {
		if tr.leaderOf(t, c) == "p1" {
			c1 = c
			break
		}
	}
	watching := proctest.Start(t, "watch", nil, nil, kt.bin, "--kubeconfig", kubeconfig, "-n", ns, "--as", "operator", "status", "--watch")
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(watching.Lines(), func(l string) bool { return strings.HasPrefix(l, "REPLICA") })
	}, 10*time.Second, 10*time.Millisecond, "status --watch prints the status")
	r = op("move", c1, "--to", "p3")
	require.Zero(t, r.code, r.err)
	movedRow := regexp.MustCompile(`^` + c1 + ` +lease +p3 `)
	require.Eventually(t, func() bool { return slices.ContainsFunc(watching.Lines(), movedRow.MatchString) },
		10*time.Second, 10*time.Millisecond, "status --watch prints the status again after the move")
	require.NoError(t, watching.Cmd.Process.Signal(os.Interrupt))
	require.NoError(t, watching.Wait(t, 5*time.Second), "status --watch exits 0 when interrupted")
	m := regexp.MustCompile(`^` + c1 + `: p1 → p3, term \d+, in (\S+) \(`).FindStringSubmatch(r.out)
	require.NotNil(t, m, "move prints what it did: %q", r.out)
	took, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	t.Logf("kubectl tenure move: %v from the request to p3's term", took)
	require.Eventually(t, func() bool {
		who := tr.ledger(c1).Leaders()
		return len(who) == 1 && who[0] == "p3"
	}, 5*time.Second, 10*time.Millisecond, "p3's work leads %s", c1)
	r = op("move", c1, "--to", "p3")
	require.Zero(t, r.code, r.err)
	assert.Contains(t, r.out, c1+": p3 leads it already", "a move to the leader does nothing")

	// Two moves of one component at once, to two replicas.
	var c2 string
	for _, c := range comps {
		if tr.leaderOf(t, c) == "p2" {
			c2 = c
			break
		}
	}
	var wg sync.WaitGroup
	results := map[string]result{}
	var mu sync.Mutex
	for _, to := range []string{"p1", "p3"} {
		wg.Go(func() {
			res := op("move", c2, "--to", to, "--timeout", "20s")
			mu.Lock()
			results[to] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	succeeded := 0
	for to, res := range results {
		if res.code == 0 {
			succeeded++
			continue
		}
		assert.Regexp(t, `^error: .*(moved elsewhere|its leader changed while it was being asked)`, res.err, "the move to %s lost the race, and says so", to)
	}
	assert.GreaterOrEqual(t, succeeded, 1, "one of two concurrent moves succeeds: %+v", results)

	// resume: the coordinator moves what the cordoned p2 still leads away
	// and evens the spread out; uncordon brings some back.
	r = op("resume")
	require.Zero(t, r.code, r.err)
	assert.Equal(t, "placement of group demo resumed\n", r.out)
	tr.waitShares(t, comps, map[string]int{"p1": 3, "p3": 3}, 15*time.Second)
	r = op("status")
	assert.Regexp(t, regexp.MustCompile(`(?m)^p2 +demo +- +0/6 .* cordoned$`), r.out)
	require.Zero(t, op("uncordon", "p2").code)
	tr.waitShares(t, comps, even, 15*time.Second)

	// pause COMPONENT: that one stays with its holder, the others move.
	var pinned string
	for _, c := range comps {
		if tr.leaderOf(t, c) == "p1" {
			pinned = c
			break
		}
	}
	r = op("pause", pinned)
	require.Zero(t, r.code, r.err)
	assert.Equal(t, "placement of "+pinned+" paused\n", r.out)
	time.Sleep(2 * time.Second) // the elections' next read of its lock
	require.Zero(t, op("cordon", "p1").code)
	require.Eventually(t, func() bool {
		got, ok := tr.shares(comps)
		return ok && got["p1"] == 1 && got["p2"]+got["p3"] == 5
	}, 15*time.Second, 20*time.Millisecond, "p1 keeps only %s", pinned)
	assert.Equal(t, "p1", tr.leaderOf(t, pinned))
	require.Zero(t, op("resume", pinned).code)
	require.Eventually(t, func() bool { got, ok := tr.shares(comps); return ok && got["p1"] == 0 }, 15*time.Second, 20*time.Millisecond,
		"resumed, %s leaves the cordoned p1", pinned)
	require.Zero(t, op("uncordon", "p1").code)
	tr.waitShares(t, comps, even, 15*time.Second)

	// drain p3: it leads nothing when drain returns.
	r = op("drain", "p3", "--timeout", "30s")
	require.Zero(t, r.code, r.err)
	assert.Regexp(t, `(?m)^p3 leads (nothing|no component) now`, r.out)
	got, ok := tr.shares(comps)
	assert.True(t, ok)
	assert.Zero(t, got["p3"], "p3 leads nothing after drain: %v", got)
	time.Sleep(time.Second)
	got, _ = tr.shares(comps)
	assert.Zero(t, got["p3"], "and nothing is given back to it while cordoned: %v", got)
	require.Zero(t, op("uncordon", "p3").code)
	tr.waitShares(t, comps, even, 15*time.Second)

	// Bad input.
	for _, bad := range []struct {
		args []string
		says string
	}{
		{[]string{"move", "nosuch", "--to", "p1"}, `error: unknown component "nosuch" in namespace ` + ns},
		{[]string{"move", c1, "--to", "nobody"}, `error: unknown replica "nobody" in namespace ` + ns + ` (replicas there: p1, p2, p3)`},
		{[]string{"move", c1}, `error: required flag(s) "to" not set`},
		{[]string{"cordon", "nobody"}, `error: unknown replica "nobody"`},
		{[]string{"status", "-n", kubetest.Namespace(t)}, `error: no leader elections in namespace`},
		{[]string{"move", c1, "--to", "p1", "-A"}, "error: -A/--all-namespaces applies to status only"},
	} {
		r := kt.run(t, bad.args...)
		assert.Equal(t, 1, r.code, "kubectl tenure %v exits 1", bad.args)
		assert.Empty(t, r.out)
		assert.Equal(t, 1, strings.Count(r.err, "\n"), "one line: %q", r.err)
		assert.Contains(t, r.err, bad.says)
	}
	r = kt.run(t, "--as", "nobody", "status")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, `error: forbidden: list leases in namespace `+ns+` needs the "list" permission on leases.coordination.k8s.io`)

	// A move to a replica killed just before: its member record is still
	// live, the hand-over is written to it, nobody takes it, and it is
	// taken back. kubectl tenure says so and exits 1.
	var c3 string
	for _, c := range comps {
		if tr.leaderOf(t, c) == "p1" {
			c3 = c
			break
		}
	}
	require.NoError(t, procs["p2"].Cmd.Process.Signal(syscall.SIGKILL))
	_ = procs["p2"].Wait(t, 5*time.Second)
	tr.forget("p2")
	r = op("move", c3, "--to", "p2", "--timeout", "20s")
	assert.Equal(t, 1, r.code)
	assert.Regexp(t, `^error: .*(handed over to p2, which did not take it; p\d leads it now|handed over to p2, which has not taken it)`, r.err)
	require.Eventually(t, func() bool {
		who := tr.ledger(c3).Leaders()
		return len(who) == 1 && who[0] != "p2"
	}, 20*time.Second, 20*time.Millisecond, "%s is led again, by a live replica", c3)

	for _, id := range []string{"p1", "p3"} {
		require.NoError(t, procs[id].Cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, procs[id].Wait(t, 15*time.Second))
	}
	t.Log("\n" + tr.text())
	tr.checkLedgers(t, comps)
}

// TestDemoKeysUseControl: the keys of --kubeconfig mode's live view (m, d,
// u) are package control's Move, Drain and Cordon on the demo's own
// replica, here p1's, among two demo processes.
func TestDemoKeysUseControl(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kubeconfig := kubetest.Kubeconfig(t)
	demo := proctest.Build(t, ".")
	comps := names(4)
	tr := newTranscript()
	procs := startDemos(t, tr, demo, kubeconfig, ns, len(comps), "p1", "p2")
	even := map[string]int{"p1": 2, "p2": 2}
	tr.waitShares(t, comps, even, 15*time.Second)
	c, err := control.New(cs, control.WithActor("tenure-demo"))
	require.NoError(t, err)
	ev := &events{keep: 50}
	keys := &clusterKeys{c: c, ns: ns, id: "p1", ev: ev}
	has := func(s string) bool {
		return slices.ContainsFunc(ev.last(), func(l string) bool { return strings.Contains(l, s) })
	}

	keys.press(context.Background(), 'm')
	assert.True(t, has("demo: moved "), "m moves one of p1's: %v", ev.last())
	assert.True(t, has(" p1 → p2, term "), "%v", ev.last())

	keys.press(context.Background(), 'd')
	assert.True(t, has("demo: p1 is drained and cordoned"), "%v", ev.last())
	got, _ := tr.shares(comps)
	assert.Zero(t, got["p1"], "p1 leads nothing after d: %v", got)

	keys.press(context.Background(), 'u')
	assert.True(t, has("demo: p1 uncordoned"), "%v", ev.last())
	tr.waitShares(t, comps, even, 15*time.Second)

	for _, p := range procs {
		require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, p.Wait(t, 15*time.Second))
	}
	tr.checkLedgers(t, comps)
}
