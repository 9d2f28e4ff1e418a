package framework

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// TestStopReturnsDespiteAHungRenewal: the leader work is well-behaved, but
// a renewal hangs on a lock that ignores cancellation. The stop gives the
// term up after shutdown_timeout and returns, with no signal needed, the
// lease left held.
func TestStopReturnsDespiteAHungRenewal(t *testing.T) {
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
	app.RequireStart()
	defer wrapped.unstick()
	require.Eventually(t, func() bool { return len(r.working()) == 1 }, 5*time.Second, time.Millisecond)
	wrapped.stuck.Store(true)
	require.Eventually(t, func() bool { return wrapped.hung.Load() >= 1 }, 5*time.Second, time.Millisecond, "a renewal hangs")

	stopErr := make(chan error, 1)
	go func() { stopErr <- app.Stop(context.Background()) }()
	select {
	case err := <-stopErr:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "did not stop within shutdown_timeout 200ms")
	case <-time.After(5 * time.Second):
		t.Fatal("the stop did not return past shutdown_timeout 200ms: it waits for an election stuck on a renewal")
	}
	obs, err := wrapped.Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "r1", obs.Record.HolderIdentity, "a given-up lease is not released")
}
