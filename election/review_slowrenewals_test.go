package election

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/locks"
)

// slowLock answers each Update after latency on the fake clock, as a slow
// but working API server would.
type slowLock struct {
	locks.Lock
	clock   *clocktesting.FakeClock
	latency atomic.Int64 // a time.Duration; 0: none
}

func (l *slowLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if d := time.Duration(l.latency.Load()); d > 0 {
		select {
		case <-l.clock.After(d):
		case <-ctx.Done(): // the test's end: nobody steps the clock any more
			return locks.Observed{}, ctx.Err()
		}
	}
	return l.Lock.Update(context.WithoutCancel(ctx), version, r)
}

// TestSlowRenewalsDoNotEndTheTerm (from the fifth review): renewals that
// each take 3s, none failing, must not end a term at 10s/2s. The deadline
// counts from the start of the last successful write; when the next
// renewal was timed from the last one's answer, a term survived only
// while jittered(RenewInterval) + 2 × latency < RenewDeadline (latency
// under 2.3s at the default renew interval of 4.5s). The next renewal is
// now timed from the last write's start.
func TestSlowRenewalsDoNotEndTheTerm(t *testing.T) {
	const retry, deadline, latency = 2 * time.Second, 10 * time.Second, 3 * time.Second
	for _, interval := range []time.Duration{0, 2 * time.Second} {
		t.Run(fmt.Sprintf("renew_interval=%v", interval), func(t *testing.T) {
			sl := &slowLock{Lock: freeLock(t)}
			c := newCandidate(t, sl, "a", epoch, func(cfg *Config) {
				cfg.RetryPeriod, cfg.RenewDeadline, cfg.RenewInterval = retry, deadline, interval
				cfg.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() }
			})
			sl.clock = c.clock
			c.jitter = func(d time.Duration) time.Duration { return jittered(d) } // the longest waits
			c.run(t)
			waitFor(t, c.IsLeader, "leader")
			sl.latency.Store(int64(latency)) // from the first renewal on
			var ended time.Duration
			for now := time.Duration(0); now < 3*deadline; now = c.clock.Now().Sub(epoch) {
				if ended == 0 && !c.IsLeader() {
					ended = now
				}
				waitFor(t, func() bool { return c.clock.Waiters() >= 2 || !c.IsLeader() }, "hold loop idle")
				c.clock.Step(10 * time.Millisecond)
			}
			assert.Zero(t, ended, "renew interval %v: renewals %v slow, none failing, ended the term at %v", c.cfg.RenewInterval, latency, ended)
		})
	}
}
