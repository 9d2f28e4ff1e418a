package framework_test

// From the second placement review: on a real API server: old replicas that stop
// together after every new replica is up.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/internal/kubetest"
)

// TestBlueGreenMovesEachLeadershipOnce: 3 replicas of v1 × 12 components
// on Leases, placement balanced, 4/4/4. Three replicas of v2 start (a
// Deployment with maxSurge 100%, or a blue/green switch: every new
// replica is up before an old one stops, the condition the doc gives for
// one move per leadership). Then the three old replicas get their stop at
// the same moment, as SIGTERM reaches every old Pod at once. Each one's
// handOff plans in a view where only itself is shutting down and the v2
// replicas lead nothing, so all three send their leaderships to the same
// v2 replicas first (newest first, then least loaded in its own view):
// 6/3/3 on v2, then the coordinator balances to 4/4/4, moving some
// leaderships a second time. Each component must move at most once.
func TestBlueGreenMovesEachLeadershipOnce(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	names := twelve()
	led := newLedgers()
	var logs lockedBuffer
	start := func(id, rev string) *fxtest.App {
		return startPlaced(t, cs, led, names, &logs, id, placedYAML(ns, rev))
	}
	apps := map[string]*fxtest.App{}
	t.Cleanup(func() {
		for _, a := range apps {
			a.RequireStop()
		}
	})
	for _, id := range []string{"r1", "r2", "r3"} {
		apps[id] = start(id, "v1")
		time.Sleep(300 * time.Millisecond)
	}
	waitForShares(t, led, names, map[string]int{"r1": 4, "r2": 4, "r3": 4}, 20*time.Second, "after the start")
	for _, id := range []string{"n1", "n2", "n3"} {
		apps[id] = start(id, "v2")
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second) // ready
	before := transitions(led, names)
	var wg sync.WaitGroup
	for _, old := range []string{"r1", "r2", "r3"} {
		app := apps[old]
		delete(apps, old)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			assert.NoError(t, app.Stop(ctx))
		})
	}
	wg.Wait()
	waitForShares(t, led, names, map[string]int{"n1": 4, "n2": 4, "n3": 4}, 15*time.Second, "after the switch")
	after := transitions(led, names)
	var moves []string
	for _, n := range names {
		moves = append(moves, fmt.Sprintf("%s:%d", n, after[n]-before[n]))
	}
	t.Logf("moves per component: %v", moves)
	for _, n := range names {
		assert.LessOrEqual(t, after[n]-before[n], 1, "%s moved %d times in one rolling update", n, after[n]-before[n])
		led.of(n).Check(t)
	}
}
