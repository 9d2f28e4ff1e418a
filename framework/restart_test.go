package framework_test

// Adversarial tests of a stop that stops waiting for the elections (issue
// 15 review 3).

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
)

// TestRestartAfterAStopThatTimedOutLeadsAgain: the app's stop returns at
// shutdown_timeout while the work of its first term still runs (its
// election's Run goes on, renewing), and fx starts the app again, as it
// allows. Once that old work returns and its lease is released, the
// restarted app must campaign and lead again. The restarted loop calls
// Run on the same election while the old Run still runs: Run fails with
// "Run is already running", the loop ends, and the component never
// campaigns again in this process (nor does a health check say so).
func TestRestartAfterAStopThatTimedOutLeadsAgain(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	var leads atomic.Int32
	stuckOnce := components.New("stuck", func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			<-release // the first term's work ignores ctx
			return nil
		}
		if _, ok := election.TermFromContext(ctx); ok {
			leads.Add(1)
		}
		<-ctx.Done()
		return nil
	})
	space := locks.NewMemorySpace()
	app := replica(t, "r1", memoryYAML+"shutdown_timeout: 200ms\n", fx.Supply(space), stuckOnce)
	app.RequireStart()
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 5*time.Second, 5*time.Millisecond, "r1 leads")
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.ErrorContains(t, app.Stop(stopCtx), "did not return within shutdown_timeout")

	require.NoError(t, app.Start(context.Background()))
	defer app.RequireStop()
	close(release) // the first term's work returns; its Run releases the lease, and the new loop campaigns
	assert.Eventually(t, func() bool { return leads.Load() > 0 }, 5*time.Second, 10*time.Millisecond,
		"the restarted app never leads again")
}
