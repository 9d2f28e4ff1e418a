// Package deploy_test checks the manifests under deploy/ against the test
// API server: they apply, and examples/multicomponent runs with exactly
// the permissions they grant.
package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

const ns = "tenure-example"

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kubectl is needed to check the manifests: %v", err)
		}
		t.Skipf("kubectl not found: %v", err)
	}
	cmd := exec.Command(path, append([]string{"--kubeconfig", kubetest.Kubeconfig(t)}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kubectl %v:\n%s", args, out)
	return string(out)
}

// serviceAccountKubeconfig returns a kubeconfig with a token of the
// manifests' ServiceAccount.
func serviceAccountKubeconfig(t *testing.T, cs kubernetes.Interface) string {
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "multicomponent",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return kubetest.KubeconfigFor(t, tok.Status.Token)
}

func TestManifests(t *testing.T) {
	cs := kubetest.Client(t)
	dir := "multicomponent"
	kubectl(t, "apply", "-f", filepath.Join(dir, "namespace.yaml"))
	out := kubectl(t, "apply", "--dry-run=server", "-f", dir)
	for _, obj := range []string{"deployment.apps/multicomponent", "configmap/multicomponent-config", "serviceaccount/multicomponent", "role.rbac.authorization.k8s.io/multicomponent-leader-election", "rolebinding.rbac.authorization.k8s.io/multicomponent-leader-election"} {
		assert.Contains(t, out, obj+" created (server dry run)")
	}
	kubectl(t, "apply", "-f", filepath.Join(dir, "rbac.yaml"), "-f", filepath.Join(dir, "configmap.yaml"))

	// The configuration the pods would mount, with short timings so the
	// first elections on new Leases (one lease long) pass quickly.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "multicomponent-config", metav1.GetOptions{})
	require.NoError(t, err)
	config := filepath.Join(t.TempDir(), "tenure.yaml")
	require.NoError(t, os.WriteFile(config, []byte(cm.Data["tenure.yaml"]), 0o600))
	var env = []string{"POD_NAME=multicomponent-7d9f-abcde", "POD_NAMESPACE=" + ns}
	for _, c := range []string{"", "COMPONENTS__BILLING__", "COMPONENTS__REPORTS__", "COMPONENTS__JANITOR__"} {
		env = append(env, "TENURE_"+c+"LEASE_DURATION=2s", "TENURE_"+c+"RENEW_DEADLINE=1s", "TENURE_"+c+"RETRY_PERIOD=200ms")
	}
	bin := proctest.Build(t, "../examples/multicomponent")
	kubeconfig := serviceAccountKubeconfig(t, cs)

	t.Run("RunsWithTheRole", func(t *testing.T) {
		p := proctest.Start(t, "pod", nil, env, bin, "--config", config, "--kubeconfig", kubeconfig)
		for _, c := range []string{"billing", "reports", "janitor"} {
			p.WaitFor(t, c+" multicomponent-7d9f-abcde-", 10*time.Second)
		}
		require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
		require.NoError(t, p.Wait(t, 10*time.Second))
	})

	t.Run("FailsClearlyWithoutAVerb", func(t *testing.T) {
		role, err := cs.RbacV1().Roles(ns).Get(context.Background(), "multicomponent-leader-election", metav1.GetOptions{})
		require.NoError(t, err)
		role.Rules[1].Verbs = slices.DeleteFunc(role.Rules[1].Verbs, func(v string) bool { return v == "patch" })
		_, err = cs.RbacV1().Roles(ns).Update(context.Background(), role, metav1.UpdateOptions{})
		require.NoError(t, err)

		p := proctest.Start(t, "pod", nil, env, bin, "--config", config, "--kubeconfig", kubeconfig)
		err = p.Wait(t, 10*time.Second)
		require.Error(t, err, "the program does not start")
		for _, c := range []string{"billing", "reports", "janitor"} {
			assert.Contains(t, p.Stderr(), `components.`+c+`: forbidden: "system:serviceaccount:tenure-example:multicomponent" may not patch leases.coordination.k8s.io "`+c+`" in namespace "tenure-example"`)
		}
		assert.NotContains(t, p.Stderr(), "may not get")
		assert.NotContains(t, p.Output(), "started leading")
	})
}
