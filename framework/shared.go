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
// ctx is done and then returns; returning before, with an error or not,
// stops the app (exit code 1). If the app is started again after a stop,
// so is the Runnable.
//
// If the Runnable also has a method
//
//	Ready() <-chan struct{}
//
// the elections begin once that channel is closed (a manager's Elected,
// closed once its caches have synced), so that this replica does not
// lead before it can do the work: the app's start waits for it, within
// fx's start timeout. When the app starts again after a stop, the
// channel must not be closed before Start is called: a start finding it
// closed fails, as of a runnable that cannot run again (a
// controller-runtime manager, whose Elected stays closed).
type Runnable interface {
	Start(ctx context.Context) error
}

// readier is a Runnable or a component that says when it is ready (see
// Runnable and components.Component).
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
	stop      context.CancelFunc // set from a start until the stop that asks them to return
	done      chan struct{}      // closed once the last start's runnables have all returned; nil before the first start
}

// startShared starts every runnable and waits until each that says when
// it is ready is, or ctx is done. A runnable that returns before the app
// stops shuts it down; one that returns before it is ready fails the
// start.
func (r *Runner) startShared(ctx context.Context) error {
	s := r.shared
	if len(s.runnables) == 0 || s.stop != nil {
		// None, or still running since a stop that did not wait for the
		// elections (see stop): they cannot start twice.
		return nil
	}
	if s.done != nil { // started before
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("tenure: start: the shared runnables of the last start have not returned: %w", ctx.Err())
		}
		for _, run := range s.runnables {
			// Ready before it started again: it cannot run again (a
			// controller-runtime manager's Elected stays closed).
			if rd, ok := run.(readier); ok && isClosed(rd.Ready()) {
				return fmt.Errorf("tenure: start: shared runnable %T is ready before it started: it cannot start twice (start a new app)", run)
			}
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stop, s.done = cancel, done
	failed := make(chan error, len(s.runnables)) // each sends once at most
	var wg sync.WaitGroup
	for _, run := range s.runnables {
		wg.Go(func() {
			err := run.Start(runCtx)
			if runCtx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("returned before the app stopped")
			}
			err = fmt.Errorf("tenure: shared runnable %T: %w", run, err)
			failed <- err
			r.log.Error("shared runnable failed; stopping the program", "err", err)
			if serr := r.shutdowner.Shutdown(fx.ExitCode(1)); serr != nil {
				r.log.Error("cannot stop the program", "err", serr)
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	for _, run := range s.runnables {
		if rd, ok := run.(readier); ok {
			select {
			case <-rd.Ready():
			case err := <-failed:
				r.abortShared()
				return err
			case <-ctx.Done():
				r.abortShared()
				return fmt.Errorf("tenure: start: waiting for shared runnable %T to be ready: %w", run, ctx.Err())
			}
		}
	}
	select {
	case err := <-failed:
		r.abortShared()
		return err
	default:
		return nil
	}
}

// isClosed says whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// abortShared stops the runnables after a failed start, waiting for them
// at most shutdown_timeout: one that does not return is left behind (and
// not started again) rather than holding the start.
func (r *Runner) abortShared() {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := r.stopShared(ctx); err != nil {
		r.log.Error("shared runnables did not stop", "err", err)
	}
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
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return errors.New("tenure: shared runnables did not return before the stop deadline")
	}
}
