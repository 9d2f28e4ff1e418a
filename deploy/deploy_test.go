// Package deploy_test checks the manifests under deploy/ against the test
// API server: they apply, and examples/multicomponent runs with exactly
// the permissions they grant.
package deploy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

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
		addr := freeAddress(t)
		p := proctest.Start(t, "pod", nil, append(env, "TENURE_HTTP__ADDRESS="+addr), bin, "--config", config, "--kubeconfig", kubeconfig)
		for _, c := range []string{"billing", "reports", "janitor"} {
			p.WaitFor(t, c+" multicomponent-7d9f-abcde-", 10*time.Second)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			code, _ := proctest.Get(t, "http://"+addr+path)
			assert.Equal(t, http.StatusOK, code, path)
		}
		// The dashboard's queries name metrics the program serves.
		var metrics string
		require.Eventually(t, func() bool {
			_, metrics = proctest.Get(t, "http://"+addr+"/metrics")
			return strings.Contains(metrics, "tenure_election_renew_duration_seconds_bucket")
		}, 5*time.Second, 50*time.Millisecond)
		checkDashboard(t, metrics)
		require.NoError(t, p.Cmd.Process.Signal(os.Interrupt))
		require.NoError(t, p.Wait(t, 10*time.Second))
	})

	t.Run("TouchesOnlyItsOwnLocks", func(t *testing.T) {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		require.NoError(t, err)
		sa, err := kubernetes.NewForConfig(rc)
		require.NoError(t, err)
		ctx := context.Background()
		patch := []byte(`{"metadata":{"labels":{"touched":"yes"}}}`)
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}
		for name, call := range map[string]func() error{
			// patch and delete on leases in its namespace are placement's
			// (member Leases are named after their Pods): the namespace is
			// its own.
			"get another Lease in its namespace": func() error {
				_, err := sa.CoordinationV1().Leases(ns).Get(ctx, "someone-else", metav1.GetOptions{})
				return err
			},
			"patch a Lease in another namespace": func() error {
				_, err := sa.CoordinationV1().Leases("default").Patch(ctx, "billing", types.MergePatchType, patch, metav1.PatchOptions{})
				return err
			},
			"delete a Lease in another namespace": func() error {
				return sa.CoordinationV1().Leases("default").Delete(ctx, "billing", metav1.DeleteOptions{})
			},
			"get its Lease's name in another namespace": func() error {
				_, err := sa.CoordinationV1().Leases("default").Get(ctx, "billing", metav1.GetOptions{})
				return err
			},
			"create a Lease in another namespace": func() error {
				_, err := sa.CoordinationV1().Leases("default").Create(ctx, lease, metav1.CreateOptions{})
				return err
			},
			"read ConfigMaps": func() error {
				_, err := sa.CoreV1().ConfigMaps(ns).Get(ctx, "multicomponent-config", metav1.GetOptions{})
				return err
			},
			"list Secrets": func() error {
				_, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
				return err
			},
		} {
			err := call()
			assert.True(t, apierrors.IsForbidden(err), "%s: want forbidden, got %v", name, err)
		}
	})

	t.Run("FailsClearlyWithoutAVerb", func(t *testing.T) {
		role, err := cs.RbacV1().Roles(ns).Get(context.Background(), "multicomponent-leader-election", metav1.GetOptions{})
		require.NoError(t, err)
		for i := range role.Rules { // the components' Leases, and placement's
			role.Rules[i].Verbs = slices.DeleteFunc(role.Rules[i].Verbs, func(v string) bool { return v == "patch" })
		}
		_, err = cs.RbacV1().Roles(ns).Update(context.Background(), role, metav1.UpdateOptions{})
		require.NoError(t, err)

		p := proctest.Start(t, "pod", nil, env, bin, "--config", config, "--kubeconfig", kubeconfig)
		err = p.Wait(t, 10*time.Second)
		require.Error(t, err, "the program does not start")
		for _, c := range []string{"billing", "reports", "janitor"} {
			assert.Contains(t, p.Stderr(), `components.`+c+`: forbidden: "system:serviceaccount:tenure-example:multicomponent" may not patch leases.coordination.k8s.io "`+c+`" in namespace "tenure-example"`)
		}
		assert.Contains(t, p.Stderr(), `placement: forbidden: "system:serviceaccount:tenure-example:multicomponent" may not patch leases.coordination.k8s.io "tenure-placement-multicomponent" in namespace "tenure-example"`)
		assert.NotContains(t, p.Stderr(), "may not get")
		assert.NotContains(t, p.Output(), "started leading")
	})
}

func freeAddress(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

var metricName = regexp.MustCompile(`\btenure_[a-z_]+`)

// checkDashboard checks that the Grafana dashboard is valid JSON and that
// every metric its queries name is in metrics, a /metrics scrape.
func checkDashboard(t *testing.T, metrics string) {
	raw, err := os.ReadFile("grafana/tenure-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash), "valid JSON")
	require.NotEmpty(t, dash.Panels)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(metrics))
	require.NoError(t, err)
	served := map[string]bool{}
	for name, fam := range families {
		served[name] = true
		if fam.GetType() == dto.MetricType_HISTOGRAM {
			served[name+"_bucket"], served[name+"_sum"], served[name+"_count"] = true, true, true
		}
	}
	seen := 0
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, target := range p.Targets {
			names := metricName.FindAllString(target.Expr, -1)
			assert.NotEmpty(t, names, "%s: %s", p.Title, target.Expr)
			for _, n := range names {
				if strings.HasPrefix(n, "tenure_election_name") || strings.HasPrefix(n, "tenure_operation") || strings.HasPrefix(n, "tenure_outcome") {
					continue // labels
				}
				seen++
				assert.True(t, served[n], "panel %q queries %s, which /metrics does not serve", p.Title, n)
			}
		}
	}
	assert.GreaterOrEqual(t, seen, 7)
}
