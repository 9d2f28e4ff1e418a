package kubetest_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenure/tenure/internal/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

func TestNamespaceIsReadyForWork(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	_, err := cs.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
	require.NoError(t, err)
	v, err := cs.Discovery().ServerVersion()
	require.NoError(t, err)
	bins, err := kubetest.EnsureBinaries(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, bins.APIServerVersion, v.GitVersion)
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

func childPIDs(t *testing.T, parent int) []int {
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(parent)).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

func TestStopLeavesNothingBehind(t *testing.T) {
	kubetest.Shared(t) // skips or fails like every test that needs servers
	bins, err := kubetest.EnsureBinaries(context.Background(), nil)
	require.NoError(t, err)
	before := childPIDs(t, os.Getpid())
	s, err := kubetest.Start(context.Background(), bins)
	require.NoError(t, err)
	var pids []int
	for _, pid := range childPIDs(t, os.Getpid()) {
		if !slices.Contains(before, pid) {
			pids = append(pids, pid)
		}
	}
	require.Len(t, pids, 2, "etcd and kube-apiserver")
	s.Stop()
	for _, pid := range pids {
		assert.False(t, alive(pid), "process %d still running after Stop", pid)
	}
	s.Stop() // idempotent
}

// TestDeadTestLeavesNothingBehind runs a test binary that starts servers
// and then dies without cleaning up, as a panic or timeout would: its
// servers must die with it.
func TestDeadTestLeavesNothingBehind(t *testing.T) {
	if os.Getenv("KUBETEST_CHILD") == "1" {
		bins, err := kubetest.EnsureBinaries(context.Background(), nil)
		require.NoError(t, err)
		_, err = kubetest.Start(context.Background(), bins)
		require.NoError(t, err)
		os.Stdout.WriteString("STARTED\n")
		time.Sleep(time.Minute) // killed by the parent before this ends
		return
	}
	kubetest.Shared(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadTestLeavesNothingBehind$")
	cmd.Env = append(os.Environ(), "KUBETEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "STARTED") {
		n, err := out.Read(buf)
		require.NoError(t, err, "child output so far: %s", got.String())
		got.Write(buf[:n])
	}
	servers := childPIDs(t, cmd.Process.Pid)
	require.Len(t, servers, 2, "etcd and kube-apiserver")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Eventually(t, func() bool {
		for _, pid := range servers {
			if alive(pid) {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "servers outlived their test process")
}

func TestKubeconfigAndUsers(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubetest.Kubeconfig(t))
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	require.NoError(t, err, "the kubeconfig reaches the server as admin")

	user, err := kubernetes.NewForConfig(kubetest.UserConfig(t, "alice", "team"))
	require.NoError(t, err)
	review, err := user.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "alice", review.Status.UserInfo.Username)
	assert.Contains(t, review.Status.UserInfo.Groups, "team")
	_, err = user.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	assert.True(t, apierrors.IsForbidden(err), "a user without roles is forbidden: %v", err)
}

// TestRestartsKeepTheData: the API server and etcd come back on the same
// address with what was stored, for the chaos tests' restart faults.
func TestRestartsKeepTheData(t *testing.T) {
	kubetest.Shared(t)
	bins, err := kubetest.EnsureBinaries(context.Background(), nil)
	require.NoError(t, err)
	before := len(childPIDs(t, os.Getpid()))
	s, err := kubetest.Start(context.Background(), bins)
	require.NoError(t, err)
	defer s.Stop()
	cs, err := kubernetes.NewForConfig(s.Config())
	require.NoError(t, err)
	ctx := context.Background()
	_, err = cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	for name, restart := range map[string]func(context.Context) error{"API server": s.RestartAPIServer, "etcd": s.RestartEtcd} {
		require.NoError(t, restart(ctx), name)
		_, err = cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
		require.NoError(t, err, "the same client reads what was stored, after restarting %s", name)
	}
	assert.Len(t, childPIDs(t, os.Getpid()), before+2, "one etcd and one API server more than before Start: the killed ones are gone")
}
