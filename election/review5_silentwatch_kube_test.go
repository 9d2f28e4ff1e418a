package election_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
)

// TestReview5ReleaseBehindAWatchThatJustWentSilent (fifth review), on the
// real API server at the default renew interval (kLease/kDeadline/kRetry:
// 750ms): b follows the Lease through a watch of its own behind a proxy;
// right after b has seen a renewal through it, the watch goes half-open
// (StallOpen) and a stops gracefully (releases). b reads past its cache
// only once a renewal is overdue, jittered(750ms) + kRetry/2 = 1s after the
// renewal it saw, and takes the lock then. With the watch silent for a
// while first ("after"), b already polls and takes it within a retry
// period. The chaos suite checks only the second case (it silences the
// watches a lease before the stop).
func TestReview5ReleaseBehindAWatchThatJustWentSilent(t *testing.T) {
	for _, silentFor := range []time.Duration{0, 3 * time.Second} {
		t.Run(fmt.Sprintf("silent_for=%v", silentFor), func(t *testing.T) {
			ns := kubetest.Namespace(t)
			direct := kubetest.Client(t)
			proxy, watchClient := kubetest.ViaProxy(t, 0)
			defer proxy.Heal()
			la, err := locks.NewLeaseLock(direct.CoordinationV1(), ns, "lock", locks.WithIdentity("a"))
			require.NoError(t, err)
			lb, err := locks.NewLeaseLock(kubetest.SplitLeases(direct, watchClient), ns, "lock", locks.WithIdentity("b"))
			require.NoError(t, err)
			_, err = la.Create(context.Background(), locks.Record{}) // free: taken at once
			require.NoError(t, err)
			bLeads := make(chan time.Time, 1)
			cfg := func(l locks.Lock, id string, work func(context.Context)) election.Config {
				return election.Config{Lock: l, Identity: id, LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry,
					Logger: quiet, OnStartedLeading: work}
			}
			a, err := election.New(cfg(la, "a", func(ctx context.Context) { <-ctx.Done() }))
			require.NoError(t, err)
			actx, stopA := context.WithCancel(context.Background())
			aDone := make(chan struct{})
			go func() { defer close(aDone); _ = a.Run(actx) }()
			defer func() { stopA(); <-aDone }()
			require.Eventually(t, a.IsLeader, 10*time.Second, time.Millisecond)
			b, err := election.New(cfg(lb, "b", func(ctx context.Context) {
				select {
				case bLeads <- time.Now():
				default:
				}
				<-ctx.Done()
			}))
			require.NoError(t, err)
			bctx, stopB := context.WithCancel(context.Background())
			bDone := make(chan struct{})
			go func() { defer close(bDone); _ = b.Run(bctx) }()
			defer func() { stopB(); <-bDone }()
			// Wait until b has seen two renewals through its watch, and
			// silence it right after the second.
			renewal := func() time.Time { r, _ := b.Record(); return r.RenewTime }
			require.Eventually(t, func() bool { return !renewal().IsZero() }, 10*time.Second, time.Millisecond)
			var seen time.Time
			for range 2 {
				last := renewal()
				require.Eventually(t, func() bool { return !renewal().Equal(last) }, 5*time.Second, 500*time.Microsecond)
				seen = time.Now()
			}
			proxy.StallOpen()
			time.Sleep(silentFor)
			stopped := time.Now()
			stopA()
			<-aDone
			var led time.Time
			select {
			case led = <-bLeads:
			case <-time.After(2 * kLease):
				t.Fatal("b did not take the released lock")
			}
			ri := election.DefaultRenewIntervalForTest(kDeadline, kRetry)
			t.Logf("renew interval %v: b saw a renewal, its watch went silent %v later the release; b led %v after the release, %v after the renewal it saw (bound for a first suspicion: %v)",
				ri, stopped.Sub(seen), led.Sub(stopped), led.Sub(seen), ri*12/10+kRetry/2)
			if silentFor == 0 {
				assert.Less(t, led.Sub(seen), ri*12/10+kRetry/2+150*time.Millisecond, "read past the cache once a renewal is overdue")
			} else {
				assert.Less(t, led.Sub(stopped), kRetry*12/10+150*time.Millisecond, "polling after the first read past the cache")
			}
		})
	}
}
