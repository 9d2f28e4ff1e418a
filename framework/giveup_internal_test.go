package framework

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

// stuckLock hangs Updates, ignoring their context, while stuck is set.
type stuckLock struct {
	locks.Lock
	stuck   atomic.Bool
	hung    atomic.Int32
	once    sync.Once
	unstuck chan struct{}
}

func (l *stuckLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if l.stuck.Load() {
		l.hung.Add(1)
		<-l.unstuck
		return locks.Observed{}, context.Canceled
	}
	return l.Lock.Update(ctx, version, r)
}

func (l *stuckLock) unstick() { l.once.Do(func() { l.stuck.Store(false); close(l.unstuck) }) }

// TestGiveUpEndsAStuckElection: the leader work is well-behaved, but a
// renewal hangs on a lock that ignores cancellation. Runner.Stop waits
// shutdown_timeout, then giveUp calls Election.Stop(expired), which still
// waits <-done for Run, stuck joining the renewal; giveUp's wg.Wait never
// returns, so the select that reads the second signal is never reached:
// SIGTERM is swallowed by signal.Notify and the process does not exit.
func TestGiveUpEndsAStuckElection(t *testing.T) {
	guard := make(chan os.Signal, 64)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	var wrapped *stuckLock
	work := components.New("w", func(ctx context.Context) error { <-ctx.Done(); return nil })
	var r *Runner
	app := fxtest.New(t, Module,
		ConfigYAML("t", []byte("lock: memory\nidentity: r1\nshutdown_timeout: 200ms\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\n")),
		fx.Supply(locks.NewMemorySpace(), slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.NopLogger,
		Component(func() components.Component { return work }),
		WrapLocks(func(_ string, l locks.Lock) locks.Lock {
			wrapped = &stuckLock{Lock: l, unstuck: make(chan struct{})}
			return wrapped
		}),
		fx.Populate(&r),
	)
	exited := make(chan int, 1)
	r.forceExit = func(code int) { exited <- code }
	app.RequireStart()
	defer wrapped.unstick()
	require.Eventually(t, func() bool { return len(r.working()) == 1 }, 5*time.Second, time.Millisecond)
	wrapped.stuck.Store(true)
	require.Eventually(t, func() bool { return wrapped.hung.Load() >= 1 }, 5*time.Second, time.Millisecond, "a renewal hangs")

	stopErr := make(chan error, 1)
	go func() { stopErr <- app.Stop(context.Background()) }()
	time.Sleep(500 * time.Millisecond) // past shutdown_timeout: giving up
	end := time.After(3 * time.Second)
	for {
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
		select {
		case code := <-exited:
			t.Logf("forceExit(%d): fine", code)
			wrapped.unstick()
			<-stopErr
			return
		case err := <-stopErr:
			t.Logf("Stop returned: %v", err)
			return
		case <-time.After(50 * time.Millisecond):
			continue
		case <-end:
		}
		break
	}
	t.Errorf("3.5s into Runner.Stop (shutdown_timeout 200ms), Stop has not returned and repeated SIGTERMs did not force the exit: giveUp waits for an election stuck on a renewal that ignores cancellation")
	wrapped.unstick()
	t.Logf("after unstick: Stop returned %v", <-stopErr)
}
