package framework

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/fx"
)

// ExitOnSecondSignal makes the process exit with code 1 on a SIGTERM or
// SIGINT received while the app stops tenure's elections: the signal
// that started the stop (fx.App.Run stops on the first) is the first, so
// an operator who presses Ctrl-C twice does not wait out shutdown_timeout.
// The components still leading are logged; their leases are not released
// and expire on their own. Signals are listened for only during that
// stop. The module never exits the process without it: it is for main to
// choose, as controller-runtime's signals.SetupSignalHandler is.
func ExitOnSecondSignal() fx.Option { return exitOnSecondSignal(os.Exit) }

// exitOnSecondSignal is ExitOnSecondSignal with exit in place of os.Exit.
func exitOnSecondSignal(exit func(code int)) fx.Option {
	return fx.Supply(&secondSignal{exit: exit})
}

// secondSignal ends the process on a signal during the runner's stop.
type secondSignal struct {
	exit func(code int)
}

// listen listens for SIGTERM and SIGINT until the function it returns is
// called; on one it logs what r still leads and exits. A nil s does
// nothing.
func (s *secondSignal) listen(r *Runner) (stop func()) {
	if s == nil {
		return func() {}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case sig := <-signals:
			r.log.Warn("second signal while stopping: exiting now; the leases of work still running are left to expire",
				"signal", sig.String(), "leading", r.working())
			s.exit(1)
		case <-quit:
		}
	})
	return func() {
		signal.Stop(signals)
		close(quit)
		wg.Wait()
	}
}
