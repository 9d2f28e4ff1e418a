package cli

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNoClusterNamesTheWaysForward(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "none"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := (&Flags{}).Client()
	require.Error(t, err)
	assert.Equal(t, "no Kubernetes cluster configured: pass --kubeconfig, set $KUBECONFIG, or run in a cluster", err.Error())
}
