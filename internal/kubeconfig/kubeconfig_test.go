package kubeconfig_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tenure/tenure/internal/kubeconfig"
)

// noCluster points every place a cluster could be configured at nothing.
// (clientcmd reads $HOME once, when the program starts, so it is
// $KUBECONFIG that keeps a developer's ~/.kube/config out of the tests.)
func noCluster(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "none"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	return dir
}

// write writes a kubeconfig naming server and returns its path.
func write(t *testing.T, dir, name, server string) string {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(dir, name)
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

func TestNoClusterIsTenuresOwnError(t *testing.T) {
	noCluster(t)
	_, err := kubeconfig.RESTConfig("")
	require.ErrorIs(t, err, kubeconfig.ErrNoCluster)
	assert.NotContains(t, err.Error(), "KUBERNETES_MASTER")
}

func TestExplicitPathComesFirst(t *testing.T) {
	dir := noCluster(t)
	t.Setenv("KUBECONFIG", write(t, dir, "env", "https://from-env:6443"))
	rc, err := kubeconfig.RESTConfig(write(t, dir, "explicit", "https://explicit:6443"))
	require.NoError(t, err)
	assert.Equal(t, "https://explicit:6443", rc.Host)
}

func TestKubeconfigVariableWithoutPath(t *testing.T) {
	dir := noCluster(t)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing")+string(os.PathListSeparator)+write(t, dir, "env", "https://from-env:6443"))
	rc, err := kubeconfig.RESTConfig("")
	require.NoError(t, err)
	assert.Equal(t, "https://from-env:6443", rc.Host)
}

func TestBadExplicitPathNamesIt(t *testing.T) {
	dir := noCluster(t)
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file or directory",
		empty:                         "names no cluster",
	} {
		_, err := kubeconfig.RESTConfig(path)
		require.Error(t, err)
		assert.NotErrorIs(t, err, kubeconfig.ErrNoCluster, "a path was given")
		assert.Contains(t, err.Error(), `kubeconfig "`+path+`"`)
		assert.Contains(t, err.Error(), want)
	}
}
