package framework_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// TestReplicasOnRealAPIServer runs three apps, each its own replica, with
// five components on Leases and one on a ConfigMap: each component has
// one leader at a time, and stopping a replica moves its components to
// the others within about a second.
func TestReplicasOnRealAPIServer(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	yaml := fmt.Sprintf(`
namespace: %s
lease_duration: 3s
renew_deadline: 2s
retry_period: 200ms
components:
  legacy:
    lock: configmap
  slow:
    lease_duration: 4s
    renew_deadline: 3s
    retry_period: 300ms
`, ns)
	led := newLedgers()
	names := []string{"billing", "reports", "mailer", "indexer", "slow", "legacy"}
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2", "r3"} {
		var comps []components.Component
		for _, n := range names {
			comps = append(comps, recorded(led, n))
		}
		apps[id] = replica(t, id, yaml, withClient(cs), comps...)
		apps[id].RequireStart()
	}
	// The first election on a new lock waits one lease (see package
	// election); then every component has one leader.
	for len(apps) > 0 {
		stopBusiest(t, apps, led, names)
	}
	for _, n := range names {
		led.of(n).Check(t)
	}
	lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "billing", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, *lease.Spec.HolderIdentity, "released at the last stop")
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "legacy", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Annotations[locks.LeaderAnnotation], `"holderIdentity":""`)
}

// TestMissingPermissionsFailTheStart runs a replica whose user may read
// Leases but not write them: the app does not start, and the error names
// the component, the user, and each verb and resource it lacks.
func TestMissingPermissionsFailTheStart(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-leases"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-leases"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-leases"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "reader"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	reader, err := kubernetesFor(kubetest.UserConfig(t, "reader", "system:authenticated"))
	require.NoError(t, err)

	led := newLedgers()
	app := fx.New(
		framework.Module,
		framework.ConfigYAML("t", []byte(fmt.Sprintf("namespace: %s\nidentity: r1\n", ns))),
		withClient(reader),
		fx.Supply(quiet),
		fx.NopLogger,
		supply(recorded(led, "billing")),
	)
	require.NoError(t, app.Err())
	err = app.Start(ctx)
	require.Error(t, err)
	want := fmt.Sprintf(`components.billing: forbidden: "reader" may not create leases.coordination.k8s.io in namespace %[1]q
components.billing: forbidden: "reader" may not list leases.coordination.k8s.io in namespace %[1]q
components.billing: forbidden: "reader" may not patch leases.coordination.k8s.io "billing" in namespace %[1]q
components.billing: forbidden: "reader" may not watch leases.coordination.k8s.io in namespace %[1]q`, ns)
	assert.Contains(t, err.Error(), want)
	assert.NotContains(t, err.Error(), "may not get")
	assert.Empty(t, led.of("billing").Leaders())
	_ = app.Stop(ctx)
}

// TestUnreachableAPIServerAtStartUp: a replica that cannot reach the API
// server when it starts does not fail or exit: it starts, retries, and
// leads once the network heals.
func TestUnreachableAPIServerAtStartUp(t *testing.T) {
	ns := kubetest.Namespace(t)
	proxy, cs := kubetest.ViaProxy(t, 0)
	proxy.Block()

	led := newLedgers()
	app := replica(t, "r1", fmt.Sprintf("namespace: %s\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 200ms\n", ns),
		withClient(cs), recorded(led, "billing"))
	app.RequireStart() // within the access check's bound, despite the black hole
	require.Never(t, func() bool { return len(led.of("billing").Leaders()) > 0 }, time.Second, 50*time.Millisecond)
	proxy.Heal()
	assert.Equal(t, "r1", led.of("billing").Leader(t), "leads once the API server answers (a new lock: after one lease)")
	app.RequireStop()
}
