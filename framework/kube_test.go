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
		apps[id] = replica(t, id, yaml, framework.WithClient(cs), comps...)
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

// TestForbiddenLockIsReported runs a replica whose user may not touch
// Leases: it starts, reports the forbidden calls and never leads.
func TestForbiddenLockIsReported(t *testing.T) {
	ns := kubetest.Namespace(t)
	noLeaks(t)
	cs, err := kubernetesFor(kubetest.UserConfig(t, "nobody"))
	require.NoError(t, err)
	led := newLedgers()
	logs := &syncBuffer{}
	app := fxtest.New(t,
		framework.Module,
		framework.ConfigYAML("t", []byte(fmt.Sprintf("namespace: %s\nidentity: r1\nlease_duration: 2s\nrenew_deadline: 1s\nretry_period: 100ms\n", ns))),
		framework.WithClient(cs),
		fx.Supply(logger(logs)),
		fx.NopLogger,
		supply(recorded(led, "billing")),
	)
	app.RequireStart()
	require.Eventually(t, func() bool { return logs.contains("forbidden") }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, logs.String(), "component=billing")
	assert.Empty(t, led.of("billing").Leaders())
	app.RequireStop()
}
