package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/examples/internal/clitest"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// TestTwoInstances runs two copies: one leads and works, the other
// follows; SIGTERM to the leader hands over at once.
func TestTwoInstances(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	bin := proctest.Build(t, ".")
	start := func(id string) *proctest.Process { return clitest.Start(t, bin, ns, id) }
	a := start("a")
	a.WaitFor(t, "a started leading", 10*time.Second)
	b := start("b")
	b.WaitFor(t, "b sees a new leader: a", 5*time.Second)
	a.WaitFor(t, "a is working as the leader", 5*time.Second)
	assert.NotContains(t, b.Output(), "b started leading")

	stopped := time.Now()
	require.NoError(t, a.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, a.Wait(t, 5*time.Second), "exit 0")
	assert.Contains(t, a.Output(), "a stopped leading")
	b.WaitFor(t, "b started leading", 2*time.Second)
	assert.Less(t, time.Since(stopped), 2*time.Second, "hand-over at once, not after the lease")

	lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "basic-example", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "b", *lease.Spec.HolderIdentity)
	assert.False(t, strings.Contains(b.Output(), "b stopped leading"))
}

// TestHandOverFollowsTheLease: the example makes its lock as the README
// shows, with no watch set up by hand, and still hands over on a release
// at once rather than at the standby's next poll: with a six-second retry
// period, a polling standby would take three seconds on average.
func TestHandOverFollowsTheLease(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	bin := proctest.Build(t, ".")
	// A free Lease, so that a leads at once (a missing one is first taken
	// after a lease).
	_, err := cs.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "basic-example"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	slow := []string{"--lease-duration", "20s", "--renew-deadline", "12s", "--retry-period", "6s"}
	a := clitest.Start(t, bin, ns, "a", slow...)
	a.WaitFor(t, "a started leading", 10*time.Second)
	b := clitest.Start(t, bin, ns, "b", slow...)
	b.WaitFor(t, "b sees a new leader: a", 10*time.Second)

	stopped := time.Now()
	require.NoError(t, a.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, a.Wait(t, 10*time.Second), "exit 0")
	b.WaitFor(t, "b started leading", 10*time.Second)
	took := time.Since(stopped)
	t.Logf("hand-over took %v", took)
	assert.Less(t, took, time.Second, "the standby follows the Lease: it leads at the release, not at its next poll")
}
