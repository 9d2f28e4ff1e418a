package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

const (
	billingLeads = `msg="started leading" component=billing`
	reportsLeads = `msg="started leading" component=reports`
)

// TestWithoutAClusterTheErrorSaysWhatToDo: on a machine with no cluster
// configured, the program fails with tenure's own message naming the ways
// forward, not client-go's.
func TestWithoutAClusterTheErrorSaysWhatToDo(t *testing.T) {
	bin := proctest.Build(t, ".")
	dir := t.TempDir()
	p := proctest.Start(t, "quickstart", nil, []string{"HOME=" + dir, "KUBECONFIG=" + filepath.Join(dir, "none"), "KUBERNETES_SERVICE_HOST="}, bin)
	require.Error(t, p.Wait(t, 30*time.Second), "it fails")
	stderr := p.Stderr()
	assert.Contains(t, stderr, "no Kubernetes cluster configured for components billing, reports (lock lease)")
	assert.Contains(t, stderr, "$KUBECONFIG, run in a cluster")
	assert.Contains(t, stderr, "or set lock: memory")
	assert.NotContains(t, stderr, "KUBERNETES_MASTER")
}

// TestRunsOnMemoryLocks: with TENURE_LOCK=memory the program runs with no
// cluster, leads both components and stops cleanly on SIGTERM.
func TestRunsOnMemoryLocks(t *testing.T) {
	bin := proctest.Build(t, ".")
	dir := t.TempDir()
	p := proctest.Start(t, "quickstart", nil, []string{"TENURE_LOCK=memory", "HOME=" + dir, "KUBECONFIG=" + filepath.Join(dir, "none")}, bin)
	p.WaitFor(t, billingLeads, 30*time.Second)
	p.WaitFor(t, reportsLeads, 5*time.Second)
	p.WaitFor(t, `msg="sending invoices" fencing_token=1`, 5*time.Second)
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(t, 15*time.Second), "exit 0")
	assert.Contains(t, p.Output(), "stopped: all leader work returned and leases released")
}

// TestTwoReplicasOnACluster: two copies on the test API server; stopping
// the one that leads moves both components to the other at once.
func TestTwoReplicasOnACluster(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	for _, name := range []string{"billing", "reports"} {
		// Free Leases, taken at once (a missing one is first taken after a
		// lease).
		_, err := cs.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	bin := proctest.Build(t, ".")
	env := func(id string) []string {
		return []string{"KUBECONFIG=" + kubetest.Kubeconfig(t), "TENURE_NAMESPACE=" + ns, "TENURE_IDENTITY=" + id}
	}
	a := proctest.Start(t, "a", nil, env("a"), bin)
	a.WaitFor(t, billingLeads, 30*time.Second)
	a.WaitFor(t, reportsLeads, 10*time.Second)
	b := proctest.Start(t, "b", nil, env("b"), bin)
	b.WaitFor(t, `msg="starting elections" identity=b`, 30*time.Second)

	require.NoError(t, a.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, a.Wait(t, 15*time.Second), "exit 0")
	b.WaitFor(t, billingLeads, 2*time.Second)
	b.WaitFor(t, reportsLeads, 2*time.Second)
	for _, name := range []string{"billing", "reports"} {
		lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "b", *lease.Spec.HolderIdentity, name)
	}
}
