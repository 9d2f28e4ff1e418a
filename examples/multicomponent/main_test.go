package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

var names = []string{"billing", "reports", "janitor"}

// cluster runs copies of the example and records, from their output,
// when each leads each component.
type cluster struct {
	t      *testing.T
	bin    string
	config string
	led    map[string]*leadertest.Ledger
}

var line = regexp.MustCompile(`^\S+ (\S+) (\S+) (started|stopped) leading, term (\d+)$`)

func (c *cluster) record(l string) {
	m := line.FindStringSubmatch(l)
	if m == nil {
		return
	}
	var token int32
	fmt.Sscan(m[4], &token)
	if m[3] == "started" {
		c.led[m[1]].Begin(m[2], token)
	} else {
		c.led[m[1]].End(m[2])
	}
}

func (c *cluster) start(id string) *proctest.Process {
	return proctest.Start(c.t, id, c.record, []string{"TENURE_IDENTITY=" + id}, c.bin, "--config", c.config)
}

func (c *cluster) leaders() map[string]string {
	who := map[string]string{}
	for _, n := range names {
		who[n] = c.led[n].Leader(c.t)
	}
	return who
}

// TestProcessesHandOverOnSignals builds the example and runs three copies
// against the test apiserver. SIGTERM to the busiest: it exits 0 within
// its shutdown timeout, releases its Leases, and each of its components is
// led elsewhere within a second. SIGKILL to another: its components are
// taken over once their leases expire.
func TestProcessesHandOverOnSignals(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	dir := t.TempDir()
	bin := proctest.Build(t, ".")

	config := filepath.Join(dir, "tenure.yaml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, `
kubeconfig: %s
namespace: %s
lease_duration: 3s
renew_deadline: 2s
retry_period: 200ms
shutdown_timeout: 5s
components:
  billing: {}
  reports:
    lease_duration: 4s
    renew_deadline: 3s
    retry_period: 300ms
  janitor:
    lease_duration: 5s
    renew_deadline: 3s
    retry_period: 500ms
`, kubetest.Kubeconfig(t), ns), 0o600))

	c := &cluster{t: t, bin: bin, config: config, led: map[string]*leadertest.Ledger{}}
	for _, n := range names {
		c.led[n] = leadertest.New()
	}
	procs := map[string]*proctest.Process{}
	for _, id := range []string{"p1", "p2", "p3"} {
		procs[id] = c.start(id)
	}

	// SIGTERM to the process that leads the most components.
	leaders := c.leaders()
	count := map[string]int{}
	for _, who := range leaders {
		count[who]++
	}
	busiest := "p1"
	for id := range procs {
		if count[id] > count[busiest] {
			busiest = id
		}
	}
	signalled := time.Now()
	require.NoError(t, procs[busiest].Cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, procs[busiest].Wait(t, 5*time.Second), "exit code 0 within the shutdown timeout")
	t.Logf("%s led %d components and exited %v after SIGTERM", busiest, count[busiest], time.Since(signalled))
	for _, n := range names {
		lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), n, metav1.GetOptions{})
		require.NoError(t, err)
		assert.NotEqual(t, busiest, *lease.Spec.HolderIdentity, "%s's lease was released", n)
		if leaders[n] != busiest {
			continue
		}
		next := c.led[n].Leader(t)
		took := c.led[n].Started(next).Sub(signalled)
		assert.Less(t, took, time.Second, "%s led by %s within a second of SIGTERM (took %v)", n, next, took)
	}
	delete(procs, busiest)

	// SIGKILL to the leader of billing: no release, so the others wait
	// for the lease (3s) to expire.
	victim := c.led["billing"].Leader(t)
	killed := time.Now()
	require.NoError(t, procs[victim].Cmd.Process.Kill())
	<-procs[victim].Done()
	for _, n := range names {
		c.led[n].End(victim) // its work died with it
	}
	next := c.led["billing"].Leader(t)
	took := c.led["billing"].Started(next).Sub(killed)
	assert.NotEqual(t, victim, next)
	// The lease runs from the last renewal the others saw, which a loaded
	// machine can delay: well above a hand-over, at most the lease.
	assert.Greater(t, took, 3*time.Second/2, "billing taken over only once its lease expired")
	assert.Less(t, took, 3*time.Second+time.Second, "billing taken over soon after its lease expired")

	for _, n := range names {
		c.led[n].Check(t)
	}
}
