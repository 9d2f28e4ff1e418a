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
