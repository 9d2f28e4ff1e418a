package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/fx"
)

// Runnable is work that runs on every replica, whether or not it leads
// anything, such as a controller-runtime manager (which is one) or an
// informer cache that the components' leader work reads. Start runs until
// ctx is done and then returns; an error returned before stops the app.
//
// If the Runnable also has a method
//
//	Ready() <-chan struct{}
//
// the elections begin once that channel is closed (a manager's Elected,
// closed once its caches have synced), so that this replica does not
// lead before it can do the work: the app's start waits for it, within
// fx's start timeout.
type Runnable interface {
	Start(ctx context.Context) error
}

// readier is a Runnable that says when it is ready (see Runnable).
type readier interface {
	Ready() <-chan struct{}
}

// Shared registers a Runnable constructor: a function returning a
// Runnable (or a type that implements it), with any dependencies from
// the app as its parameters. The Runnable is started before the elections
// and stopped after every component's leader work has returned and its
// lease is released, so that the work can rely on it for all its term;
// a stop that does not wait for every leader work (see the package
// documentation) leaves it running for the work that still runs. A
// Runnable that fails stops itself first, and then the app.
func Shared(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.As(new(Runnable)), fx.ResultTags(`group:"shared"`)))
}

// shared runs the app's Shared runnables.
type shared struct {
	runnables []Runnable
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// startShared starts every runnable and waits until each that says when
// it is ready is, or ctx is done. A runnable that fails shuts the app
// down; one that returns before it is ready fails the start.
func (r *Runner) startShared(ctx context.Context) error {
	s := r.shared
	if len(s.runnables) == 0 || s.stop != nil {
		// None, or still running since a stop that did not wait for the
		// elections (see stop): they cannot start twice.
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	failed := make(chan error, len(s.runnables))
	exited := make([]chan struct{}, len(s.runnables))
	for i, run := range s.runnables {
		exited[i] = make(chan struct{})
		s.wg.Go(func() {
			defer close(exited[i])
			err := run.Start(runCtx)
			if runCtx.Err() != nil {
				return
			}
			if err == nil {
				r.log.Info("shared runnable returned", "runnable", fmt.Sprintf("%T", run))
				return
			}
			err = fmt.Errorf("tenure: shared runnable %T: %w", run, err)
			failed <- err
			r.log.Error("shared runnable failed; stopping the program", "err", err)
			if serr := r.shutdowner.Shutdown(fx.ExitCode(1)); serr != nil {
				r.log.Error("cannot stop the program", "err", serr)
			}
		})
	}
	for i, run := range s.runnables {
		rd, ok := run.(readier)
		if !ok {
			continue
		}
		var err error
		select {
		case <-rd.Ready():
			continue
		case err = <-failed:
		case <-exited[i]:
			err = fmt.Errorf("tenure: start: shared runnable %T returned before it was ready", run)
		case <-ctx.Done():
			err = fmt.Errorf("tenure: start: waiting for shared runnable %T to be ready: %w", run, ctx.Err())
		}
		// Bounded: a runnable that does not return leaks rather than
		// hangs the start.
		sctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
		if serr := r.stopShared(sctx); serr != nil {
			r.log.Error("shared runnables did not stop", "err", serr)
		}
		cancel()
		return err
	}
	return nil
}

// stopShared stops the runnables and waits for them to return, or for
// ctx to be done.
func (r *Runner) stopShared(ctx context.Context) error {
	s := r.shared
	if s.stop == nil {
		return nil
	}
	s.stop()
	s.stop = nil
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("tenure: shared runnables did not return before the stop deadline")
	}
}
