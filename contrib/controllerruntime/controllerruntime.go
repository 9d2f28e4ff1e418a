// Package controllerruntime runs controller-runtime controllers as tenure
// components: one leader election per controller in one manager, so that
// the controllers of a program spread over its replicas (see package
// placement), hand over gracefully, and show in tenure's traces.
//
// The manager runs on every replica with its own leader election off: it
// owns the shared cache and clients, and its informers are synced on
// every replica, so a controller that gains a leadership reconciles at
// once. Each controller is built unmanaged for each term, started with
// the term's context and stopped when the term ends; the term lasts until
// its reconciles have returned, and a reconcile's context carries the term
// (election.TermFromContext, election.Valid).
package controllerruntime

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/controller"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tenure/tenure/components"
)

// Setup registers the watches of a controller built for a term, such as
// c.Watch(source.Kind(mgr.GetCache(), &corev1.ConfigMap{}, ...)). It is
// called once per term, on a new controller.
type Setup func(c controller.Controller) error

// NewComponent makes the component name whose leader work is a
// controller-runtime controller: built with opts (opts.Reconciler is
// required) and set up by setup for each term, started with the term's
// context, and stopped when the term ends. Start returns once its workers
// have returned, so the term, and the lease, outlast every reconcile.
//
// A new controller is built for each term (a controller starts once), so
// the controller name's uniqueness check is skipped: name must not be the
// name of another controller of the manager, and Setup must not add the
// controller to the manager (it would run outside any term). A reconcile
// taken from the queue after the term's context is done is skipped: the
// next leader's controller sees every object again. opts.Logger defaults
// to controller-runtime's log.Log, so that reconcile errors are logged;
// the manager's other controller defaults do not apply.
//
// The lease outlasts every reconcile when the term ends by a stop, a
// hand-over or the work returning. When it ends because renewals failed
// until the renew deadline, another replica may lead a lease after the
// last renewal it saw while a reconcile still runs: check
// election.Valid(ctx) before each write, or pass the fencing token on.
//
// Each term's watches add event handlers to the manager's shared
// informers that controller-runtime's source.Kind never removes (an
// upstream limit, kubernetes-sigs/controller-runtime#2983): about two
// goroutines and 34 KiB per term and source, and the handler runs for
// every ended term at each event.
func NewComponent(name string, opts controller.Options, setup Setup) (components.Component, error) {
	if name == "" {
		return nil, errors.New("controllerruntime: a component name is required")
	}
	if opts.Reconciler == nil {
		return nil, fmt.Errorf("controllerruntime: component %s: opts.Reconciler is required", name)
	}
	if setup == nil {
		return nil, fmt.Errorf("controllerruntime: component %s: setup is required", name)
	}
	skip := true
	opts.SkipNameValidation = &skip
	if opts.Logger.GetSink() == nil {
		opts.Logger = crlog.Log.WithValues("controller", name)
	}
	inner := opts.Reconciler
	opts.Reconciler = reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		if ctx.Err() != nil {
			return reconcile.Result{}, nil // the term is over (see above)
		}
		return inner.Reconcile(ctx, req)
	})
	return components.New(name, func(ctx context.Context) error {
		c, err := controller.NewUnmanaged(name, opts)
		if err != nil {
			return fmt.Errorf("controllerruntime: %s: %w", name, err)
		}
		if err := setup(c); err != nil {
			return fmt.Errorf("controllerruntime: %s: set up: %w", name, err)
		}
		if err := c.Start(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("controllerruntime: %s: %w", name, err)
		}
		return nil
	}), nil
}
