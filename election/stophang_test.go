package election

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStopGivesUpWhileARenewalHangs: Stop(ctx) is documented to
// give up and return once ctx ends. A renewal in flight on a lock that
// ignores cancellation (stuckLock, as the chaos suite's stubborn lock) is
// joined by hold's deferred inflight.Wait whenever hold returns without
// gaveUp (the work returned after Stop's cancel, or the deadline passed),
// and giving up cannot interrupt that join: Stop waits <-done for ever.
func TestStopGivesUpWhileARenewalHangs(t *testing.T) {
	lock := newStuckLock(freeLock(t))
	a := newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() } // well-behaved work
	})
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	lock.stuck.Store(true)
	a.waitTimers(t, 2)
	a.clock.Step(retry)
	waitFor(t, func() bool { return lock.hung.Load() == 1 }, "the renewal hangs")
	t.Cleanup(lock.unstick) // runs before Run is joined

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()
	select {
	case err := <-stopped:
		require.Error(t, err, "Stop says it gave up")
	case <-time.After(3 * time.Second):
		t.Errorf("Stop(ctx) did not return 3s after its 100ms ctx ended: Run is stuck joining a hung renewal (IsLeader=%v)", a.IsLeader())
		lock.unstick()
		<-stopped
	}
}
