package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/tenure/tenure/control"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
	clocktesting "k8s.io/utils/clock/testing"
)

// runElectionWith runs a tenure candidate with the given timings and work
// until the test ends; it returns the election.
func runElectionWith(t *testing.T, cs kubernetes.Interface, ns, name, id string, lease, renew, retry time.Duration, work func(ctx context.Context)) *election.Election {
	t.Helper()
	// A missing lock is created only after a whole lease: make it free.
	_, _ = cs.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: new(""), LeaseTransitions: new(int32(0))}}, metav1.CreateOptions{})
	l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, name, locks.WithIdentity(id))
	require.NoError(t, err)
	e, err := election.New(election.Config{
		Lock: l, LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
		OnStartedLeading: work, Logger: testLogger(t, id+"/"+name),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Run(ctx); err != nil && ctx.Err() == nil {
			t.Logf("%s/%s: Run: %v", id, name, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

type tw struct{ t *testing.T }

func (w tw) Write(p []byte) (int, error) { w.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func testLogger(t *testing.T, who string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tw{t}, nil)).With("who", who)
}

func holderOf(t *testing.T, cs kubernetes.Interface, ns, name string) (string, map[string]string) {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	h := ""
	if l.Spec.HolderIdentity != nil {
		h = *l.Spec.HolderIdentity
	}
	return h, l.Annotations
}

func memberLease(name, identity string, annotations map[string]string, renew *metav1.MicroTime, secs *int32) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{placement.LabelMember: "true", placement.LabelGroup: "g"}, Annotations: annotations},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: new(identity), RenewTime: renew, LeaseDurationSeconds: secs},
	}
}

// R1: Cordon of an identity whose only record is a Lease under another
// name than MemberLeaseName (a copy, a leftover) returns success without
// writing anything.
func TestReviewCordonOfACopiedRecordSucceedsSilently(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	now := metav1.NewMicroTime(time.Now())
	_, err := cs.CoordinationV1().Leases(ns).Create(ctx, memberLease("zz-copy", "r5", map[string]string{placement.AnnotationComponents: "lease/" + ns + "/billing"}, &now, new(int32(30))), metav1.CreateOptions{})
	require.NoError(t, err)
	c, err := control.New(cs)
	require.NoError(t, err)
	_, err = c.Status(ctx, ns)
	assert.ErrorIs(t, err, control.ErrNoElections, "a copy of a record under another name is no member, as for the roster")
	res, err := c.Cordon(ctx, ns, "r5", true)
	t.Logf("cordon r5: %+v, err %v", res, err)
	assert.ErrorIs(t, err, control.ErrUnknownMember, "cordon of r5 neither cordoned anything nor failed")
	l, _ := cs.CoordinationV1().Leases(ns).Get(ctx, "zz-copy", metav1.GetOptions{})
	assert.NotEqual(t, "true", l.Annotations[placement.AnnotationCordoned])
}

// R2: a stale copy of a live replica's member record (another name, an
// old renew time) overrides the real one in Status: the replica shows
// expired and Move refuses it.
func TestReviewStaleCopyHidesALiveMember(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "billing", "r2", false)
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")
	old := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	_, err := cs.CoordinationV1().Leases(ns).Create(ctx, memberLease("zz-copy", "r2", map[string]string{placement.AnnotationComponents: "lease/" + ns + "/billing"}, &old, new(int32(30))), metav1.CreateOptions{})
	require.NoError(t, err)
	c, err := control.New(cs)
	require.NoError(t, err)
	st, err := c.Status(ctx, ns)
	require.NoError(t, err)
	for _, m := range st.Members {
		t.Logf("member %s expired=%v", m.Identity, m.Expired)
		if m.Identity == "r2" {
			assert.False(t, m.Expired, "r2's own record (%s) is live", placement.MemberLeaseName("r2"))
		}
	}
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = c.Move(mctx, ns, "billing", "r2")
	assert.NoError(t, err, "a move to live r2 is refused because of a copy of its record")
}

// R3: Move(any) while the lock is handed over (not yet taken) asks the
// handed-to replica to move it on; that replica's acquiring write clears the
// request, and Move waits for its whole timeout.
func TestReviewMoveAnyDuringAHandOverWaitsUntilTimeout(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")
	announce(t, cs, ns, "r3", "billing")
	// The record as r1's election writes a hand-over to r2 (handover.go).
	at := time.Now().Truncate(time.Microsecond).UTC()
	mark, _ := json.Marshal(map[string]any{"to": "r2", "term": 3, "renewTime": at})
	mt := metav1.NewMicroTime(at)
	_, err := cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "billing", Annotations: map[string]string{locks.HandOverAnnotation: string(mark)}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: new("r2"), LeaseDurationSeconds: new(int32(10)), AcquireTime: &mt, RenewTime: &mt,
			LeaseTransitions: new(int32(3))},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	c, err := control.New(cs)
	require.NoError(t, err)
	st, err := c.Status(ctx, ns)
	require.NoError(t, err)
	require.True(t, st.Elections[0].HandedOver)

	mctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	_, err = c.Move(mctx, ns, "billing", control.AnyMember)
	assert.ErrorIs(t, err, control.ErrMovedElsewhere, "a move while a hand-over is under way is refused at once")
	assert.ErrorContains(t, err, "it was just handed over to r2, which has not taken it yet")
	_, a := holderOf(t, cs, ns, "billing")
	assert.Empty(t, a[locks.PreferredHolderAnnotation], "nothing is written on the handed-over record")
	// A move to the replica it is under way to waits for it.
	go func() {
		time.Sleep(300 * time.Millisecond)
		runElectionWith(t, cs, ns, "billing", "r2", 2*time.Second, 1500*time.Millisecond, 200*time.Millisecond, func(ctx context.Context) { <-ctx.Done() })
	}()
	mv, err := c.Move(mctx, ns, "billing", "r2")
	require.NoError(t, err)
	assert.Equal(t, "r2", mv.To)
	assert.Equal(t, int32(4), mv.Term, "r2 took what was handed to it, in the next term")
	_, a = holderOf(t, cs, ns, "billing")
	assert.Empty(t, a[locks.PreferredHolderAnnotation])
}

// R4: a Move to the replica a hand-over is in flight to (or to anyone else
// then) writes the request on the handed-over record; that changes its
// version, so the old leader no longer takes it back when the target does
// not take it (takeBackDue), and the component waits a full lease.
func TestReviewMoveDuringAHandOverDefeatsTheTakeBack(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	for _, comp := range []string{"billing", "reports"} {
		e := runElectionWith(t, cs, ns, comp, "r1", 20*time.Second, 15*time.Second, time.Second, func(ctx context.Context) { <-ctx.Done() })
		if !assert.Eventually(t, e.IsLeader, 10*time.Second, 10*time.Millisecond) {
			l, err := cs.CoordinationV1().Leases(ns).Get(ctx, comp, metav1.GetOptions{})
			t.Fatalf("lease: %v %+v", err, l)
		}
	}
	announce(t, cs, ns, "r1", "billing", "reports")
	announce(t, cs, ns, "r2", "billing", "reports") // announced, but not running: a replica killed just now
	c, err := control.New(cs, control.WithActor("op"))
	require.NoError(t, err)

	handOff := func(comp string) time.Time {
		l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, comp, locks.WithoutWatch())
		require.NoError(t, err)
		_, err = placement.Request(ctx, l, "r1", "r2")
		require.NoError(t, err)
		ok := assert.Eventually(t, func() bool { _, a := holderOf(t, cs, ns, comp); _, h := a[locks.HandOverAnnotation]; return h },
			10*time.Second, 5*time.Millisecond)
		if !ok {
			l, _ := cs.CoordinationV1().Leases(ns).Get(ctx, comp, metav1.GetOptions{})
			t.Fatalf("lease: %+v %+v", l.ObjectMeta, l.Spec)
		}
		return time.Now()
	}
	backAt := func(comp string, within time.Duration) time.Duration {
		start := time.Now()
		for time.Since(start) < within {
			if h, _ := holderOf(t, cs, ns, comp); h == "r1" {
				return time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return -1
	}

	// Control: nobody touches reports while it is handed to dead r2.
	handOff("reports")
	d := backAt("reports", 10*time.Second)
	t.Logf("reports: r1 took it back %v after the hand-over", d)
	require.Positive(t, d, "the take-back works without an operator")

	// billing: an operator runs `move billing --to r2` meanwhile.
	handOff("billing")
	mctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	mv, err := c.Move(mctx, ns, "billing", "r2")
	cancel()
	t.Logf("Move to the handed-to replica: %+v err=%v", mv, err)
	_, a := holderOf(t, cs, ns, "billing")
	t.Logf("billing annotations now: %v", a)
	d = backAt("billing", 8*time.Second)
	t.Logf("billing: r1 took it back after %v (-1: not within 8s)", d)
	assert.Positive(t, d, "after the operator's move the old leader never takes back the untaken hand-over; billing is leaderless until the lease expires")
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, e := range evs.Items {
		t.Logf("event %s: %s", e.Reason, e.Message)
	}
}

// R5: `move X --to <holder>` says "leads it already" while a request to
// move X elsewhere stands; moments later X is elsewhere.
func TestReviewMoveToTheHolderIgnoresAPendingMove(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	slow := func(ctx context.Context) { <-ctx.Done(); time.Sleep(3 * time.Second) } // work that winds down in 3s
	e1 := runElectionWith(t, cs, ns, "billing", "r1", 10*time.Second, 8*time.Second, 500*time.Millisecond, slow)
	require.Eventually(t, e1.IsLeader, 10*time.Second, 10*time.Millisecond)
	runElectionWith(t, cs, ns, "billing", "r2", 10*time.Second, 8*time.Second, 500*time.Millisecond, slow)
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")
	c, err := control.New(cs)
	require.NoError(t, err)

	// Operator A: move billing to r2, with a short timeout.
	actx, cancel := context.WithTimeout(ctx, time.Second)
	_, errA := c.Move(actx, ns, "billing", "r2")
	cancel()
	t.Logf("operator A: %v", errA)
	_, a := holderOf(t, cs, ns, "billing")
	t.Logf("after A's timeout the lock still asks: preferred-holder=%q", a[locks.PreferredHolderAnnotation])

	assert.ErrorContains(t, errA, "the request stands: it moves to r2 once r1's work returns", "A is told the move goes on")

	// Operator B: keep it on r1: refused, since r1's work is winding down.
	_, err = c.Move(ctx, ns, "billing", "r1")
	assert.ErrorIs(t, err, control.ErrMovedElsewhere)
	assert.ErrorContains(t, err, "a move to r2 is under way")
	require.Eventually(t, func() bool { h, _ := holderOf(t, cs, ns, "billing"); return h == "r2" }, 10*time.Second, 50*time.Millisecond,
		"the move goes on, as both were told")
}

// hooked is a clientset whose Events().Create runs a hook first.
type hooked struct {
	kubernetes.Interface
	onEvent func(*corev1.Event)
}

func (h hooked) CoreV1() corev1client.CoreV1Interface {
	return hookedCore{h.Interface.CoreV1(), h.onEvent}
}

type hookedCore struct {
	corev1client.CoreV1Interface
	onEvent func(*corev1.Event)
}

func (h hookedCore) Events(ns string) corev1client.EventInterface {
	return hookedEvents{h.CoreV1Interface.Events(ns), h.onEvent}
}

type hookedEvents struct {
	corev1client.EventInterface
	onEvent func(*corev1.Event)
}

func (h hookedEvents) Create(ctx context.Context, ev *corev1.Event, o metav1.CreateOptions) (*corev1.Event, error) {
	h.onEvent(ev)
	return h.EventInterface.Create(ctx, ev, o)
}

// R6: Drain fails when a leadership of the drained replica moves away
// (the placement coordinator reacting to the cordon) between its Status and
// its request: the drain's goal is met, but it reports "its leader changed
// while it was being asked (run it again)" and exits 1.
func TestReviewDrainFailsWhenALeadershipLeavesFirst(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "reports", "r1", true)
	runElection(t, cs, ns, "billing", "r2", false)
	runElection(t, cs, ns, "reports", "r2", false)
	announce(t, cs, ns, "r1", "billing", "reports")
	announce(t, cs, ns, "r2", "billing", "reports")
	var once sync.Once
	hook := func(ev *corev1.Event) {
		if ev.Reason != "MoveRequested" {
			return
		}
		once.Do(func() { // the coordinator moves reports meanwhile
			l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "reports", locks.WithoutWatch())
			require.NoError(t, err)
			_, err = placement.Request(ctx, l, "r1", "r2")
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				h, a := holderOf(t, cs, ns, "reports")
				_, ho := a[locks.HandOverAnnotation]
				return h == "r2" && !ho
			},
				10*time.Second, 10*time.Millisecond)
		})
	}
	c, err := control.New(hooked{cs, hook})
	require.NoError(t, err)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := c.Drain(dctx, ns, "r1")
	t.Logf("drain: %+v err=%v", d, err)
	for _, comp := range []string{"billing", "reports"} {
		h, _ := holderOf(t, cs, ns, comp)
		t.Logf("%s: %s", comp, h)
		assert.Equal(t, "r2", h)
	}
	assert.NoError(t, err, "r1 leads nothing, yet Drain failed")
}

// R7: a caller that may list Leases but not ConfigMaps, in a namespace
// whose elections are ConfigMaps: Status says there are no leader
// elections, and the reason (ConfigMaps forbidden) is lost.
func TestReviewForbiddenConfigMapsLookLikeNoElections(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "pyjob",
		Annotations: map[string]string{locks.LeaderAnnotation: `{"holderIdentity":"py-1","leaseDurationSeconds":15}`}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	grant(t, cs, ns, "leases-only", []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch"}}})
	u, err := kubernetes.NewForConfig(kubetest.UserConfig(t, "leases-only"))
	require.NoError(t, err)
	c, err := control.New(u)
	require.NoError(t, err)
	_, err = c.Status(ctx, ns)
	t.Logf("status: %v", err)
	require.Error(t, err)
	assert.NotErrorIs(t, err, control.ErrNoElections, "the ConfigMaps could not be read: that is not 'no elections'")
}

func grant(t *testing.T, cs kubernetes.Interface, ns, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// R8: the permission hints name "leases/billing.coordination.k8s.io", which
// is no resource; and Cordon in a namespace without elections does not
// wrap ErrUnknownMember.
func TestReviewMessagesAndSentinels(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "billing", "r2", false)
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")
	grant(t, cs, ns, "viewer", []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}})
	u, err := kubernetes.NewForConfig(kubetest.UserConfig(t, "viewer"))
	require.NoError(t, err)
	c, err := control.New(u)
	require.NoError(t, err)
	_, err = c.Move(ctx, ns, "billing", "r2")
	t.Logf("move as viewer: %v", err)
	assert.NotContains(t, err.Error(), "leases/billing.coordination.k8s.io")
	_, err = c.Cordon(ctx, ns, "r2", true)
	t.Logf("cordon as viewer: %v", err)
	assert.NotContains(t, err.Error(), "/"+placement.MemberLeaseName("r2")+".coordination.k8s.io", "resource/name.group is no resource")

	admin, err := control.New(cs)
	require.NoError(t, err)
	_, err = admin.Cordon(ctx, kubetest.Namespace(t), "r1", true)
	t.Logf("cordon in an empty namespace: %v", err)
	assert.ErrorIs(t, err, control.ErrUnknownMember)
}

// Fine-check: odd records never panic nor fail Status.
func TestReviewOddRecords(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	leases := cs.CoordinationV1().Leases(ns)
	for _, l := range []*coordinationv1.Lease{
		{ObjectMeta: metav1.ObjectMeta{Name: "noduration"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: new("x")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "onlyrenew"}, Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: time.Now()}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "junkann", Annotations: map[string]string{locks.HandOverAnnotation: "{{{", locks.PreferredHolderAnnotation: "\n"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: new("x"), LeaseDurationSeconds: new(int32(5))}},
		memberLease(placement.MemberLeaseName("m1"), "m1", map[string]string{placement.AnnotationComponents: ",,lease/" + ns + "/junkann,", placement.AnnotationStarted: "yesterday", placement.AnnotationCordoned: "TRUE"}, nil, nil),
		memberLease(placement.MemberLeaseName("m2"), "m2", nil, &metav1.MicroTime{Time: time.Now()}, nil),
		{ObjectMeta: metav1.ObjectMeta{Name: "member-noholder", Labels: map[string]string{placement.LabelMember: "true"}}},
	} {
		_, err := leases.Create(ctx, l, metav1.CreateOptions{})
		require.NoError(t, err, l.Name)
	}
	for name, v := range map[string]string{"cm-null": "null", "cm-empty": "", "cm-array": "[]", "cm-numholder": `{"holderIdentity":5}`, "cm-big": `{"holderIdentity":"x","leaseDurationSeconds":1e300}`} {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{locks.LeaderAnnotation: v}}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	c, err := control.New(cs)
	require.NoError(t, err)
	st, err := c.Status(ctx, ns)
	require.NoError(t, err)
	for _, e := range st.Elections {
		t.Logf("%-14s %-9s holder=%q term=%d moving=%q handed=%v err=%q", e.Component, e.Kind, e.Holder, e.Term, e.MovingTo, e.HandedOver, e.Error)
		assert.NotContains(t, e.Error, "\n")
	}
	for _, m := range st.Members {
		t.Logf("member %+v", m)
	}
	for _, comp := range []string{"noduration", "cm-null", "nosuch"} {
		_, err := c.Move(ctx, ns, comp, "m1")
		t.Logf("move %s: %v", comp, err)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "\n")
	}
	// R9: junkann's holder "x" is no tenure replica (a client-go or Python
	// candidate, or one long gone): it never honours the request, yet Move
	// asks and waits for its whole timeout.
	mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = c.Move(mctx, ns, "junkann", "m1")
	cancel()
	t.Logf("move junkann (held by non-member x) to m1: %v", err)
	assert.False(t, errors.Is(err, context.DeadlineExceeded), "a move from a holder that is no tenure replica should be refused at once")
	_, err = c.Drain(ctx, ns, "m2")
	t.Logf("drain m2 (leads nothing): %v", err)
	assert.NoError(t, err)
	_, err = c.Cordon(ctx, ns, "m1", true)
	assert.NoError(t, err)
	_ = strings.TrimSpace
}

// Fine-checks: a move of a ConfigMap election; a lock deleted during the
// wait; ten concurrent cordons of one replica.
func TestReviewFineChecks(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	for _, id := range []string{"r1", "r2"} {
		l, err := locks.NewConfigMapLock(cs.CoreV1(), ns, "cmjob", locks.WithIdentity(id))
		require.NoError(t, err)
		e, err := election.New(election.Config{Lock: l, LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
			OnStartedLeading: func(ctx context.Context) { <-ctx.Done() }, Logger: quiet})
		require.NoError(t, err)
		ectx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(ectx) }()
		t.Cleanup(func() { cancel(); <-done })
		if id == "r1" {
			require.Eventually(t, e.IsLeader, 10*time.Second, 10*time.Millisecond)
		}
		r, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, 30*time.Second, placement.WithGroup("g"))
		require.NoError(t, err)
		require.NoError(t, r.Announce(ctx, placement.Member{Identity: id, Components: []string{"configmap/" + ns + "/cmjob"}}))
		r.Close()
	}
	c, err := control.New(cs)
	require.NoError(t, err)
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	mv, err := c.Move(mctx, ns, "cmjob", control.AnyMember)
	t.Logf("configmap move: %+v %v", mv, err)
	require.NoError(t, err)
	assert.Equal(t, "r2", mv.To)
	mv, err = c.Move(mctx, ns, "configmap/cmjob", "r1")
	require.NoError(t, err)
	t.Logf("configmap move back: %+v", mv)

	// A lock deleted during the wait.
	heldNow := metav1.NewMicroTime(time.Now())
	_, err = cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "gone"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: new("r1"), LeaseDurationSeconds: new(int32(300)), RenewTime: &heldNow}}, metav1.CreateOptions{})
	require.NoError(t, err)
	announce(t, cs, ns, "r1", "gone") // a tenure replica's: it hands over
	announce(t, cs, ns, "r3", "gone")
	errc := make(chan error, 1)
	go func() { _, err := c.Move(mctx, ns, "gone", "r3"); errc <- err }()
	require.Eventually(t, func() bool { _, a := holderOf(t, cs, ns, "gone"); return a[locks.PreferredHolderAnnotation] == "r3" }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, cs.CoordinationV1().Leases(ns).Delete(ctx, "gone", metav1.DeleteOptions{}))
	select {
	case err := <-errc:
		t.Logf("move of a deleted lock: %v", err)
		assert.ErrorContains(t, err, "was deleted while it moved")
	case <-time.After(5 * time.Second):
		t.Error("Move did not notice the deletion")
	}

	// Ten concurrent cordons.
	var wg sync.WaitGroup
	var mu sync.Mutex
	changed := 0
	for range 10 {
		wg.Go(func() {
			res, err := c.Cordon(ctx, ns, "r3", true)
			assert.NoError(t, err)
			mu.Lock()
			if res.Changed {
				changed++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, 1, changed)
}

// R10: liveness of a member is judged by the operator's clock against the
// replica's renew time: an operator whose clock is ahead by more than the
// member lease sees every replica "gone" and cannot move anything.
func TestReviewOperatorClockSkewMakesMembersGone(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	runElection(t, cs, ns, "billing", "r1", true)
	runElection(t, cs, ns, "billing", "r2", false)
	announce(t, cs, ns, "r1", "billing")
	announce(t, cs, ns, "r2", "billing")
	c, err := control.New(cs, control.WithClock(clocktesting.NewFakeClock(time.Now().Add(45*time.Second))))
	require.NoError(t, err)
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = c.Move(mctx, ns, "billing", "r2")
	t.Logf("move with the operator's clock 45s ahead: %v", err)
	assert.NoError(t, err)
}
