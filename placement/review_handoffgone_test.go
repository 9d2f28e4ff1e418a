package placement

// From the third placement review: a running coordinator redirects or withdraws only the moves
// it asked itself (or adopted on its first round); the hand-off a stopping replica asks
// for its own leaderships is never looked at again, even when its target goes away.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/locks"
)

// TestAStoppingReplicasHandOffToAReplicaThatGoesAwayIsRedirected.
// Interleaving (members s, m, n; lease 3s; coordinator c = m, running
// for a while, so its adopt is long done):
//
//  1. s leads x. s stops: handOff marks s shutting down, waits a
//     RetryPeriod, and asks x to move to n, the newest (preferred-holder
//     n). s cancels x's work, which takes a while to return (it flushes
//     a batch; shutdown_timeout allows 10s).
//  2. The coordinator's rounds skip x: its holder is shutting down, and
//     "a replica that shuts down asks for its own leaderships to move";
//     the coordinator has no pending move for x.
//  3. n crashes (its record expires), or is stopped (marked shutting
//     down), or is cordoned.
//  4. The coordinator's rounds still skip x: nothing withdraws or
//     redirects the request to n.
//  5. x's work on s returns; s writes the lock over to n and exits (a
//     stopping replica does not take a lock back): x has no leader for a
//     whole lease though m could lead it (or n, stopping, takes it and
//     releases it at once).
//
// The doc's promise ("a move whose target stops being a place for the
// leadership before it is done ... is redirected where the plan now sends
// it, or withdrawn") must hold for the stopping replica's moves too: after
// the round of step 4 the lock must no longer ask for n.
func TestAStoppingReplicasHandOffToAReplicaThatGoesAwayIsRedirected(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, 3*time.Second)
	s := Member{Identity: "s", Components: []string{"x"}, Started: t0}
	m := Member{Identity: "m", Components: []string{"x"}, Started: t0.Add(time.Second)}
	n := Member{Identity: "n", Components: []string{"x"}, Started: t0.Add(2 * time.Second)}
	for _, mm := range []Member{s, m, n} {
		require.NoError(t, roster.Announce(ctx, mm))
	}
	x := locks.NewMemoryLock("x")
	_, err := x.Create(ctx, locks.Record{HolderIdentity: "s", LeaseDuration: 3 * time.Second, AcquireTime: t0, RenewTime: t0, LeaderTransitions: 1})
	require.NoError(t, err)
	holders := func() map[string]string { return map[string]string{"x": "s"} } // s drains x: it still holds it
	coord, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: map[string]Component{"x": {Lock: x}}, Holders: holders, Interval: time.Second, Clock: clk})
	require.NoError(t, err)
	require.Empty(t, coord.Round(ctx), "1/0/0 within one weight: nothing to move")

	// Step 1: s stops and hands x off to n.
	clk.Step(time.Second)
	s.ShuttingDown = true
	for _, mm := range []Member{s, m, n} {
		require.NoError(t, roster.Announce(ctx, mm))
	}
	moves := Plan(roster.Members(), []Leadership{{Component: "x", Holder: "s"}})
	require.Equal(t, []Move{{Component: "x", From: "s", To: "n"}}, moves, "s's handOff plan")
	_, err = Request(ctx, x, "s", "n")
	require.NoError(t, err)
	coord.Round(ctx) // step 2

	// Step 3: n crashes; s and m renew.
	clk.Step(3 * time.Second)
	require.NoError(t, roster.Announce(ctx, s))
	require.NoError(t, roster.Announce(ctx, m))
	coord.Round(ctx) // step 4
	obs, err := x.Get(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, "n", obs.Annotations[locks.PreferredHolderAnnotation],
		"the lock still asks the stopping replica s to hand x to n, whose record expired; m could lead it")
}
