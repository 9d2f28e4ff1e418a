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
// and expire on their own once the process has exited. Signals are
// listened for only during the module's stop, from the elections' stop to
// the telemetry flush. The module never exits the process without it: it is for main to
// choose, as controller-runtime's signals.SetupSignalHandler is.
func ExitOnSecondSignal() fx.Option { return exitOnSecondSignal(os.Exit) }

// exitOnSecondSignal is ExitOnSecondSignal with exit in place of os.Exit.
func exitOnSecondSignal(exit func(code int)) fx.Option {
	return fx.Supply(&secondSignal{exit: exit})
}

// secondSignal ends the process on a signal during the module's stop.
type secondSignal struct {
	exit func(code int)

	mu   sync.Mutex
	stop func() // while listening
}

// listen starts listening for SIGTERM and SIGINT, if it has not yet, until
// done is called; on one it logs what r still leads and exits. A nil s
// does nothing.
func (s *secondSignal) listen(r *Runner) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case sig := <-signals:
			r.log.Warn("second signal while stopping: exiting now; the leases of work still running expire once the process has exited",
				"signal", sig.String(), "leading", r.working())
			s.exit(1)
		case <-quit:
		}
	})
	s.stop = func() {
		signal.Stop(signals)
		close(quit)
		wg.Wait()
	}
}

// done stops listening. A nil s does nothing.
func (s *secondSignal) done() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// signalParams are listenUntilStopped's dependencies.
type signalParams struct {
	fx.In
	SecondSignal *secondSignal `optional:"true"`
}

// listenUntilStopped makes the module listen for a second signal from
// the runner's stop, the first of the module's stop hooks, to the end of
// its last (the telemetry flush): its hook is appended before any other
// of the module's, so fx runs it last.
func listenUntilStopped(lc fx.Lifecycle, p signalParams) {
	if p.SecondSignal != nil {
		lc.Append(fx.StopHook(p.SecondSignal.done))
	}
}
