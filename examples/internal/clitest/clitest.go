// Package clitest runs the single-election examples in their tests.
package clitest

import (
	"testing"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

// Start runs the example binary bin as candidate id against the test API
// server, with its lock in namespace ns (none: the example's default) and
// short timings (3s lease, 2s renew deadline, 200ms retry); extra flags
// come last and override these.
func Start(t *testing.T, bin, ns, id string, extra ...string) *proctest.Process {
	t.Helper()
	args := []string{"--kubeconfig", kubetest.Kubeconfig(t), "--identity", id,
		"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "200ms"}
	if ns != "" {
		args = append(args, "--namespace", ns)
	}
	return proctest.Start(t, id, nil, nil, bin, append(args, extra...)...)
}
