package control_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/tenure/tenure/control"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// runElection runs a tenure candidate of lock name in ns until the test
// ends, and waits until it leads if lead.
func runElection(t *testing.T, cs kubernetes.Interface, ns, name, id string, lead bool) {
	t.Helper()
	l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, name, locks.WithIdentity(id))
	require.NoError(t, err)
	e, err := election.New(election.Config{
		Lock: l, LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
		OnStartedLeading: func(ctx context.Context) { <-ctx.Done() }, Logger: quiet,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if lead {
		require.Eventually(t, e.IsLeader, 10*time.Second, 10*time.Millisecond, "%s leads %s", id, name)
	}
}

// announce writes the member record of id, campaigning for components (lock
// names of Leases in ns).
func announce(t *testing.T, cs kubernetes.Interface, ns, id string, components ...string) {
	t.Helper()
	r, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, 30*time.Second, placement.WithGroup("g"))
	require.NoError(t, err)
	defer r.Close()
	m := placement.Member{Identity: id, Started: time.Now().Add(-time.Minute), Revision: "rev-1"}
	for _, c := range components {
		m.Components = append(m.Components, "lease/"+ns+"/"+c)
	}
	require.NoError(t, r.Announce(context.Background(), m))
}

// TestStatusOfAMixedFleet: tenure's elections and members, a client-go
// elector's Lease, a ConfigMap the Python clients wrote, one whose record is
// corrupted, and a Lease that never held an election, in one namespace.
func TestStatusOfAMixedFleet(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "billing", "r2", false)
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")

	// client-go's elector.
	lock := &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"}, Client: cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: "cg-1"}}
	cgCtx, cgCancel := context.WithCancel(ctx)
	var cg sync.WaitGroup
	cg.Go(func() {
		leaderelection.RunOrDie(cgCtx, leaderelection.LeaderElectionConfig{Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second,
			RetryPeriod: 2 * time.Second, Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(ctx context.Context) { <-ctx.Done() }, OnStoppedLeading: func() {}}})
	})
	t.Cleanup(func() { cgCancel(); cg.Wait() })
	require.Eventually(t, func() bool {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "legacy", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "cg-1"
	}, 10*time.Second, 20*time.Millisecond)

	for name, record := range map[string]string{
		"pyjob":  `{"holderIdentity": "py-1", "leaseDurationSeconds": "17", "acquireTime": "2026-03-14 15:09:26.250000", "renewTime": "2026-03-14 15:09:36.000001"}`,
		"broken": `{"holderIdentity": `,
	} {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{locks.LeaderAnnotation: record}}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "unused"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	c, err := control.New(cs)
	require.NoError(t, err)
	st, err := c.Status(ctx, ns)
	require.NoError(t, err)
	byName := map[string]control.Election{}
	for _, e := range st.Elections {
		byName[e.Component] = e
	}
	require.ElementsMatch(t, []string{"billing", "legacy", "pyjob", "broken"}, keys(byName), "elections: %+v", st.Elections)

	b := byName["billing"]
	assert.Equal(t, locks.KindLease, b.Kind)
	assert.Equal(t, "r1", b.Holder)
	assert.Equal(t, 2*time.Second, b.LeaseDuration)
	assert.WithinDuration(t, time.Now(), b.Renewed, 5*time.Second)
	assert.Equal(t, []string{"r1", "r2"}, b.Candidates)
	assert.Equal(t, "Lease "+ns+"/billing", b.Lock())

	assert.Equal(t, "cg-1", byName["legacy"].Holder)
	assert.Empty(t, byName["legacy"].Candidates, "no tenure replica campaigns for client-go's election")
	py := byName["pyjob"]
	assert.Equal(t, locks.KindConfigMap, py.Kind)
	assert.Equal(t, "py-1", py.Holder)
	assert.Equal(t, 17*time.Second, py.LeaseDuration)
	assert.Equal(t, time.Date(2026, 3, 14, 15, 9, 26, 250000000, time.UTC), py.Acquired)
	assert.Contains(t, byName["broken"].Error, "invalid leader election record", "a corrupted record is shown with why, not an error")

	require.Len(t, st.Members, 2)
	r1 := st.Members[0]
	assert.Equal(t, "r1", r1.Identity)
	assert.Equal(t, "g", r1.Group)
	assert.Equal(t, []string{"billing"}, r1.Components)
	assert.Equal(t, []string{"billing"}, r1.Leads)
	assert.Equal(t, "rev-1", r1.Revision)
	assert.True(t, r1.Eligible())
	assert.Empty(t, st.Members[1].Leads)
	assert.Empty(t, st.Warnings)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBadInputIsRefusedClearly: every refusal is an error that says what
// is wrong, wraps its sentinel, and writes nothing.
func TestBadInputIsRefusedClearly(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "reports", "r1", true)
	announce(t, cs, ns, "r1", "billing", "reports")
	announce(t, cs, ns, "r2", "billing")
	announce(t, cs, ns, "r3", "billing")
	// A Lease and a ConfigMap of one name; an election nobody holds.
	for _, name := range []string{"dup", "idle"} {
		_, err := cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: new(""), LeaseTransitions: new(int32(3))}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dup",
		Annotations: map[string]string{locks.LeaderAnnotation: `{"holderIdentity":"x","leaseDurationSeconds":15}`}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	c, err := control.New(cs)
	require.NoError(t, err)
	_, err = c.Cordon(ctx, ns, "r3", true)
	require.NoError(t, err)

	for _, tc := range []struct {
		name, component, to string
		sentinel            error
		says                string
	}{
		{"unknown component", "nosuch", "r2", control.ErrUnknownComponent, `unknown component "nosuch" in namespace ` + ns + ` (elections there: billing, dup, idle, reports)`},
		{"unknown replica", "billing", "r9", control.ErrUnknownMember, `unknown replica "r9" in namespace ` + ns + ` (replicas there: r1, r2, r3)`},
		{"cordoned target", "billing", "r3", control.ErrNotEligible, "it is cordoned"},
		{"target not campaigning", "reports", "r2", control.ErrNotEligible, "it does not campaign for reports (it campaigns for billing)"},
		{"nobody to move to", "reports", control.AnyMember, control.ErrNotEligible, "no other live, uncordoned replica campaigns for it"},
		{"no leader", "idle", "r2", control.ErrNoLeader, "nobody holds it"},
		{"ambiguous", "dup", "r2", nil, `component "dup" is ambiguous: ConfigMap ` + ns + `/dup, Lease ` + ns + `/dup; name it as kind/name, such as configmap/dup`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Move(ctx, ns, tc.component, tc.to)
			require.Error(t, err)
			if tc.sentinel != nil {
				assert.ErrorIs(t, err, tc.sentinel)
			}
			assert.Contains(t, err.Error(), tc.says)
		})
	}
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "billing", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, l.Annotations, locks.PreferredHolderAnnotation, "a refused move writes nothing")

	mv, err := c.Move(ctx, ns, "billing", "r1")
	require.NoError(t, err, "a move to the leader is done")
	assert.True(t, mv.Already)

	_, err = c.Cordon(ctx, ns, "r9", true)
	assert.ErrorIs(t, err, control.ErrUnknownMember)

	_, err = c.Status(ctx, kubetest.Namespace(t))
	assert.ErrorIs(t, err, control.ErrNoElections)
	assert.Contains(t, err.Error(), "no Lease or ConfigMap there holds a leader election record")

	nobody, err := kubernetes.NewForConfig(kubetest.UserConfig(t, "nobody"))
	require.NoError(t, err)
	cn, err := control.New(nobody)
	require.NoError(t, err)
	_, err = cn.Status(ctx, ns)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `forbidden: list leases in namespace `+ns+` needs the "list" permission on leases.coordination.k8s.io`)
}

// TestCordonIsIdempotentAndRecorded: cordon, again, uncordon, again; each
// change an Event on the member record, the replica's own renewals of its
// record leave the mark alone.
func TestCordonIsIdempotentAndRecorded(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	announce(t, cs, ns, "r1", "billing")
	c, err := control.New(cs, control.WithActor("test-operator"))
	require.NoError(t, err)
	for _, step := range []struct {
		on, changed bool
	}{{true, true}, {true, false}, {false, true}, {false, false}, {true, true}} {
		res, err := c.Cordon(ctx, ns, "r1", step.on)
		require.NoError(t, err)
		assert.Equal(t, step.changed, res.Changed, "cordon %v", step.on)
		st, err := c.Status(ctx, ns)
		require.NoError(t, err)
		assert.Equal(t, step.on, st.Members[0].Cordoned)
	}
	announce(t, cs, ns, "r1", "billing") // the replica renews its record
	st, err := c.Status(ctx, ns)
	require.NoError(t, err)
	assert.True(t, st.Members[0].Cordoned, "the replica's announcement leaves the cordon alone")

	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var reasons []string
	for _, e := range evs.Items {
		if e.Source.Component == "test-operator" {
			reasons = append(reasons, e.Reason)
			assert.Equal(t, placement.MemberLeaseName("r1"), e.InvolvedObject.Name)
		}
	}
	assert.ElementsMatch(t, []string{"Cordoned", "Uncordoned", "Cordoned"}, reasons)
}

// TestMoveOfATenureElection: a move between two tenure candidates hands
// over, and the result says to whom, in which term, how long it took.
func TestMoveOfATenureElection(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "billing", "r2", false)
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")
	spans := tracetest.NewSpanRecorder()
	c, err := control.New(cs, control.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))))
	require.NoError(t, err)
	before, err := c.Status(ctx, ns)
	require.NoError(t, err)
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	mv, err := c.Move(mctx, ns, "billing", control.AnyMember)
	require.NoError(t, err)
	t.Logf("moved: %+v", mv)
	assert.Equal(t, "r1", mv.From)
	assert.Equal(t, "r2", mv.To)
	assert.Greater(t, mv.Term, before.Elections[0].Term)
	assert.Positive(t, mv.Took)
	after, err := c.Status(ctx, ns)
	require.NoError(t, err)
	assert.Equal(t, "r2", after.Elections[0].Holder)
	assert.Empty(t, after.Elections[0].MovingTo, "the request is cleared by the new term")

	// Back, by name; the lock's Event says who asked.
	mv, err = c.Move(mctx, ns, "billing", "r1")
	require.NoError(t, err)
	assert.Equal(t, "r1", mv.To)
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var asked []string
	for _, e := range evs.Items {
		if e.Reason == "MoveRequested" {
			asked = append(asked, e.Message)
		}
	}
	assert.ElementsMatch(t, []string{"tenure-control asked r1 to hand billing over to r2", "tenure-control asked r2 to hand billing over to r1"}, asked)
	var traced []string
	for _, s := range spans.Ended() {
		if s.Name() == "control move" {
			attrs := map[attribute.Key]string{}
			for _, a := range s.Attributes() {
				attrs[a.Key] = a.Value.Emit()
			}
			traced = append(traced, attrs["tenure.move.from"]+"→"+attrs["tenure.move.target"])
			assert.Equal(t, "billing", attrs["tenure.election.name"])
		}
	}
	assert.Equal(t, []string{"r1→r2", "r2→r1"}, traced, "each move is a span")
}
