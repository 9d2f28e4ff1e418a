package placement

// From the second placement review: a move asked for is never withdrawn or redirected
// when its target stops being a place for the leadership.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/locks"
)

// TestAMoveToAReplicaThatGoesAwayIsWithdrawn. Sequence (one
// coordinator, members a and b, a leads x and y, its x work drains
// slowly, say a batch that takes a while to flush):
//
//  1. Round 1: 2/0, Plan asks a to hand x to b: the lock's
//     tenure.dev/preferred-holder is "b". a cancels x's work and renews
//     while it drains.
//  2. b goes: it is marked shutting down (a rolling update, a scale
//     down), or its record expires (it crashed).
//  3. Round 2: Plan drops the pending move (b is not eligible, or not a
//     member), counts x at a, and emits no move since x "stays" at a.
//     Nothing withdraws or redirects the request on the lock.
//  4. x's work returns; a hands the lock over to b as still asked: to a
//     replica that is stopping (x moves twice, or is released by b) or
//     that is gone (x has no leader for a whole lease).
//
// After round 2 the lock must no longer ask for b.
func TestAMoveToAReplicaThatGoesAwayIsWithdrawn(t *testing.T) {
	for _, how := range []string{"shutting down", "crashed", "cordoned"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			clk := clocktesting.NewFakeClock(t0)
			roster := NewMemoryRoster(clk, 3*time.Second)
			a := Member{Identity: "a", Components: []string{"x", "y"}, Started: t0}
			b := Member{Identity: "b", Components: []string{"x", "y"}, Started: t0.Add(time.Second)}
			require.NoError(t, roster.Announce(ctx, a))
			require.NoError(t, roster.Announce(ctx, b))
			comps := map[string]Component{}
			lockOf := map[string]*locks.MemoryLock{}
			for _, name := range []string{"x", "y"} {
				l := locks.NewMemoryLock(name)
				_, err := l.Create(ctx, locks.Record{HolderIdentity: "a", LeaseDuration: 3 * time.Second, AcquireTime: t0, RenewTime: t0, LeaderTransitions: 1})
				require.NoError(t, err)
				comps[name], lockOf[name] = Component{Lock: l}, l
			}
			holders := func() map[string]string { return map[string]string{"x": "a", "y": "a"} } // a drains x: it still holds it
			coord, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: comps, Holders: holders, Interval: time.Second, Clock: clk})
			require.NoError(t, err)
			moves := coord.Round(ctx)
			require.Equal(t, []Move{{Component: "x", From: "a", To: "b"}}, moves)

			clk.Step(time.Second)
			switch how {
			case "shutting down":
				b.ShuttingDown = true
				require.NoError(t, roster.Announce(ctx, b))
				require.NoError(t, roster.Announce(ctx, a))
			case "cordoned":
				b.Cordoned = true
				require.NoError(t, roster.Announce(ctx, b))
				require.NoError(t, roster.Announce(ctx, a))
			case "crashed":
				clk.Step(3 * time.Second) // b's record expires; a renews its own
				require.NoError(t, roster.Announce(ctx, a))
			}
			coord.Round(ctx)
			obs, err := lockOf["x"].Get(ctx)
			require.NoError(t, err)
			assert.NotEqual(t, "b", obs.Annotations[locks.PreferredHolderAnnotation],
				"the lock still asks a to hand x over to b, which is %s", how)
		})
	}
}
