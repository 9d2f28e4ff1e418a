package framework_test

// From the second placement review: the LeaseRoster's informer starts when the app is
// built, and only the runner's stop after a successful start closes it.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenure/tenure/components"
)

// TestRosterWatchDoesNotOutliveAFailedStart. Sequence: an app on Lease
// locks with placement balanced is built (newRunner → newPlacer →
// NewLeaseRoster, which starts the member Leases' informer at once); its
// start fails (here its deadline has passed; in a cluster also a missing
// RBAC rule found by the access check, or another hook's failure before
// the runner's). fx does not call the OnStop of a hook whose
// OnStart failed, and Runner.stop returns at once without a start anyway
// (r.cancel is nil), so placer.stop, the only caller of the roster's
// Close, never runs: the informer's goroutines, and its list/watch of the
// API server, outlive the app.
func TestRosterWatchDoesNotOutliveAFailedStart(t *testing.T) {
	noLeaks(t)
	cs := fake.NewClientset()
	app := replica(t, "r1", "lock: lease\nnamespace: ns\nplacement: balanced\nlease_duration: 3s\nrenew_deadline: 2s\nretry_period: 200ms\n",
		withClient(cs), components.New("aa", func(ctx context.Context) error { <-ctx.Done(); return nil }))
	// The start's deadline has passed (fx's StartTimeout, or a slow
	// constructor before): the start fails before any election starts.
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	require.Error(t, app.Start(ctx))
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	_ = app.Stop(stopCtx) // what an app does after a failed start; nothing closes the roster
}
