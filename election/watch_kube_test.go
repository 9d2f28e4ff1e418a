package election_test

// Adversarial tests of elections on Lease locks that follow their Lease
// (review of c8ad353).

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/locks"
)

// informers counts the goroutines running a client-go informer.
func informers() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "cache.(*sharedIndexInformer).RunWithContext(")
}

// TestElectionWithoutListOrWatchPermission: a user allowed get,
// create and patch on leases but not list or watch (the RBAC a
// client-go election needs) still elects, hands over at a release by
// polling, and stops promptly.
func TestElectionWithoutListOrWatchPermission(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "elect"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "patch"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "elect"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "elect"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "elector"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	user, err := kubernetes.NewForConfig(kubetest.UserConfig(t, "elector", "system:authenticated"))
	require.NoError(t, err)

	led := leadertest.New()
	cands := map[string]*kubeCandidate{}
	for _, id := range []string{"a", "b"} {
		l, err := locks.NewLeaseLock(user.CoordinationV1(), ns, "lock", locks.WithIdentity(id))
		require.NoError(t, err)
		cands[id] = startCandidate(t, l, led)
	}
	leader := led.Leader(t)
	stopped := time.Now()
	ctxStop, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, cands[leader].Stop(ctxStop), "stops promptly")
	assert.Less(t, time.Since(stopped), time.Second, "Stop took %v", time.Since(stopped))
	next := led.Leader(t)
	took := led.Started(next).Sub(stopped)
	assert.Less(t, took, kLease, "a released lock is taken over by polling (took %v)", took)
	led.Check(t)
}

// TestStopWhileTheWatchStalls: a leader whose watch connection
// stalls (the API server still answers its other requests) stops at once
// and releases; Stop does not wait on the stalled watch.
func TestStopWhileTheWatchStalls(t *testing.T) {
	for _, fault := range []string{"stall", "block"} {
		t.Run(fault, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			proxy, watchClient := kubetest.ViaProxy(t, 0)
			direct := kubetest.Client(t)
			leases := kubetest.SplitLeases(direct, watchClient)
			led := leadertest.New()
			l, err := locks.NewLeaseLock(leases, ns, "lock", locks.WithIdentity("a"))
			require.NoError(t, err)
			c := startCandidate(t, l, led)
			led.Leader(t)
			switch fault {
			case "stall":
				proxy.Stall()
			case "block":
				proxy.Block()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			began := time.Now()
			require.NoError(t, c.Stop(ctx))
			assert.Less(t, time.Since(began), 2*time.Second, "Stop took %v", time.Since(began))
			lease, err := direct.CoordinationV1().Leases(ns).Get(context.Background(), "lock", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Empty(t, *lease.Spec.HolderIdentity, "released")
			proxy.Heal()
		})
	}
}

// TestStandaloneAcquireStopsItsWatch: Acquire on its own (the step
// API) follows the lock only while it campaigns: once it returns, no
// informer is left running, and it returned promptly.
func TestStandaloneAcquireStopsItsWatch(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	before := informers()
	holder, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock", locks.WithoutWatch())
	require.NoError(t, err)
	obs, err := holder.Create(context.Background(), locks.Record{HolderIdentity: "x", LeaseDuration: time.Hour, RenewTime: time.Now()})
	require.NoError(t, err)

	l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock", locks.WithIdentity("a"))
	require.NoError(t, err)
	e, err := election.New(election.Config{Lock: l, LeaseDuration: time.Minute, RenewDeadline: 40 * time.Second, RetryPeriod: 10 * time.Second, Logger: quiet})
	require.NoError(t, err)
	type result struct {
		ok  bool
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		ok, err := e.Acquire(context.Background())
		done <- result{ok, err, time.Now()}
	}()
	require.Eventually(t, func() bool { return informers() > before }, 10*time.Second, 5*time.Millisecond, "Acquire follows the lock")
	require.Eventually(t, func() bool { return e.Leader() == "x" }, 10*time.Second, 5*time.Millisecond)
	released := time.Now()
	_, err = holder.Update(context.Background(), obs.Version, locks.Record{})
	require.NoError(t, err)
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.True(t, r.ok)
		assert.Less(t, r.at.Sub(released), time.Second, "the release woke Acquire (a retry period is 10s)")
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return after the release")
	}
	assert.Equal(t, before, informers(), "no informer outlives Acquire")
	// The step API after Acquire reads the API server.
	ok, err := e.TryAcquireOrRenew(context.Background())
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, before, informers())
}

// TestStopIsNotHeldByTheWatch: the leader work returned and the
// lock was released, so Stop has nothing to give up; the watch, which a
// client holds up, must not make Stop report a term given up and its
// lock left to expire.
func TestStopIsNotHeldByTheWatch(t *testing.T) {
	g := kubetest.HoldWatches(fake.NewClientset().CoordinationV1())
	defer g.Release()
	l, err := locks.NewLeaseLock(g, "ns", "lock", locks.WithIdentity("a"))
	require.NoError(t, err)
	e, err := election.New(election.Config{Lock: l, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry, Logger: quiet})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- e.Run(context.Background()) }()
	<-g.Entered()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = e.Stop(ctx)
	assert.NoError(t, err, "Stop gave up although there was no term")
	select {
	case <-ran:
	case <-time.After(time.Second):
		t.Error("Run has not returned")
	}
}

// TestLeaseDeletedUnderAStalledWatchAfterARelease: a lone candidate
// releases its Lease (its work returned), then the Lease is deleted while
// the candidate's watch connection is half-open. The candidate's last
// knowledge is its own release, which the stale cache still shows, so it
// patches the deleted Lease every retry period and gets NotFound; it must
// still observe the Lease missing and create it again after a lease, not
// wait for the watch to be torn down.
func TestLeaseDeletedUnderAStalledWatchAfterARelease(t *testing.T) {
	ns := kubetest.Namespace(t)
	proxy, watchClient := kubetest.ViaProxy(t, 0)
	direct := kubetest.Client(t)
	_, err := direct.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "lock"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	l, err := locks.NewLeaseLock(kubetest.SplitLeases(direct, watchClient), ns, "lock", locks.WithIdentity("a"))
	require.NoError(t, err)
	var terms atomic.Int32
	var once sync.Once
	deleted := make(chan time.Time, 1)
	e, err := election.New(election.Config{
		Lock: l, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry, Logger: quiet,
		OnStartedLeading: func(ctx context.Context) {
			if terms.Add(1) == 1 {
				time.Sleep(500 * time.Millisecond) // the watch has delivered the acquisition
				return                             // the work returns: the term ends, the lock is released
			}
			<-ctx.Done()
		},
		OnStoppedLeading: func() {
			once.Do(func() {
				time.Sleep(500 * time.Millisecond) // the watch has delivered the release
				proxy.StallOpen()
				require.NoError(t, direct.CoordinationV1().Leases(ns).Delete(context.Background(), "lock", metav1.DeleteOptions{}))
				deleted <- time.Now()
			})
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = e.Run(ctx)
	}()
	defer func() {
		proxy.Heal()
		cancel()
		<-ran
	}()
	at := <-deleted
	require.Eventually(t, func() bool { return terms.Load() == 2 }, 10*time.Second, 10*time.Millisecond,
		"no new term within 10s of the Lease's deletion (a lease is %v)", kLease)
	t.Logf("a new term %v after the deletion", time.Since(at))
	lease, err := direct.CoordinationV1().Leases(ns).Get(context.Background(), "lock", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "a", *lease.Spec.HolderIdentity)
}

// TestRunAndAcquireLeaveNoGoroutines: elections on Lease locks of
// one fake client (one shared watch) that run, lead, stop, and campaign
// with Acquire on their own, concurrently and more than once, leave no
// goroutine behind.
func TestRunAndAcquireLeaveNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	leases := fake.NewClientset().CoordinationV1()
	newElection := func(id string) *election.Election {
		l, err := locks.NewLeaseLock(leases, "ns", "lock", locks.WithIdentity(id))
		require.NoError(t, err)
		e, err := election.New(election.Config{Lock: l, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry, Logger: quiet})
		require.NoError(t, err)
		return e
	}
	for round := range 3 {
		var wg sync.WaitGroup
		runner := newElection("runner")
		ctx, cancel := context.WithCancel(context.Background())
		wg.Go(func() { _ = runner.Run(ctx) })
		for i := range 3 {
			wg.Go(func() {
				actx, acancel := context.WithTimeout(context.Background(), time.Duration(i+1)*100*time.Millisecond)
				defer acancel()
				_, _ = newElection(fmt.Sprint("acquirer", round, i)).Acquire(actx)
			})
		}
		time.Sleep(300 * time.Millisecond)
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, runner.Stop(stopCtx))
		stopCancel()
		cancel()
		wg.Wait()
	}
}
