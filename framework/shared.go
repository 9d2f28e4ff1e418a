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
// lease is released, so that the work can rely on it for all its term.
func Shared(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.As(new(Runnable)), fx.ResultTags(`group:"shared"`)))
}

// shared runs the app's Shared runnables.
type shared struct {
	runnables []Runnable
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// start starts every runnable and waits until each that says when it is
// ready is, or ctx is done. A runnable that fails shuts the app down.
func (r *Runner) startShared(ctx context.Context) error {
	s := r.shared
	if len(s.runnables) == 0 {
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	failed := make(chan error, len(s.runnables))
	for _, run := range s.runnables {
		s.wg.Go(func() {
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
	for _, run := range s.runnables {
		rd, ok := run.(readier)
		if !ok {
			continue
		}
		select {
		case <-rd.Ready():
		case err := <-failed:
			_ = r.stopShared(context.Background())
			return err
		case <-ctx.Done():
			_ = r.stopShared(context.Background())
			return fmt.Errorf("tenure: start: waiting for shared runnable %T to be ready: %w", run, ctx.Err())
		}
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
