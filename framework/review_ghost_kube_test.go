package framework_test

// From the third placement review, on a real API server: a stopping replica hands its
// leaderships to the member record of a replica that died long ago (see
// placement/zz_break_createdstale_test.go for the roster's part).

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/placement"
)

// TestAStoppingReplicaDoesNotHandToADeadMember. Interleaving (Leases,
// lease 3s, retry 200ms, placement balanced, components aa..dd):
//
//  1. c starts (it becomes the coordinator), then s: 2/2.
//  2. A replica "ghost" starts and dies at once (a crash loop's first
//     run; its record stays: no $POD_UID). Its record is made after s's
//     roster listed, so s's roster marks it "created". (c, the
//     coordinator, sees it for a lease and may move a leadership to it,
//     taken back 2.5 RetryPeriods later: as for any replica that dies.)
//  3. Long after (here 6s, two leases), c's view has expired the ghost,
//     and the spread is 2/2 again.
//  4. s stops. handOff calls its roster's Members() for the first time:
//     the ghost's first sighting counts as "changed now", so it is live,
//     the newest, and leads nothing: both of s's leaderships are asked to
//     move to it. s hands both locks over to "ghost" and exits; nobody
//     takes them until they expire, a lease later, though c could lead
//     them at once.
//
// After s's stop every component must have a leader well within a lease.
func TestAStoppingReplicaDoesNotHandToADeadMember(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	names := []string{"aa", "bb", "cc", "dd"}
	led := newLedgers()
	yaml := placedYAML(ns, "") + "placement_group: g\n"
	start := func(id string) *fxtest.App {
		opts := []fx.Option{
			framework.Module,
			framework.ConfigYAML("test.yaml", []byte(yaml+"identity: "+id+"\n")),
			withClient(cs),
			fx.Supply(slog.New(slog.DiscardHandler)),
			fx.NopLogger,
		}
		for _, n := range names {
			opts = append(opts, supply(recorded(led, n)))
		}
		app := fxtest.New(t, opts...)
		app.RequireStart()
		return app
	}
	c := start("c")
	defer c.RequireStop()
	time.Sleep(500 * time.Millisecond)
	s := start("s")
	waitForShares(t, led, names, map[string]int{"c": 2, "s": 2}, 20*time.Second, "step 1")

	// Step 2: the ghost announces once, as a replica of this program does.
	ghost, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, 3*time.Second, placement.WithGroup("g"))
	require.NoError(t, err)
	var keys []string
	for _, n := range names {
		keys = append(keys, fmt.Sprintf("lease/%s/%s", ns, n))
	}
	require.NoError(t, ghost.Announce(context.Background(), placement.Member{Identity: "ghost", Components: keys, Started: time.Now()}))
	ghost.Close()

	time.Sleep(6 * time.Second) // step 3
	waitForShares(t, led, names, map[string]int{"c": 2, "s": 2}, 10*time.Second, "step 3")

	// Step 4.
	stopped := time.Now()
	s.RequireStop()
	var gap time.Duration
	for _, n := range names {
		require.Eventually(t, func() bool { return len(led.of(n).Leaders()) == 1 }, 10*time.Second, 10*time.Millisecond)
	}
	gap = time.Since(stopped)
	t.Logf("every component led again %v after s's stop began", gap)
	assert.Less(t, gap, 1500*time.Millisecond, "s's leaderships had no leader for %v (a lease is 3s): handed to a member dead for 6s", gap)
}
