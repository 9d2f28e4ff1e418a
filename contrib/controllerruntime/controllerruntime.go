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
// name of another controller of the manager.
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
