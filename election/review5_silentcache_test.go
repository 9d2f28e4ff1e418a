package election

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReview5SilentCacheAtClientGoTimings (fifth review): the scenario of
// TestSilentCacheIsReadPast (a follower's cache goes silent right after
// showing a renewal, then the leader releases) at client-go's 15s/10s/2s,
// where the new default renew interval (4.5s) is longer than RetryPeriod.
// The unit tests' own timings (15s/10s/3s) give a default of RetryPeriod
// itself (defaultRenewInterval(10s, 3s) = 3s), so the existing test never
// sees the longer interval. Checked against the bound that test and the
// chaos suite state (two retry periods) and against the documented one
// (jittered(RenewInterval) + RetryPeriod/2).
func TestReview5SilentCacheAtClientGoTimings(t *testing.T) {
	const lease, deadline, retry = 15 * time.Second, 10 * time.Second, 2 * time.Second
	require.Equal(t, 3*time.Second, defaultRenewInterval(10*time.Second, 3*time.Second), "the unit tests' timings (15s/10s/3s): default = RetryPeriod")
	for _, interval := range []time.Duration{0, 2 * time.Second} {
		t.Run(fmt.Sprintf("renew_interval=%v", interval), func(t *testing.T) {
			mem := freeLock(t)
			cache := &silentCache{MemoryLock: mem}
			opt := func(cfg *Config) {
				cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod, cfg.RenewInterval = lease, deadline, retry, interval
			}
			a := newCandidate(t, mem, "a", epoch, opt)
			b := newCandidate(t, cache, "b", epoch, opt)
			ri := a.cfg.RenewInterval
			step := func(d time.Duration) {
				a.clock.Step(d)
				b.clock.Step(d)
			}
			require.True(t, a.try(t))
			for range 5 { // a renews every renew interval, b sees it in its cache
				require.False(t, b.try(t))
				step(ri)
				require.True(t, a.try(t))
			}
			require.False(t, b.try(t)) // b has seen the last renewal
			cache.freeze(t)            // its watch goes silent
			step(100 * time.Millisecond)
			release(t, a.Election)
			released := a.clock.Now()
			for !b.try(t) {
				step(100 * time.Millisecond)
				require.Less(t, a.clock.Since(released), lease, "b never saw the release")
			}
			took := a.clock.Since(released)
			t.Logf("renew interval %v: a release right after the watch went silent was taken after %v (documented bound %v, two retry periods %v)",
				ri, took, jittered(ri)+retry/2, 2*retry)
			assert.LessOrEqual(t, took, jittered(ri)+retry/2, "the documented bound: jittered(RenewInterval) + RetryPeriod/2")
			assert.LessOrEqual(t, took, 2*retry, "TestSilentCacheIsReadPast's bound: within two retry periods")
		})
	}
}
