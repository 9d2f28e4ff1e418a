package election

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWorkIsCancelledBeforeTheRelease: when the leader work returns on
// its own, hold returns "the leader work returned" without calling
// cancelWork, and lead releases the lock and calls OnStoppedLeading before
// its deferred cancelWork runs. A goroutine the work started with its
// context (not joined) sees a live context after the lock was released
// and another candidate leads, for as long as OnStoppedLeading takes. The
// code before the change cancelled the work before releasing.
func TestWorkIsCancelledBeforeTheRelease(t *testing.T) {
	mem := freeLock(t)
	workCtx := make(chan context.Context, 1)
	inStopped := make(chan struct{})
	leaveStopped := make(chan struct{})
	a := newCandidate(t, mem, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			workCtx <- ctx // e.g. `go pump(ctx)`, then return
		}
		c.OnStoppedLeading = func() {
			close(inStopped)
			<-leaveStopped
		}
	})
	b := newCandidate(t, mem, "b", epoch)
	a.run(t)
	t.Cleanup(func() {
		select {
		case <-leaveStopped:
		default:
			close(leaveStopped)
		}
	})
	ctx := <-workCtx
	select {
	case <-inStopped:
	case <-time.After(5 * time.Second):
		t.Fatal("OnStoppedLeading not called")
	}
	require.True(t, b.try(t), "b leads: a released")
	if ctx.Err() == nil {
		t.Errorf("a's work context is still live (Valid=%v) after a released the lock and b leads", Valid(ctx))
	}
	close(leaveStopped)
}
