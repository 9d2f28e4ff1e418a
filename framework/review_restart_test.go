package framework_test

// From the second placement review: an app started again after a stop (fx allows it,
// and TestRestartAfterAStopThatTimedOutLeadsAgain relies on it) keeps the
// placer's state of the stop.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// TestRestartedReplicaIsAMemberAgain. Sequence (memory locks and
// roster, placement balanced, replicas r1 and r2, components aa..dd):
//
//  1. 2/2.
//  2. r1's app stops: handOff sets placer.member.ShuttingDown = true and
//     announces it; r1's leaderships go to r2 (0/4); stop deletes r1's
//     record (Leave) and, on a cluster, closes the LeaseRoster's informer
//     for good.
//  3. r1's app starts again: placer.start announces placer.member, which
//     still says ShuttingDown. The coordinator never gives r1 anything:
//     0/4 for good. (On a cluster, the closed informer also freezes r1's
//     view of the members: its records all expire a lease later, so r1,
//     if coordinator, places nothing.)
//
// After the restart r1 must be a member that is not shutting down, and
// get its share back.
func TestRestartedReplicaIsAMemberAgain(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	space := locks.NewMemorySpace()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	names := []string{"aa", "bb", "cc", "dd"}
	mk := func() []components.Component {
		var cs []components.Component
		for _, n := range names {
			cs = append(cs, recorded(led, n))
		}
		return cs
	}
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2"} {
		apps[id] = replica(t, id, placedMemoryYAML, fx.Options(fx.Supply(space), fx.Supply(roster)), mk()...)
		apps[id].RequireStart()
		time.Sleep(200 * time.Millisecond)
	}
	defer func() {
		for _, a := range apps {
			a.RequireStop()
		}
	}()
	want := func(r1, r2 int, what string) {
		t.Helper()
		ok := assert.Eventually(t, func() bool {
			s, ok := shares(led, names)
			return ok && s["r1"] == r1 && s["r2"] == r2
		}, 5*time.Second, 20*time.Millisecond, what)
		if !ok {
			s, _ := shares(led, names)
			t.Logf("shares %v; members %+v", s, roster.Members())
		}
	}
	want(2, 2, "2/2 at the start")
	apps["r1"].RequireStop()
	want(0, 4, "r1 stopped")
	apps["r1"].RequireStart()
	want(2, 2, "r1 started again gets its share back")
	for _, m := range roster.Members() {
		assert.False(t, m.ShuttingDown, "%s announced as shutting down after it started again", m.Identity)
	}
}
