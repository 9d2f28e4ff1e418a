package framework_test

// From the second placement review: placement hands a leadership to a replica that is
// not campaigning for it (failure backoff).

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// placedMemoryYAML: memoryYAML's timings, placement balanced; the failure
// backoff is the test's.
const placedMemoryYAML = `
lock: memory
lease_duration: 2s
renew_deadline: 1500ms
retry_period: 100ms
placement: balanced
`

// TestPlacementDoesNotHandALeadershipToAReplicaInFailureBackoff. Sequence
// (memory locks, lease 2s, placement balanced, failure_backoff 6s; two
// replicas r1, r2; components aa, bb, cc, dd):
//
//  1. The replicas settle 2/2; call v the one that leads aa.
//  2. aa's work starts failing on v (its database is unreachable from
//     v's node, say): v's term ends, v releases aa and waits out its
//     failure backoff before campaigning for aa again. The other replica
//     takes aa: it leads 3, v leads 1.
//  3. The coordinator sees 3/1 and moves the first component of the
//     busiest replica, aa, to v: v's member record still lists aa. The
//     other replica drains aa and writes the lock over to v.
//  4. v is not campaigning for aa: nobody takes the lock until it
//     expires, a lease later; the other replica takes it again, and the
//     coordinator sends it back to v again (3/1): aa is leaderless most
//     of the time while v backs off, though a healthy replica runs it.
//
// Without placement the healthy replica would keep aa. The test measures
// how long aa has no leader over 6s after the failure: it must be a small
// part of it.
func TestPlacementDoesNotHandALeadershipToAReplicaInFailureBackoff(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	space := locks.NewMemorySpace()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	var victim atomic.Value
	victim.Store("")
	names := []string{"aa", "bb", "cc", "dd"}
	mk := func() []components.Component {
		var cs []components.Component
		for _, n := range names[1:] {
			cs = append(cs, recorded(led, n))
		}
		aa := components.New("aa", func(ctx context.Context) error {
			term, _ := election.TermFromContext(ctx)
			if victim.Load() == term.Identity {
				return errors.New("database unreachable from this node")
			}
			led.of("aa").Begin(term.Identity, term.FencingToken)
			defer led.of("aa").End(term.Identity)
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(10 * time.Millisecond):
					if victim.Load() == term.Identity {
						return errors.New("database unreachable from this node")
					}
				}
			}
		})
		return append(cs, aa)
	}
	yaml := placedMemoryYAML + "failure_backoff: 6s\nfailure_backoff_max: 6s\n"
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2"} {
		apps[id] = replica(t, id, yaml, fx.Options(fx.Supply(space), fx.Supply(roster)), mk()...)
		apps[id].RequireStart()
		time.Sleep(200 * time.Millisecond)
	}
	defer func() {
		for _, a := range apps {
			a.RequireStop()
		}
	}()
	require.Eventually(t, func() bool {
		s, ok := shares(led, names)
		return ok && s["r1"] == 2 && s["r2"] == 2
	}, 10*time.Second, 20*time.Millisecond, "2/2")
	v := led.of("aa").Leader(t)
	victim.Store(v) // aa's work on v fails now, and at every start on v
	other := "r1"
	if v == "r1" {
		other = "r2"
	}
	require.Eventually(t, func() bool { l := led.of("aa").Leaders(); return len(l) == 1 && l[0] == other },
		5*time.Second, 10*time.Millisecond, "aa moved to %s after failing on %s", other, v)

	start := time.Now()
	var leaderless time.Duration
	const step = 10 * time.Millisecond
	for time.Since(start) < 6*time.Second {
		if len(led.of("aa").Leaders()) == 0 {
			leaderless += step
		}
		time.Sleep(step)
	}
	t.Logf("aa had no leader for %v of 6s", leaderless)
	assert.Less(t, leaderless, time.Second, "aa had no leader for %v of 6s: placement kept sending it to %s, which backs off", leaderless, v)
}
