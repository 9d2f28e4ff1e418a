package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/examples/internal/clitest"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// pod creates a pod in ns with the given labels and phase.
func pod(t *testing.T, cs kubernetes.Interface, ns, name string, managed bool, phase corev1.PodPhase) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{}
	if managed {
		labels["managed-by"] = "ha-controller"
	}
	p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	p.Status.Phase = phase
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func exists(t *testing.T, cs kubernetes.Interface, ns, name string) bool {
	_, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// TestOnlyTheLeaderActs runs two controllers: the leader deletes the
// failed managed pods and nothing else, the standby deletes nothing; when
// the leader stops, the standby carries on.
func TestOnlyTheLeaderActs(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	bin := proctest.Build(t, ".")
	start := func(id string) *proctest.Process { return clitest.Start(t, bin, "", id, "--interval", "300ms") }
	a := start("a")
	a.WaitFor(t, "a started leading", 10*time.Second)
	b := start("b")

	pod(t, cs, ns, "failed-1", true, corev1.PodFailed)
	pod(t, cs, ns, "running", true, corev1.PodRunning)
	pod(t, cs, ns, "unmanaged-failed", false, corev1.PodFailed)
	a.WaitFor(t, "a deleted failed pod "+ns+"/failed-1", 5*time.Second)
	time.Sleep(time.Second) // a few more rounds
	assert.True(t, exists(t, cs, ns, "running"), "a running pod is kept")
	assert.True(t, exists(t, cs, ns, "unmanaged-failed"), "a pod of another controller is kept")
	assert.NotContains(t, b.Output(), "deleted", "the standby does nothing")

	require.NoError(t, a.Cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, a.Wait(t, 5*time.Second))
	b.WaitFor(t, "b started leading", 2*time.Second)
	for i := range 3 {
		pod(t, cs, ns, fmt.Sprintf("failed-after-%d", i), true, corev1.PodFailed)
	}
	for i := range 3 {
		b.WaitFor(t, fmt.Sprintf("b deleted failed pod %s/failed-after-%d", ns, i), 5*time.Second)
	}
	assert.Equal(t, 1, strings.Count(a.Output(), "deleted failed pod"), "a deleted only while it led")
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "ha-controller", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Annotations["control-plane.alpha.kubernetes.io/leader"], `"holderIdentity":"b"`)
}
