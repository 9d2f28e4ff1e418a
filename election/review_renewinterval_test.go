package election

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDefaultRenewIntervalSurvivesThreeFailedAttempts (from the fourth
// review): at the default renew interval, every wait at its longest
// jitter, an API outage that begins just before the first renewal and
// fails it and the next two retries must not end the term: the fourth
// attempt, after the outage, renews before the deadline. A default of
// 4.333s at 10s/2s with retries a whole retry period apart (tried, see
// BENCHMARKS.md) let the third attempt fall on the deadline itself, where
// it is refused: a 2.6s outage ended a healthy leader's term.
func TestDefaultRenewIntervalSurvivesThreeFailedAttempts(t *testing.T) {
	const retry, deadline = 2 * time.Second, 10 * time.Second
	lock := &testLock{Lock: freeLock(t)}
	c := newCandidate(t, lock, "a", epoch, func(cfg *Config) {
		cfg.RetryPeriod, cfg.RenewDeadline = retry, deadline
		cfg.RenewInterval = 0 // the default
		cfg.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() }
	})
	c.jitter = func(d time.Duration) time.Duration { return jittered(d) } // the longest waits
	c.run(t)
	waitFor(t, c.IsLeader, "leader")
	first := jittered(c.cfg.RenewInterval) // the first renewal, after the acquisition at epoch
	from, until := first-10*time.Millisecond, first+3*jittered(failedRenewalRetry(retry))-10*time.Millisecond
	failed := 0
	for now := time.Duration(0); now < deadline+500*time.Millisecond; now = c.clock.Now().Sub(epoch) {
		switch {
		case now >= from && now < until && !lock.failUpdates.Load():
			lock.updates.Store(0)
			lock.failUpdates.Store(true)
		case now >= until && lock.failUpdates.Load():
			failed = int(lock.updates.Load())
			lock.failUpdates.Store(false)
		}
		waitFor(t, func() bool { return c.clock.Waiters() >= 2 || !c.IsLeader() }, "hold loop idle")
		c.clock.Step(10 * time.Millisecond)
	}
	t.Logf("renew interval %v: outage %v–%v failed %d attempts", c.cfg.RenewInterval, from, until, failed)
	require.Equal(t, 3, failed, "the outage fails the renewal and two retries")
	assert.True(t, c.IsLeader(), "the fourth attempt, after the outage, renews before the deadline")
}
