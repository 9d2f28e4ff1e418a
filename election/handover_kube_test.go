package election_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/locks"
)

// annotator is a lock that keeps tenure's annotations.
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

// askMove writes a move request to to on the lock l, as an operator
// would: conditional on the version read, retried on conflict.
func askMove(t *testing.T, l locks.Lock, to string) {
	t.Helper()
	a, ok := l.(annotator)
	require.True(t, ok, "%s keeps annotations", l.Describe())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		obs, err := l.Get(ctx)
		require.NoError(t, err)
		_, err = a.Annotate(ctx, obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to})
		if err == nil {
			return
		}
		require.ErrorIs(t, err, locks.ErrConflict)
	}
	t.Fatal("the lock kept changing")
}

// TestPlannedHandOverOnRealAPIServer: asked to move, the leader's work
// winds down and the candidate asked for leads next, with the next
// fencing token, well before a lease could expire, on every lock kind;
// the third candidate never leads.
func TestPlannedHandOverOnRealAPIServer(t *testing.T) {
	for kind, makeLock := range lockKinds {
		t.Run(kind, func(t *testing.T) {
			cs := kubetest.Client(t)
			ns := kubetest.Namespace(t)
			led := leadertest.New()
			ids := []string{"a", "b", "c"}
			for _, id := range ids {
				startCandidate(t, makeLock(t, cs, ns, "lock", id), led)
			}
			operator := makeLock(t, cs, ns, "lock", "operator")
			leader := led.Leader(t)
			for move := range 4 {
				target := ids[(indexOf(ids, leader)+1+move%2)%len(ids)]
				token := led.Token(leader)
				askMove(t, operator, target)
				require.Eventually(t, func() bool { return led.Started(target) != (time.Time{}) }, 10*time.Second, time.Millisecond, "%s leads", target)
				last := led.Last()
				require.Equal(t, leader, last.Who, "the leader before the move was the last to end")
				gap := led.Started(target).Sub(last.End)
				t.Logf("move %d: %s → %s, leaderless for %v", move, leader, target, gap)
				assert.Less(t, gap, kLease, "a hand-over does not wait for a lease")
				assert.Equal(t, token+1, led.Token(target), "fencing token +1")
				obs, err := operator.Get(context.Background())
				require.NoError(t, err)
				assert.NotContains(t, obs.Annotations, locks.PreferredHolderAnnotation, "the request is consumed")
				leader = target
			}
			led.Check(t)
		})
	}
}

func indexOf(ids []string, id string) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// preferHolder sets spec.strategy and spec.preferredHolder of a Lease as
// Kubernetes' coordinated leader election does, leaving the rest alone.
func preferHolder(t *testing.T, ns, name, who string) {
	t.Helper()
	patch := `{"spec":{"strategy":"OldestEmulationVersion","preferredHolder":"` + who + `"}}`
	lease, err := kubetest.Client(t).CoordinationV1().Leases(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	require.NotNil(t, lease.Spec.PreferredHolder, "the test API server serves spec.preferredHolder (feature gate CoordinatedLeaderElection)")
}

// TestSpecPreferredHolderOnRealAPIServer: a Lease whose spec.preferredHolder
// names another candidate, as the API server's coordinated election
// writes it: the holder drains and hands over at once, to a tenure
// candidate or to a client-go one, and the field is kept.
func TestSpecPreferredHolderOnRealAPIServer(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := leadertest.New()
	a := startCandidate(t, lockKinds["lease"](t, cs, ns, "lock", "a"), led)
	require.Equal(t, "a", led.Leader(t))
	startCandidate(t, lockKinds["lease"](t, cs, ns, "lock", "b"), led)
	require.Eventually(t, func() bool { return a.Leader() == "a" }, 10*time.Second, time.Millisecond)

	preferHolder(t, ns, "lock", "b")
	require.Eventually(t, func() bool { return led.Started("b") != (time.Time{}) }, 10*time.Second, time.Millisecond, "b leads")
	gap := led.Started("b").Sub(led.Last().End)
	t.Logf("a → b: leaderless for %v", gap)
	assert.Less(t, gap, kLease, "the holder hands over rather than letting the lease expire")
	lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "lock", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, lease.Spec.PreferredHolder, "tenure never clears a field it does not own")
	assert.Equal(t, "b", *lease.Spec.PreferredHolder)

	// A client-go candidate named there: it takes the lock handed to it
	// at its next poll, since the record names it.
	var cgLeads sync.WaitGroup
	cgLeads.Add(1)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: "lock"},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: "client-go"},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry, ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { led.Begin("client-go", -1) },
			OnStoppedLeading: func() { led.End("client-go") },
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	preferHolder(t, ns, "lock", "client-go")
	require.Eventually(t, func() bool { return led.Started("client-go") != (time.Time{}) }, 10*time.Second, time.Millisecond, "client-go leads")
	gap = led.Started("client-go").Sub(led.Last().End)
	t.Logf("b → client-go: leaderless for %v", gap)
	assert.Less(t, gap, kLease, "client-go takes a lock handed to it without waiting for it to expire")
	led.Check(t)
}

// TestHandOverToADeadCandidateIsTakenBack: a candidate asked for that
// never takes the lock leaves it held until its last holder, still
// campaigning, takes it back (two and a half retry periods), on every lock
// kind; nobody else snatches it meanwhile, and the request does not move
// the new term.
func TestHandOverToADeadCandidateIsTakenBack(t *testing.T) {
	cs := kubetest.Client(t)
	for _, kind := range []string{"lease", "lease-polling", "configmap"} {
		t.Run(kind, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			led := leadertest.New()
			startCandidate(t, lockKinds[kind](t, cs, ns, "lock", "a"), led)
			require.Equal(t, "a", led.Leader(t))
			startCandidate(t, lockKinds[kind](t, cs, ns, "lock", "b"), led)
			operator := lockKinds[kind](t, cs, ns, "lock", "operator")
			askMove(t, operator, "gone")
			require.Eventually(t, func() bool { return led.Ended() == 1 }, 10*time.Second, time.Millisecond, "a's work ends")
			handed := led.Last().End
			require.Eventually(t, func() bool { return len(led.Leaders()) == 1 }, 10*time.Second, time.Millisecond)
			next := led.Leaders()[0]
			took := led.Started(next).Sub(handed)
			t.Logf("handed to a dead candidate: %s leads again after %v", next, took)
			assert.Equal(t, "a", next, "the last holder takes it back; b waits for the handed lease")
			assert.Greater(t, took, 2*kRetry, "taken back only once the target had time to take it")
			assert.Less(t, took, kLease-kRetry, "taken back well before the handed lease expires")
			obs, err := operator.Get(context.Background())
			require.NoError(t, err)
			assert.Equal(t, "a", obs.Record.HolderIdentity)
			assert.Empty(t, obs.Annotations, "the take-back clears the request and the mark")
			time.Sleep(2 * kRetry)
			assert.Equal(t, []string{"a"}, led.Leaders(), "the new term stays")
			led.Check(t)
		})
	}
}
