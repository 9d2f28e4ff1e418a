package placement

// From the third placement review: a coordinator's first round, made before its roster has
// listed the member records, adopts the moves asked on the locks and withdraws them all.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"

	"github.com/tenure/tenure/locks"
)

// TestFirstRoundBeforeTheRosterSyncedKeepsTheRequests. Interleaving
// (framework: placer.start makes the LeaseRoster, whose informer starts
// listing, and campaigns for the coordinator at the same time):
//
//  1. Stopping replica S leads x; its handOff asked x to move to N
//     (tenure.dev/preferred-holder: N). S drains x's work.
//  2. Replica C starts (or restarts with a new identity) while the
//     coordinator lock is free (its last holder crashed and it expired,
//     or was released). placer.start: NewLeaseRoster starts its list;
//     the coordinator election wins in its first attempt.
//  3. C's first Round runs before the roster's list returned (the list
//     waits behind the start's other requests, or the API server is
//     slow): Members() is empty. adopt reads x's request S→N; N is not a
//     member C knows, so the move is "moot"; Plan, with no members, moves
//     nothing; the request is withdrawn.
//  4. S's drained work returns with no request: S releases x instead of
//     handing it to N, and the move N was asked for is lost (x goes to
//     whoever is first, and the coordinator may move it again later).
//
// A round whose roster has not synced must not withdraw (or plan).
func TestFirstRoundBeforeTheRosterSyncedKeepsTheRequests(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	listed := make(chan struct{})
	cs.PrependReactor("list", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-listed // the list is slow
		return false, nil, nil
	})
	// N and S are announced; C's list has not returned.
	now := time.Now()
	announce := func(m Member) { // what S's and N's rosters write
		r := &LeaseRoster{client: cs.CoordinationV1(), namespace: "ns", lease: 3 * time.Second, clock: clock.RealClock{}}
		require.NoError(t, r.Announce(ctx, m))
	}
	announce(Member{Identity: "S", Components: []string{"x"}, Started: now.Add(-time.Hour), ShuttingDown: true})
	announce(Member{Identity: "N", Components: []string{"x"}, Started: now})

	roster, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second)
	require.NoError(t, err)
	defer func() { close(listed); roster.Close() }()

	x := locks.NewMemoryLock("x")
	_, err = x.Create(ctx, locks.Record{HolderIdentity: "S", LeaseDuration: 3 * time.Second, AcquireTime: now, RenewTime: now, LeaderTransitions: 1})
	require.NoError(t, err)
	_, err = Request(ctx, x, "S", "N") // step 1: S's handOff
	require.NoError(t, err)

	coord, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: map[string]Component{"x": {Lock: x}},
		Holders: func() map[string]string { return map[string]string{"x": "S"} }, Interval: time.Second})
	require.NoError(t, err)
	require.False(t, roster.Synced())
	coord.Round(ctx) // step 3
	obs, err := x.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, "N", obs.Annotations[locks.PreferredHolderAnnotation],
		"the first round, before the roster listed anyone, withdrew the stopping replica's hand-over to N")
}
