package controllerruntime_test

// Regression tests of the twelfth review (helper-1).

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/contrib/controllerruntime"
	"github.com/tenure/tenure/internal/kubetest"
)

// TestForbiddenTypeHoldsUpOnlyItsComponent: one component also watches
// Secrets, which this replica may not list. Its informer never syncs; the
// manager still starts, and the other component still leads and
// reconciles. (Before, the warm-up made the manager wait for that
// informer forever, and every term of every component waited for it.)
func TestForbiddenTypeHoldsUpOnlyItsComponent(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "limited"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps", "events"}, Verbs: []string{"*"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"*"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "limited"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "limited"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "limited"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	mgr := newManagerWith(t, kubetest.UserConfig(t, "limited", "system:authenticated"), ns, func(o *manager.Options) {
		o.Controller.CacheSyncTimeout = 2 * time.Second
	})
	nop := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil })
	bad, err := controllerruntime.NewComponent("bad", mgr, func(mgr manager.Manager) error {
		return builder.ControllerManagedBy(mgr).Named("bad").For(&corev1.ConfigMap{}).Owns(&corev1.Secret{}).Complete(nop)
	})
	require.NoError(t, err)
	var good atomic.Int32
	goodComp, err := controllerruntime.NewComponent("good", mgr, func(mgr manager.Manager) error {
		return builder.ControllerManagedBy(mgr).Named("good").For(&corev1.ConfigMap{}).Complete(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			good.Add(1)
			return reconcile.Result{}, nil
		}))
	})
	require.NoError(t, err)
	_, err = controllerruntime.Add(mgr, tenureYAML(ns, "r1"), bad, goodComp)
	require.NoError(t, err)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("mgr.Start did not return 10s after its context was cancelled")
		}
	}()
	select {
	case <-mgr.Elected():
	case <-time.After(15 * time.Second):
		t.Fatal("the manager did not start 15s after its start (CacheSyncTimeout 2s)")
	}
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return good.Load() > 0 }, 15*time.Second, 10*time.Millisecond, "the other component reconciles")
}

// TestAddWaitsForLeaderWorkBeyondFxStopTimeout: with shutdown_timeout
// 40s, a reconcile that winds down for 16s (past fx's default stop
// timeout of 15s) returns before the manager stops its caches and
// returns.
func TestAddWaitsForLeaderWorkBeyondFxStopTimeout(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	mgr := newManager(t, ns)
	var running, returned atomic.Bool
	comp, err := controllerruntime.NewComponent("slow", mgr, func(mgr manager.Manager) error {
		return builder.ControllerManagedBy(mgr).Named("slow").For(&corev1.ConfigMap{}).Complete(reconcile.Func(func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
			if running.Swap(true) {
				return reconcile.Result{}, nil
			}
			<-ctx.Done()
			time.Sleep(16 * time.Second)
			returned.Store(true)
			return reconcile.Result{}, nil
		}))
	})
	require.NoError(t, err)
	src := []config.Source{config.YAML("t.yaml", fmt.Appendf(nil, "identity: r1\nnamespace: %s\nplacement: none\nshutdown_timeout: 40s\n", ns))}
	_, err = controllerruntime.Add(mgr, src, comp)
	require.NoError(t, err)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, running.Load, 20*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("mgr.Start did not return 30s after its context was cancelled")
	}
	assert.True(t, returned.Load(), "the manager returned while the reconcile still ran")
}
