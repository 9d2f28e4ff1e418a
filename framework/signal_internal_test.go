package framework

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

// TestSecondSignalForcesExit stops an app whose leader work ignores
// cancellation, and sends SIGTERM during the stop: the process is ended at
// once (here: forceExit is recorded) and the lease is left held.
func TestSecondSignalForcesExit(t *testing.T) {
	// Keep SIGTERM from killing the test process whatever happens.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	release := make(chan struct{})
	defer close(release)
	stuck := components.New("stuck", func(ctx context.Context) error { <-release; return nil })
	space := locks.NewMemorySpace()
	var r *Runner
	app := fxtest.New(t, Module,
		ConfigYAML("t", []byte("lock: memory\nidentity: r1\nshutdown_timeout: 1m\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\n")),
		fx.Supply(space, slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.NopLogger,
		Component(func() components.Component { return stuck }),
		fx.Populate(&r),
	)
	exited := make(chan int, 1)
	r.forceExit = func(code int) { exited <- code }
	app.RequireStart()
	require.Eventually(t, func() bool { return len(r.working()) == 1 }, 5*time.Second, time.Millisecond)

	stopErr := make(chan error, 1)
	go func() { stopErr <- app.Stop(context.Background()) }()
	deadline := time.After(10 * time.Second)
	for code := -1; code < 0; {
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
		select {
		case code = <-exited:
			assert.Equal(t, 1, code)
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("a second signal did not end the process")
		}
	}
	assert.ErrorContains(t, <-stopErr, "terminated during shutdown")
	obs, err := space.Lock("default/stuck").Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "r1", obs.Record.HolderIdentity, "not released under running work")
}
