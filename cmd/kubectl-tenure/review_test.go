package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenure/tenure/control"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func runCLI(ctx context.Context, args ...string) (string, string, int) {
	var out, errOut syncBuf
	code := run(ctx, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

func heldLease(t *testing.T, cs kubernetes.Interface, ns, name, holder string) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	_, err := cs.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: new(holder), LeaseDurationSeconds: new(int32(300)), AcquireTime: &now, RenewTime: &now, LeaseTransitions: new(int32(1))}},
		metav1.CreateOptions{})
	require.NoError(t, err)
}

func announce(t *testing.T, cs kubernetes.Interface, ns, id string, components ...string) {
	t.Helper()
	r, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, 300*time.Second, placement.WithGroup("g"))
	require.NoError(t, err)
	defer r.Close()
	m := placement.Member{Identity: id, Started: time.Now()}
	for _, c := range components {
		m.Components = append(m.Components, "lease/"+ns+"/"+c)
	}
	require.NoError(t, r.Announce(context.Background(), m))
}

// C1: status --watch in a namespace whose elections are all ConfigMaps
// (no Lease at all) ignores the interrupt: it blocks on the informer's
// "initial list" Add that never comes.
func TestReviewWatchWithoutLeasesIgnoresInterrupt(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kc := kubetest.Kubeconfig(t)
	_, err := cs.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "pyjob",
		Annotations: map[string]string{locks.LeaderAnnotation: `{"holderIdentity":"py-1","leaseDurationSeconds":15}`}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuf
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--kubeconfig", kc, "-n", ns, "status", "--watch"}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "pyjob") }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(2 * time.Second) // the informer has listed (nothing)
	cancel()                    // Ctrl-C
	select {
	case code := <-done:
		t.Logf("exited %d", code)
	case <-time.After(5 * time.Second):
		t.Errorf("status --watch did not return 5s after its context was cancelled (Ctrl-C); output:\n%s", out.String())
	}
}

// C2: an invalid -o is found only after the action: cordon (and move,
// drain) acts, then fails on the printer and exits 1.
func TestReviewBadOutputFormatActsFirst(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kc := kubetest.Kubeconfig(t)
	heldLease(t, cs, ns, "billing", "r1")
	announce(t, cs, ns, "r1", "billing")
	out, errOut, code := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "cordon", "r1", "-o", "wide")
	t.Logf("out=%q err=%q code=%d", out, errOut, code)
	require.Equal(t, 1, code)
	l, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), placement.MemberLeaseName("r1"), metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, "true", l.Annotations[placement.AnnotationCordoned], "a command that failed on its flags cordoned r1 anyway")
}

// C3: a holder without a renew time (the Python or old client-go
// ConfigMap records may lack one) shows RENEWED "- ago".
func TestReviewRenewedDashAgo(t *testing.T) {
	o := newOptions(genericiooptions.IOStreams{})
	tbl := o.electionTable(&control.Status{Namespace: "ns", Elections: []control.Election{{Component: "pyjob", Kind: locks.KindConfigMap, Namespace: "ns", Holder: "py-1"}}})
	t.Logf("row: %v", tbl.Rows[0].Cells)
	assert.NotEqual(t, "- ago", tbl.Rows[0].Cells[5])
}

// C4: drain of a replica whose leaderships nobody else can take: one error
// line per leadership (errors.Join), not one line.
func TestReviewDrainErrorIsMultiLine(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kc := kubetest.Kubeconfig(t)
	heldLease(t, cs, ns, "billing", "r1")
	heldLease(t, cs, ns, "reports", "r1")
	announce(t, cs, ns, "r1", "billing", "reports")
	out, errOut, code := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "drain", "r1", "--timeout", "5s")
	t.Logf("out=%q\nerr=%q\ncode=%d", out, errOut, code)
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
}

// C5: -o json|yaml|jsonpath work; durations are integer nanoseconds.
func TestReviewOutputFormats(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kc := kubetest.Kubeconfig(t)
	heldLease(t, cs, ns, "billing", "r1")
	announce(t, cs, ns, "r1", "billing")
	for _, o := range []string{"yaml", "jsonpath={.elections[*].holder} {.elections[0].leaseDuration}", "go-template={{range .members}}{{.identity}}{{end}}", "wide"} {
		out, errOut, code := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "status", "-o", o)
		t.Logf("-o %s: code=%d err=%q\n%s", o, code, errOut, out)
		assert.Zero(t, code)
	}
	_, errOut, code := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "status", "-o", "name")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "error: -o name: what kubectl tenure prints has no object name")
	out, errOut, code := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "cordon", "r1", "-o", "yaml")
	t.Logf("cordon -o yaml: code=%d err=%q\n%s", code, errOut, out)
	out, errOut, code = runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "drain", "r1", "-o", "json")
	t.Logf("drain -o json: code=%d err=%q\n%s", code, errOut, out)
}

// C6: status --watch for a user who may list but not watch Leases prints
// the status once and then nothing, and no error: it never updates.
func TestReviewWatchWithoutWatchPermissionIsSilent(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	heldLease(t, cs, ns, "billing", "r1")
	ctx := context.Background()
	_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "lister"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "lister"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "lister"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "lister"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	kc := kubetest.Kubeconfig(t)
	wctx, cancel := context.WithCancel(ctx)
	var out, errOut syncBuf
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, []string{"--kubeconfig", kc, "-n", ns, "--as", "lister", "status", "--watch"}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "billing") }, 10*time.Second, 10*time.Millisecond)
	heldLease(t, cs, ns, "reports", "r2") // a change
	time.Sleep(3 * time.Second)
	cancel()
	select {
	case code := <-done:
		t.Logf("exit %d; out:\n%s\nerr: %q", code, out.String(), errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("did not return")
	}
	assert.True(t, strings.Contains(out.String(), "reports") || errOut.String() != "", "neither an update nor an error")
}

// C7: -n, the context's namespace, -A; exit codes of cobra's errors.
func TestReviewNamespacesAndExitCodes(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	other := kubetest.Namespace(t)
	heldLease(t, cs, ns, "billing", "r1")
	heldLease(t, cs, other, "reports", "r2")
	kc := kubetest.Kubeconfig(t)
	cfg, err := clientcmd.LoadFromFile(kc)
	require.NoError(t, err)
	cfg.Contexts[cfg.CurrentContext].Namespace = ns
	require.NoError(t, clientcmd.WriteToFile(*cfg, kc))
	out, _, code := runCLI(context.Background(), "--kubeconfig", kc, "status")
	assert.Zero(t, code)
	assert.Contains(t, out, "billing")
	out, _, _ = runCLI(context.Background(), "--kubeconfig", kc, "-n", other, "status")
	assert.Contains(t, out, "reports")
	assert.NotContains(t, out, "billing")
	out, _, _ = runCLI(context.Background(), "--kubeconfig", kc, "-A", "status", "-o", "jsonpath={.namespace}|{.elections[*].component}")
	t.Logf("-A: %s", out)
	for _, args := range [][]string{{"bogus"}, {"status", "--nope"}, {"move"}, {"move", "a", "b", "--to", "x"}, {"cordon"}, {"move", "billing", "--to", "r1", "--timeout", "0s"}} {
		out, errOut, code := runCLI(context.Background(), append([]string{"--kubeconfig", kc}, args...)...)
		t.Logf("%v: code=%d out=%q err=%q", args, code, out, errOut)
		assert.Equal(t, 1, code)
		assert.Equal(t, 1, strings.Count(errOut, "\n"))
	}
}

// C8: README says --watch prints "again at each change"; a ConfigMap
// election's change (a new holder) is not seen.
func TestReviewWatchMissesConfigMapChanges(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kc := kubetest.Kubeconfig(t)
	ctx := context.Background()
	heldLease(t, cs, ns, "billing", "r1")
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "pyjob",
		Annotations: map[string]string{locks.LeaderAnnotation: `{"holderIdentity":"py-1","leaseDurationSeconds":15}`}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	var out, errOut syncBuf
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, []string{"--kubeconfig", kc, "-n", ns, "status", "--watch"}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "py-1") }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(time.Second)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "pyjob", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Annotations[locks.LeaderAnnotation] = `{"holderIdentity":"py-2","leaseDurationSeconds":15,"leaderTransitions":1}`
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	ok := assert.Eventually(t, func() bool { return strings.Contains(out.String(), "py-2") }, 4*time.Second, 20*time.Millisecond, "--watch shows the ConfigMap's new holder")
	cancel()
	<-done
	if !ok {
		t.Logf("output:\n%s", out.String())
	}
}

// C9: drain of the placement coordinator's holder says it "leads nothing
// now" while it still holds the coordinator election.
func TestReviewDrainOfTheCoordinator(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kc := kubetest.Kubeconfig(t)
	heldLease(t, cs, ns, placement.CoordinatorLeaseName("g"), "r1")
	announce(t, cs, ns, "r1")
	announce(t, cs, ns, "r2")
	out, errOut, code := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "drain", "r1")
	t.Logf("drain: code=%d out=%q err=%q", code, out, errOut)
	st, _, _ := runCLI(context.Background(), "--kubeconfig", kc, "-n", ns, "status")
	t.Logf("status:\n%s", st)
	assert.False(t, strings.Contains(out, "r1 leads nothing now") && strings.Contains(st, "r1 (placement coordinator)"))
}
