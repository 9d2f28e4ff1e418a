package election

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tenure/tenure/locks"
)

// steppedWallLock is a Lease-like lock (microsecond times) on a host whose
// wall clock stepped back by back at stepAt (an NTP step, a VM restored
// from a snapshot): the renew times the leader writes from then on are
// back behind its monotonic clock, which the election's own timers and
// deadlines use, as a real time.Time's monotonic reading would be.
type steppedWallLock struct {
	microLock
	clock   interface{ Now() time.Time }
	stepAt  time.Time
	back    time.Duration
	mu      sync.Mutex
	updates atomic.Int32
}

func (l *steppedWallLock) TimeResolution() time.Duration { return time.Microsecond }

func (l *steppedWallLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if !l.clock.Now().Before(l.stepAt) {
		l.updates.Add(1)
		r.RenewTime = r.RenewTime.Add(-l.back)
	}
	return l.microLock.Update(ctx, version, r)
}

// TestWallClockStepBackKeepsTheTerm: after the leader's wall clock steps
// back (an NTP step, a VM restored from a snapshot) the renew times it
// writes are behind the last one, yet every write changes the record's
// bytes and other candidates see each as a renewal. The leader must count
// them too: before, it counted a renewal only when the stored renew time
// moved past the last one, so it took each for a same-second renewal,
// wrote again every 10ms until its wall clock caught up, and a step back
// of more than the renew deadline ended a healthy term.
func TestWallClockStepBackKeepsTheTerm(t *testing.T) {
	const retry, deadline = 2 * time.Second, 10 * time.Second
	for _, back := range []time.Duration{8 * time.Second, 12 * time.Second} {
		t.Run(fmt.Sprintf("back=%v", back), func(t *testing.T) {
			lock := &steppedWallLock{back: back}
			lock.record = locks.Record{} // free
			c := newCandidate(t, lock, "a", epoch, func(cfg *Config) {
				cfg.RetryPeriod, cfg.RenewDeadline = retry, deadline
				cfg.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() }
			})
			lock.clock = c.clock
			ri := c.cfg.RenewInterval
			lock.stepAt = epoch.Add(ri + 100*time.Millisecond) // just after the first renewal
			c.run(t)
			waitFor(t, c.IsLeader, "leader")
			var ended time.Duration
			for now := time.Duration(0); now < ri+deadline+time.Second; now = c.clock.Now().Sub(epoch) {
				if ended == 0 && !c.IsLeader() {
					ended = now
				}
				waitFor(t, func() bool { return c.clock.Waiters() >= 2 || !c.IsLeader() }, "hold loop idle")
				c.clock.Step(10 * time.Millisecond)
			}
			t.Logf("renew interval %v, wall clock back %v at %v: %d writes after the step; term ended at %v (0: never)",
				ri, back, lock.stepAt.Sub(epoch), lock.updates.Load(), ended)
			assert.Zero(t, ended, "a healthy leader's term ended")
			assert.Less(t, int(lock.updates.Load()), 10, "renewals after the step (a renewal every %v would make %d)", ri, int(deadline/ri)+1)
		})
	}
}
