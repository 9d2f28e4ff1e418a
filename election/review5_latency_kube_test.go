package election_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
)

// TestReview5SlowNetworkEndsTermsAtTheDefault (fifth review), on the real
// API server: a lone leader reaches it through a proxy that delays every
// chunk by 200ms each way (a request and its answer take 400ms or more;
// nothing fails). The next renewal is sent a jittered renew interval after
// the last one's answer, and the deadline counts from the last one's
// start, so a term survives while jittered(RenewInterval) + 2 × latency <
// RenewDeadline. At kDeadline 1.5s the default renew interval (750ms,
// jittered up to 900ms) leaves 300ms per request and the terms end; the
// old default (kRetry, 200ms) leaves 630ms and they do not.
func TestReview5SlowNetworkEndsTermsAtTheDefault(t *testing.T) {
	for _, interval := range []time.Duration{0, kRetry} {
		t.Run(fmt.Sprintf("renew_interval=%v", interval), func(t *testing.T) {
			ns := kubetest.Namespace(t)
			proxy, cs := kubetest.ViaProxy(t, 0)
			l, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, "lock", locks.WithIdentity("a"), locks.WithoutWatch())
			require.NoError(t, err)
			_, err = l.Create(context.Background(), locks.Record{}) // free: taken at once
			require.NoError(t, err)
			var terms, ended atomic.Int32
			e, err := election.New(election.Config{Lock: l, Identity: "a", LeaseDuration: kLease, RenewDeadline: kDeadline, RetryPeriod: kRetry,
				RenewInterval: interval, Logger: quiet,
				OnStartedLeading: func(ctx context.Context) { terms.Add(1); <-ctx.Done() },
				OnStoppedLeading: func() { ended.Add(1) },
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = e.Run(ctx) }()
			defer func() { proxy.SetLatency(0); cancel(); <-done }()
			require.Eventually(t, e.IsLeader, 10*time.Second, time.Millisecond)
			time.Sleep(kDeadline) // renewing over the connection already made
			proxy.SetLatency(200 * time.Millisecond)
			time.Sleep(8 * time.Second)
			t.Logf("renew interval %v (default %v), 200ms each way for 8s: %d terms, %d ended",
				interval, election.DefaultRenewIntervalForTest(kDeadline, kRetry), terms.Load(), ended.Load())
			assert.Zero(t, ended.Load(), "a slow network, nothing failing, ended terms")
		})
	}
}
