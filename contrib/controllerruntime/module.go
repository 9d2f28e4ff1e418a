package controllerruntime

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/framework"
)

// Module joins the app's manager.Manager to tenure's fx module
// (framework.Module, which the app adds too): the manager runs on every
// replica, from before the elections begin (once its caches have synced
// and its components warmed up) until after every term has ended; the
// elections use the manager's REST config; and the manager's /healthz
// has each election's liveness check, as tenure-<component>. The app
// provides the manager, with its leader election off, and registers each
// component with framework.Component; the app must not provide a
// kubernetes.Interface of its own.
var Module = fx.Module("tenure-controllerruntime",
	framework.Shared(newRunnable),
	fx.Provide(newClient),
	fx.Invoke(addHealthChecks),
)

// newClient is the elections' client, on the manager's REST config.
func newClient(mgr manager.Manager) (kubernetes.Interface, error) {
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("controllerruntime: a client of the manager's config: %w", err)
	}
	return cs, nil
}

// managerRunnable runs a manager as a framework.Runnable: the elections
// begin once it is Elected, which it is, with its own election off, once
// its caches have synced.
type managerRunnable struct{ manager.Manager }

func newRunnable(mgr manager.Manager) framework.Runnable { return managerRunnable{mgr} }

func (m managerRunnable) Ready() <-chan struct{} { return m.Elected() }

// addHealthChecks adds each election's liveness check to the manager's.
func addHealthChecks(mgr manager.Manager, r *framework.Runner) error {
	for name, check := range r.HealthChecks() {
		if err := mgr.AddHealthzCheck("tenure-"+name, check); err != nil {
			return fmt.Errorf("controllerruntime: health check of %s: %w", name, err)
		}
	}
	return nil
}

// Add runs tenure in mgr, for a program that does not use fx: the
// components' elections, configured by sources (see package config; as
// config.Sources("tenure.yaml") reads a file and the environment), begin
// when mgr has started and its caches have synced, and end when mgr
// stops, before its caches stop; each component's leader work returns and
// its lease is released first. The elections use mgr's REST config and
// log to mgr's logger; mgr's /healthz has each election's liveness check,
// as tenure-<component>. mgr must run with its leader election off, and
// with a GracefulShutdownTimeout above the configuration's
// shutdown_timeout (or -1, no limit): the manager stops its caches once
// that timeout has passed, even while leader work still runs.
//
// Add returns the Runner, to read the elections' status. A failure that
// would stop a tenure app (a component's failure with on_failure: exit)
// stops mgr with an error.
func Add(mgr manager.Manager, sources []config.Source, comps ...components.Component) (*framework.Runner, error) {
	if mgr == nil {
		return nil, errNoManager
	}
	cs, err := newClient(mgr)
	if err != nil {
		return nil, err
	}
	var r *framework.Runner
	opts := []fx.Option{
		framework.Module,
		framework.Config(sources...),
		fx.Supply(fx.Annotate(cs, fx.As(new(kubernetes.Interface)))),
		fx.Supply(slog.New(logr.ToSlogHandler(mgr.GetLogger().WithName("tenure")))),
		fx.Populate(&r),
		fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }),
	}
	for _, c := range comps {
		if c == nil {
			return nil, fmt.Errorf("controllerruntime: a component is nil")
		}
		opts = append(opts, framework.Component(func() components.Component { return c }))
	}
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		return nil, err
	}
	if err := addHealthChecks(mgr, r); err != nil {
		return nil, err
	}
	if err := mgr.Add(&appRunnable{app: app}); err != nil {
		return nil, fmt.Errorf("controllerruntime: %w", err)
	}
	return r, nil
}

// appRunnable runs a tenure app as one of a manager's runnables that do
// not need its leader election: the manager starts them after its caches
// have synced, and stops them first, before its caches.
type appRunnable struct{ app *fx.App }

func (a *appRunnable) NeedLeaderElection() bool { return false }

func (a *appRunnable) Start(ctx context.Context) error {
	startCtx, cancel := context.WithTimeout(ctx, a.app.StartTimeout())
	defer cancel()
	if err := a.app.Start(startCtx); err != nil {
		return fmt.Errorf("controllerruntime: start tenure: %w", err)
	}
	var stopped error
	select {
	case <-ctx.Done():
	case sig := <-a.app.Wait():
		stopped = fmt.Errorf("controllerruntime: tenure stopped the program (exit code %d)", sig.ExitCode)
	}
	// No deadline of fx's: the runner's stop waits for the leader work at
	// most shutdown_timeout, and the manager's caches must run until then.
	if err := a.app.Stop(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("controllerruntime: stop tenure: %w", err)
	}
	return stopped
}
