package placement

// From the third placement review: a Coordinator adopts the requests on the locks once per
// object, but the framework keeps one Coordinator per start and runs it for every term of
// the coordinator election: a replica that wins the coordinator back never reads the moves
// asked meanwhile by the one that coordinated in between.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/locks"
)

// TestACoordinatorThatWinsAgainAdoptsTheMovesAskedMeanwhile. Interleaving
// (members a, b; a leads x and y; framework: placer.start makes one
// Coordinator, pl.coordinate runs coord.Run for each coordinator term):
//
//  1. Replica c1 coordinates: its first round adopts (nothing) and finds
//     nothing to move; then c1 loses the coordinator lock (its renewals
//     failed for a renew deadline: an API server hiccup).
//  2. Replica c2 coordinates: 2/0, it asks x to move a→b. a drains x.
//     c2 loses the coordinator lock (it stops: a rollout) and c1 wins it
//     back: coord.Run again, on the same Coordinator, adopted = true.
//  3. b crashes (its record expires).
//  4. c1's round: it has no pending move for x (it never adopted c2's),
//     so nothing is moot and nothing withdraws the request to b.
//  5. x's work returns on a, which hands the lock to b, dead: nobody
//     leads x until a takes it back 2.5 RetryPeriods later (a lease, if a
//     is stopping by then).
func TestACoordinatorThatWinsAgainAdoptsTheMovesAskedMeanwhile(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, 3*time.Second)
	a := Member{Identity: "a", Components: []string{"x", "y"}, Started: t0}
	b := Member{Identity: "b", Components: []string{"x", "y"}, Started: t0.Add(time.Second)}
	require.NoError(t, roster.Announce(ctx, a))
	comps := map[string]Component{}
	var x *locks.MemoryLock
	for _, name := range []string{"x", "y"} {
		l := locks.NewMemoryLock(name)
		_, err := l.Create(ctx, locks.Record{HolderIdentity: "a", LeaseDuration: 3 * time.Second, AcquireTime: t0, RenewTime: t0, LeaderTransitions: 1})
		require.NoError(t, err)
		comps[name] = Component{Lock: l}
		if name == "x" {
			x = l
		}
	}
	holders := func() map[string]string { return map[string]string{"x": "a", "y": "a"} }
	mk := func() *Coordinator {
		c, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: comps, Holders: holders, Interval: time.Second, Clock: clk})
		require.NoError(t, err)
		return c
	}
	c1, c2 := mk(), mk()
	require.Empty(t, c1.Round(ctx), "step 1: a alone")

	require.NoError(t, roster.Announce(ctx, b))
	require.Equal(t, []Move{{Component: "x", From: "a", To: "b"}}, c2.Round(ctx), "step 2")

	clk.Step(3 * time.Second) // step 3: b's record expires; a renews
	require.NoError(t, roster.Announce(ctx, a))
	c1.Round(ctx) // step 4: c1's term again
	obs, err := x.Get(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, "b", obs.Annotations[locks.PreferredHolderAnnotation],
		"c1, coordinating again, left the request to b (dead) on x: it adopts the locks' requests only on its object's first round")
}
