package framework_test

// From the second placement review: two programs in one namespace share the member
// records and the coordinator lock.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// TestTwoProgramsInOneNamespace: two different tenure programs run in
// one namespace (one team's controllers; the namespace is the Pod's by
// default), both with placement balanced. Member records are found by the
// label tenure.dev/member alone and components by name alone, and both
// programs campaign for the one coordinator lock "tenure-placement". Here
// (memory locks shared as a namespace is): program P has components aa,
// bb (locks aa, bb) on replica p1; program Q has components also named aa,
// bb, on locks q-aa, q-bb (lock_name), on replica q1. Sequence:
//
//  1. Whichever program wins "tenure-placement" coordinates with its own
//     locks, and reads the other program's replica as a member that runs
//     aa and bb.
//  2. Its replica leads 2, the other program's replica 0 of its locks:
//     it asks for aa to be handed to the other program's replica, which
//     does not campaign for that lock at all.
//  3. The lock is handed over to a non-candidate: no leader for a lease;
//     its own replica takes it back, and is asked again at once.
//
// (With distinct component names the other program is never placed at
// all: its coordinator never wins.) The four components must keep a
// leader nearly all the time.
func TestTwoProgramsInOneNamespace(t *testing.T) {
	noLeaks(t)
	space := locks.NewMemorySpace()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	ledP, ledQ := newLedgers(), newLedgers()
	var apps []*fxtest.App
	p := replica(t, "p1", placedMemoryYAML, fx.Options(fx.Supply(space), fx.Supply(roster)), recorded(ledP, "aa"), recorded(ledP, "bb"))
	q := replica(t, "q1", placedMemoryYAML+"components:\n  aa: {lock_name: q-aa}\n  bb: {lock_name: q-bb}\n",
		fx.Options(fx.Supply(space), fx.Supply(roster)), recorded(ledQ, "aa"), recorded(ledQ, "bb"))
	apps = append(apps, p, q)
	for _, a := range apps {
		a.RequireStart()
	}
	defer func() {
		for _, a := range apps {
			a.RequireStop()
		}
	}()
	require.Eventually(t, func() bool {
		return len(ledP.of("aa").Leaders()) == 1 && len(ledQ.of("aa").Leaders()) == 1
	}, 5*time.Second, 10*time.Millisecond, "both programs lead")
	start := time.Now()
	var leaderless time.Duration
	const step = 10 * time.Millisecond
	for time.Since(start) < 5*time.Second {
		for _, led := range []*ledgers{ledP, ledQ} {
			for _, n := range []string{"aa", "bb"} {
				if len(led.of(n).Leaders()) == 0 {
					leaderless += step
				}
			}
		}
		time.Sleep(step)
	}
	assert.Less(t, leaderless, time.Second, "over 5s the four components had no leader for %v in all", leaderless)
}

// TestTwoPlacementGroupsInOneNamespace: two programs with distinct component
// names in one namespace. Program P (replica p1, component aa) starts
// first and holds "tenure-placement"; program Q (replicas q1, q2,
// components cc, dd, ee, ff) starts after: q1 takes all four, q2 none,
// and nothing ever balances them, since the only coordinator knows P's
// locks alone.
func TestTwoPlacementGroupsInOneNamespace(t *testing.T) {
	noLeaks(t)
	space := locks.NewMemorySpace()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	ledP, ledQ := newLedgers(), newLedgers()
	p := replica(t, "p1", placedMemoryYAML+"placement_group: p\n", fx.Options(fx.Supply(space), fx.Supply(roster)), recorded(ledP, "aa"))
	p.RequireStart()
	defer p.RequireStop()
	require.Eventually(t, func() bool { return len(ledP.of("aa").Leaders()) == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // p1 is the coordinator
	names := []string{"cc", "dd", "ee", "ff"}
	mk := func() []components.Component {
		var cs []components.Component
		for _, n := range names {
			cs = append(cs, recorded(ledQ, n))
		}
		return cs
	}
	q1 := replica(t, "q1", placedMemoryYAML+"placement_group: q\n", fx.Options(fx.Supply(space), fx.Supply(roster)), mk()...)
	q1.RequireStart()
	defer q1.RequireStop()
	require.Eventually(t, func() bool { s, ok := shares(ledQ, names); return ok && s["q1"] == 4 }, 5*time.Second, 10*time.Millisecond)
	q2 := replica(t, "q2", placedMemoryYAML+"placement_group: q\n", fx.Options(fx.Supply(space), fx.Supply(roster)), mk()...)
	q2.RequireStart()
	defer q2.RequireStop()
	assert.Eventually(t, func() bool { s, ok := shares(ledQ, names); return ok && s["q1"] == 2 && s["q2"] == 2 }, 5*time.Second, 20*time.Millisecond,
		"program Q is never balanced")
}
