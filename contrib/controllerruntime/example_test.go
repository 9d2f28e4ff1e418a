package controllerruntime_test

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/contrib/controllerruntime"
	"github.com/tenure/tenure/election"
)

// configMapReconciler stands for a program's reconciler.
type configMapReconciler struct{}

func (configMapReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	term, _ := election.TermFromContext(ctx) // this replica's term: identity and fencing token
	_ = term
	return reconcile.Result{}, nil
}

// ExampleAdd is a program without fx: a manager with its leader election
// off, one controller under its own tenure election (configured by
// tenure.yaml, as any tenure program), run by the manager. (It needs a
// cluster, so go test compiles it without running it.)
func ExampleAdd() {
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{}) // LeaderElection: false
	if err != nil {
		panic(err)
	}
	configMaps, err := controllerruntime.NewComponent("configmaps", mgr, func(mgr manager.Manager) error {
		return ctrl.NewControllerManagedBy(mgr).For(&corev1.ConfigMap{}).Complete(configMapReconciler{})
	})
	if err != nil {
		panic(err)
	}
	if _, err := controllerruntime.Add(mgr, config.Sources("tenure.yaml"), configMaps); err != nil {
		panic(err)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		panic(err)
	}
}
