// Package kubetest runs a real kube-apiserver and etcd on loopback for
// tests.
//
// The binaries are those that $KUBEBUILDER_ASSETS names, as
// controller-runtime's envtest finds them (a folder holding kube-apiserver
// and etcd, such as `setup-envtest use -p path` prints; or one file each
// in $TEST_ASSET_KUBE_APISERVER and $TEST_ASSET_ETCD), from kube-apiserver
// v1.33 to KubernetesVersion. When none of these is set, kubetest builds
// KubernetesVersion and its etcd from Go modules (see hack/; about 13
// minutes on two cores) and caches them outside the repository (see
// CacheDir). See EnsureBinaries.
//
// A test package that needs it calls Main from TestMain; its tests call
// Config, Client or Namespace. The servers start at the first such call,
// once per test package, and stop when the package's tests end.
//
// With -short those tests are skipped. Otherwise, if the servers cannot
// start, the tests fail when CI=true and are skipped with the reason when
// not; binaries that the environment names but that are missing, not
// executable or of another version fail the tests either way.
package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tenure/tenure/internal/faultproxy"
)

var (
	startOnce sync.Once
	shared    *Server
	startErr  error
)

// Main runs the package's tests and then stops the servers if a test
// started them. Use it as os.Exit(kubetest.Main(m)) in TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Shared returns the package's running servers, starting them on first
// use, or skips or fails t (see the package documentation).
func Shared(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real kube-apiserver; skipped with -short")
	}
	startOnce.Do(func() { shared, startErr = startShared() })
	if startErr != nil {
		if errors.Is(startErr, errAssets) {
			t.Fatalf("cannot start the test kube-apiserver: %v", startErr)
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot start the test kube-apiserver (CI=true, so this fails instead of skipping): %v", startErr)
		}
		t.Skipf("cannot start the test kube-apiserver: %v", startErr)
	}
	return shared
}

func startShared() (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bins, err := EnsureBinaries(ctx, func(msg string) { fmt.Fprintln(os.Stderr, "kubetest:", msg) })
	if err != nil {
		return nil, err
	}
	// A port chosen free can be taken by another test package before the
	// server binds it; try again with new ports.
	var errs []string
	for attempt := 0; attempt < 3; attempt++ {
		s, err := Start(ctx, bins)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("%s", strings.Join(errs, "\n---\n"))
}

// Config returns an admin client configuration for the shared servers.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	return Shared(t).Config()
}

// Client returns an admin clientset for the shared servers.
func Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(Config(t))
	if err != nil {
		t.Fatalf("kubetest: clientset: %v", err)
	}
	return cs
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for t alone, named after the test, with a
// "default" ServiceAccount as the controller manager would make, and
// deletes it when t ends.
func Namespace(t testing.TB) string {
	t.Helper()
	cs := Client(t)
	prefix := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(prefix) > 40 {
		prefix = prefix[len(prefix)-40:]
	}
	prefix = strings.Trim(prefix, "-") + "-"
	ctx := context.Background()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create namespace: %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create default service account: %v", err)
	}
	t.Cleanup(func() {
		// Without a controller manager the namespace stays Terminating;
		// that only matters until the servers stop.
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// UserConfig returns a client configuration that acts as user name in
// groups: the admin impersonates it, so requests pass authentication as
// that user and are authorized by RBAC like any other user's. Tests grant
// it roles as they need.
func UserConfig(t testing.TB, name string, groups ...string) *rest.Config {
	t.Helper()
	cfg := rest.CopyConfig(Config(t))
	cfg.Impersonate = rest.ImpersonationConfig{UserName: name, Groups: groups}
	return cfg
}

// Kubeconfig writes a kubeconfig file for the admin user of the shared
// servers into a temporary directory of t and returns its path, for
// programs that a test starts as separate processes.
func Kubeconfig(t testing.TB) string {
	t.Helper()
	return KubeconfigFor(t, Shared(t).AdminToken)
}

// KubeconfigFor is Kubeconfig for the bearer token token, such as a
// ServiceAccount's from the TokenRequest API.
func KubeconfigFor(t testing.TB, token string) string {
	t.Helper()
	return KubeconfigAt(t, Shared(t).URL, token)
}

// KubeconfigAt is KubeconfigFor a server reached at url, such as a proxy
// in front of the shared server; the server's certificate is verified.
func KubeconfigAt(t testing.TB, url, token string) string {
	t.Helper()
	s := Shared(t)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: url, CertificateAuthority: s.CAFile}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	cfg.CurrentContext = "kubetest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("kubetest: write kubeconfig: %v", err)
	}
	return path
}

// ViaProxy returns a fault proxy in front of the shared API server and an
// admin client that reaches the server through it, with a request timeout
// (0: none). The proxy is closed when t ends.
func ViaProxy(t testing.TB, timeout time.Duration) (*faultproxy.Proxy, kubernetes.Interface) {
	t.Helper()
	cfg := rest.CopyConfig(Config(t))
	proxy, err := faultproxy.Start(strings.TrimPrefix(cfg.Host, "https://"))
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(proxy.Close)
	cfg.Host = "https://" + proxy.Addr()
	cfg.Timeout = timeout
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return proxy, cs
}
