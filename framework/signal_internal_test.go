package framework

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sigterm sends SIGTERM to this process and waits until guard has it: by
// then every channel registered for it has been sent it too.
func sigterm(t *testing.T, guard chan os.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case <-guard:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM not delivered")
	}
}

// TestSecondSignalExitsWhenOptedIn stops an app that opted in to
// ExitOnSecondSignal and whose leader work ignores cancellation: a SIGTERM
// before the stop does nothing, one during the stop exits with code 1
// (here: the injected exit records it) naming what still leads, and
// once the stop is over nothing listens any more and nothing is left
// running.
func TestSecondSignalExitsWhenOptedIn(t *testing.T) {
	// Keep SIGTERM from killing the test process whatever happens.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)
	before := goleak.IgnoreCurrent()

	release := make(chan struct{})
	stuck := components.New("stuck", func(ctx context.Context) error { <-release; return nil })
	space := locks.NewMemorySpace()
	var logs lockedBuffer
	exited := make(chan int, 4)
	var r *Runner
	app := fxtest.New(t, Module,
		ConfigYAML("t", []byte("lock: memory\nidentity: r1\nshutdown_timeout: 1m\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\n")),
		fx.Supply(space, slog.New(slog.NewTextHandler(&logs, nil))),
		fx.NopLogger,
		Component(func() components.Component { return stuck }),
		exitOnSecondSignal(func(code int) { exited <- code }),
		fx.Populate(&r),
	)
	app.RequireStart()
	require.Eventually(t, func() bool { return len(r.working()) == 1 }, 5*time.Second, time.Millisecond)
	sigterm(t, guard)
	assert.Empty(t, exited, "not listening before the stop")

	stopErr := make(chan error, 1)
	go func() { stopErr <- app.Stop(context.Background()) }()
	// The stop listens from its start: send until it has heard one.
	deadline := time.After(10 * time.Second)
	for heard := false; !heard; {
		sigterm(t, guard)
		select {
		case code := <-exited:
			assert.Equal(t, 1, code)
			heard = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("a second signal did not end the process")
		}
	}
	assert.Contains(t, logs.String(), "second signal while stopping")
	assert.Contains(t, logs.String(), "leading=[stuck]")
	obs, err := space.Lock("default/stuck").Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "r1", obs.Record.HolderIdentity, "not released under running work")

	close(release) // the fake exit returned: the stop carries on
	require.NoError(t, <-stopErr)
	sigterm(t, guard)
	assert.Empty(t, exited, "not listening after the stop")
	goleak.VerifyNone(t, before)
}
