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

// TestWorkFinishesBeforeTheLeaseIsReleased sends SIGTERM to the leader:
// the work finishes its batch, then the lease is released, then the
// program exits 0; a standby leads only after the work finished. With a
// batch that takes longer than the lease, the leader renews while it
// finishes (issue 14: before, the standby led at 2.8 s and the old
// leader's work went on until 5 s).
func TestWorkFinishesBeforeTheLeaseIsReleased(t *testing.T) {
	for name, timings := range map[string][]string{
		"batch shorter than the lease": {"--lease-duration", "4s", "--renew-deadline", "3s", "--finish", "1s"},
		"batch longer than the lease":  {"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms", "--finish", "5s"},
	} {
		t.Run(name, func(t *testing.T) {
			testFinishBeforeRelease(t, timings)
		})
	}
}

func testFinishBeforeRelease(t *testing.T, timings []string) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	bin := proctest.Build(t, ".")
	var order []string
	start := func(id string) *proctest.Process {
		return clitest.Start(t, bin, ns, id, timings...)
	}
	a := start("a")
	a.WaitFor(t, "a started leading", 10*time.Second)
	b := start("b")
	time.Sleep(500 * time.Millisecond)

	signalled := time.Now()
	require.NoError(t, a.Cmd.Process.Signal(syscall.SIGTERM))
	a.WaitFor(t, "a work finished", 10*time.Second)
	finished := time.Now()
	require.NoError(t, a.Wait(t, 5*time.Second), "exit 0")
	assert.GreaterOrEqual(t, finished.Sub(signalled), time.Second, "the batch took its time")
	for _, l := range a.Lines() {
		for _, step := range []string{"finishing the current batch", "work finished", "released the lease"} {
			if strings.Contains(l, step) {
				order = append(order, step)
			}
		}
	}
	assert.Equal(t, []string{"finishing the current batch", "work finished", "released the lease"}, order)
	// b may lead as soon as a has released, before a exits: compare the
	// lines' stamps (one clock), not whether b has led yet.
	stamp := func(lines []string, what string) (time.Time, bool) {
		for _, l := range lines {
			if strings.Contains(l, what) && len(l) >= 12 {
				if at, err := time.Parse("15:04:05.000", l[:12]); err == nil {
					return at, true
				}
			}
		}
		return time.Time{}, false
	}
	done, ok := stamp(a.Lines(), "a work finished")
	require.True(t, ok, "a's work finished line has a stamp")
	if led, ok := stamp(b.Lines(), "b started leading"); ok {
		assert.False(t, led.Before(done), "b led at %s while a's work was still finishing (until %s)", led.Format("15:04:05.000"), done.Format("15:04:05.000"))
	}

	b.WaitFor(t, "b started leading", 2*time.Second)
	lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "graceful-example", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "b", *lease.Spec.HolderIdentity)
	assert.GreaterOrEqual(t, lease.Spec.AcquireTime.Time, finished.Add(-50*time.Millisecond), "b acquired after a's work finished")
}
