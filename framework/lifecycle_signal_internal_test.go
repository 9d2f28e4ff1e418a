package framework

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

// TestSecondSignalExitsDuringTheTelemetryFlush: an app that opted in to
// ExitOnSecondSignal stops; its elections have stopped, and the module's
// own flush of spans hangs on an OTLP collector that does not answer
// (until the stop's deadline: a minute, with the documented
// fx.StopTimeout). A second signal then should end the process, as the
// option promises that the operator does not wait out the stop; but the
// module listens only while the elections stop.
func TestSecondSignalExitsDuringTheTelemetryFlush(t *testing.T) {
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	defer ln.Close()
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	defer func() {
		for len(conns) > 0 {
			_ = (<-conns).Close()
		}
	}()

	exited := make(chan int, 16)
	var r *Runner
	app := fxtest.New(t, Module,
		ConfigYAML("t", []byte("lock: memory\nidentity: r1\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\n"+
			"tracing:\n  enabled: true\n  protocol: http/protobuf\n  insecure: true\n  endpoint: http://"+ln.Addr().String()+"\n")),
		fx.Supply(locks.NewMemorySpace(), slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.NopLogger,
		Component(func() components.Component {
			return components.New("billing", func(ctx context.Context) error { <-ctx.Done(); return nil })
		}),
		exitOnSecondSignal(func(code int) { exited <- code }),
		fx.Populate(&r),
	)
	app.RequireStart()
	require.Eventually(t, func() bool { return len(r.working()) == 1 }, 5*time.Second, time.Millisecond)

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		stopped <- app.Stop(ctx)
	}()
	require.Eventually(t, func() bool { return r.units[0].loopReturned() }, 5*time.Second, time.Millisecond, "the elections stopped")
	sigterm(t, guard)
	select {
	case <-exited:
		<-stopped // the fake exit returned: the stop goes on
	case err := <-stopped:
		t.Errorf("a second signal while the module flushed its spans did not end the process; the stop went on until its deadline: %v", err)
	}
}
