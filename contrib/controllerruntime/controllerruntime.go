// Package controllerruntime runs controller-runtime controllers as tenure
// components: one leader election per controller in one manager, so that
// the controllers of a program spread over its replicas (see package
// placement), hand over gracefully, and show in tenure's traces.
//
// The manager runs on every replica with its own leader election off: it
// owns the shared cache and clients. A component's controllers are built
// with controller-runtime's builder, as for any manager, but once for each
// term: started with the term's context when this replica leads the
// component, stopped when the term ends. The term lasts until their
// reconciles have returned, and a reconcile's context carries the term
// (election.TermFromContext, election.Valid).
//
// Standbys are warm: the informers each component's controllers watch are
// started and synced on every replica before its elections begin, so that
// a controller that gains a leadership reconciles at once.
//
// With fx, add Module to the app and register each component with
// framework.Component; without fx, Add runs tenure in the manager.
package controllerruntime

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/tenure/tenure/components"
)

// Build builds a component's controllers on mgr, as a program builds
// them on its manager:
//
//	return builder.ControllerManagedBy(mgr).For(&corev1.ConfigMap{}).Complete(r)
//
// It is called once when the component is made, to check it and warm the
// standby up, and again for each term. What it adds to mgr (its
// controllers, or any manager.Runnable) runs for that term only.
//
// It must use the mgr it is given, not the program's manager: a
// controller added to the program's manager runs on every replica,
// leader or not, and a source on another cache (WatchesRawSource with a
// cache of the program's) leaves its event handlers behind each term. It
// must not do what can be done only once: register field indexes
// (IndexField), health checks (AddHealthzCheck, AddReadyzCheck) and
// metrics handlers on the program's manager before.
type Build func(mgr manager.Manager) error

// NewComponent makes the component name whose leader work is the
// controllers that build builds on mgr (see Build): started with the
// term's context, and stopped when the term ends. A controller's Start
// returns once its reconciles have returned, so the term, and the lease,
// outlast every reconcile. mgr must run with its leader election off.
//
// The controllers take mgr's controller options, as with any manager.
// Their names are checked for uniqueness once, here; each term builds
// them again under the same names. Each term's event handlers are removed
// from the shared informers when it ends.
//
// NewComponent adds to mgr a runnable that warms the standby up: once
// mgr's caches have synced, it starts the controllers' sources without
// reconciling, until their informers have synced too; the component is
// campaigned for only after that (it is Ready, see components.Component).
// A controller whose options set EnableWarmup to false is not warmed up.
//
// The lease outlasts every reconcile when the term ends by a stop, a
// hand-over or the work returning. When it ends because renewals failed
// until the renew deadline, another replica may lead a lease after the
// last renewal it saw while a reconcile still runs: check
// election.Valid(ctx) before each write, or pass the fencing token on.
// With UsePriorityQueue set to false, reconciles already queued when the
// term ends still run, with a context that is done.
func NewComponent(name string, mgr manager.Manager, build Build) (components.Component, error) {
	if err := components.ValidateName(name); err != nil {
		return nil, fmt.Errorf("controllerruntime: %w", err)
	}
	if mgr == nil {
		return nil, fmt.Errorf("controllerruntime: component %s: a manager is required", name)
	}
	if build == nil {
		return nil, fmt.Errorf("controllerruntime: component %s: a build function is required", name)
	}
	first := newTerm(mgr, true)
	if err := build(first); err != nil {
		return nil, fmt.Errorf("controllerruntime: component %s: build: %w", name, err)
	}
	if len(first.runnables) == 0 {
		return nil, fmt.Errorf("controllerruntime: component %s: build added nothing to the manager: it must build a controller on the manager it is given", name)
	}
	c := &component{warm: make(chan struct{})}
	if err := mgr.Add(&warmUp{name: name, term: first, done: c.warm}); err != nil {
		return nil, fmt.Errorf("controllerruntime: component %s: %w", name, err)
	}
	c.Component = components.New(name, func(ctx context.Context) error {
		t := newTerm(mgr, false)
		defer t.cache.end() // its event handlers go, also after a build that failed half-way
		if err := build(t); err != nil {
			return fmt.Errorf("controllerruntime: %s: build: %w", name, err)
		}
		if err := t.run(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("controllerruntime: %s: %w", name, err)
		}
		return nil
	})
	return c, nil
}

// component is a component of controllers: ready to lead once warmed up.
type component struct {
	components.Component
	warm chan struct{} // closed once warmed up
}

// Ready is closed once the component's standby is warm (see
// components.Component).
func (c *component) Ready() <-chan struct{} { return c.warm }

// warmUp is the runnable that warms a component's standby up, on every
// replica, once the manager's caches have synced.
type warmUp struct {
	name string
	term *term
	done chan struct{}
}

// NeedLeaderElection says that it runs on every replica.
func (w *warmUp) NeedLeaderElection() bool { return false }

// Start warms the component's controllers up once (see NewComponent).
// Failing to is not fatal: the component is ready all the same, and each
// term starts its sources again, and fails if they do not sync.
func (w *warmUp) Start(ctx context.Context) error {
	defer close(w.done)
	if err := w.term.warmUp(ctx); err != nil && ctx.Err() == nil {
		w.term.GetLogger().Error(err, "cannot warm the standby up: its terms will wait for their caches", "component", w.name)
	}
	w.term = nil // its controllers are done with
	return nil
}

// errNoManager is Add's error for a nil manager.
var errNoManager = errors.New("controllerruntime: a manager is required")
