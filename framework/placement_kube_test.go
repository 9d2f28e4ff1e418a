package framework_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
)

// placedYAML is the configuration of the placement tests: short timings,
// every component balanced.
func placedYAML(ns, revision string) string {
	return fmt.Sprintf(`
namespace: %s
lease_duration: 3s
renew_deadline: 2s
retry_period: 200ms
placement: balanced
revision: %q
`, ns, revision)
}

// startPlaced starts a replica with the identity id, configured by yaml,
// that campaigns for names on cs, recording their terms in led and its
// logs in logs.
func startPlaced(t *testing.T, cs kubernetes.Interface, led *ledgers, names []string, logs io.Writer, id, yaml string) *fxtest.App {
	opts := []fx.Option{
		framework.Module,
		framework.ConfigYAML("test.yaml", []byte(yaml+"identity: "+id+"\n")),
		withClient(cs),
		fx.Supply(slog.New(slog.NewTextHandler(logs, nil)).With("replica", id)),
		fx.NopLogger,
	}
	for _, n := range names {
		opts = append(opts, supply(recorded(led, n)))
	}
	app := fxtest.New(t, opts...)
	app.RequireStart()
	return app
}

func twelve() []string {
	names := make([]string, 12)
	for i := range names {
		names[i] = fmt.Sprintf("comp%02d", i)
	}
	return names
}

// shares counts the components each identity leads now, by the ledgers;
// ok is false while a component has no leader or two.
func shares(led *ledgers, names []string) (map[string]int, bool) {
	out := map[string]int{}
	for _, n := range names {
		l := led.of(n).Leaders()
		if len(l) != 1 {
			return out, false
		}
		out[l[0]]++
	}
	return out, true
}

// waitForShares waits until the components are led as want says.
func waitForShares(t *testing.T, led *ledgers, names []string, want map[string]int, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	var got map[string]int
	ok := assert.Eventually(t, func() bool {
		var all bool
		got, all = shares(led, names)
		return all && maps.Equal(got, want)
	}, within, 20*time.Millisecond)
	require.True(t, ok, "%s: shares %v, want %v", what, got, want)
	return time.Since(start)
}

// transitions is each component's number of terms started so far.
func transitions(led *ledgers, names []string) map[string]int {
	out := map[string]int{}
	for _, n := range names {
		out[n] = led.of(n).Ended() + len(led.of(n).Leaders())
	}
	return out
}

// TestPlacementOnRealAPIServer: three replicas × 12 components on Leases
// with placement balanced end 4/4/4; one leaving makes 6/6 and its return
// 4/4/4 again; a rolling update (a new-revision replica started before
// each old one stops, as a Deployment's maxSurge does) moves each
// component once and ends 4/4/4 on the new replicas; no two leaders ever.
func TestPlacementOnRealAPIServer(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	names := twelve()
	led := newLedgers()
	var moveLog lockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(moveLog.String(), "\n") {
				if strings.Contains(line, "placement") || strings.Contains(line, "hand") {
					t.Log(line)
				}
			}
		}
	})
	start := func(id, rev string) *fxtest.App {
		return startPlaced(t, cs, led, names, &moveLog, id, placedYAML(ns, rev)+"events: true\n")
	}
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2", "r3"} {
		apps[id] = start(id, "v1")
		time.Sleep(300 * time.Millisecond)
	}
	t.Cleanup(func() {
		for _, a := range apps {
			a.RequireStop()
		}
	})
	took := waitForShares(t, led, names, map[string]int{"r1": 4, "r2": 4, "r3": 4}, 20*time.Second, "after the start")
	t.Logf("spread 4/4/4 %v after the last start", took)
	assert.Eventually(t, func() bool {
		evs, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "Lease" && strings.Contains(ev.Message, " asked to hand over to r") {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "each move is an Event on its Lease")

	apps["r3"].RequireStop()
	delete(apps, "r3")
	waitForShares(t, led, names, map[string]int{"r1": 6, "r2": 6}, 5*time.Second, "after r3 left")
	apps["r3"] = start("r3", "v1")
	took = waitForShares(t, led, names, map[string]int{"r1": 4, "r2": 4, "r3": 4}, 10*time.Second, "after r3 came back")
	t.Logf("spread 4/4/4 again %v after r3 came back", took)

	before := transitions(led, names)
	for _, old := range []string{"r1", "r2", "r3"} {
		apps[old+"b"] = start(old+"b", "v2")
		time.Sleep(time.Second) // ready, as a Deployment waits for it
		apps[old].RequireStop()
		delete(apps, old)
	}
	waitForShares(t, led, names, map[string]int{"r1b": 4, "r2b": 4, "r3b": 4}, 10*time.Second, "after the rolling update")
	after := transitions(led, names)
	var moves []int
	for _, n := range names {
		moves = append(moves, after[n]-before[n])
		if !assert.LessOrEqual(t, after[n]-before[n], 1, "%s moved at most once in the rolling update", n) {
			for _, iv := range led.of(n).Intervals() {
				t.Logf("%s: %s/%d %s – %s", n, iv.Who, iv.Token, iv.Start.Format(time.StampMilli), iv.End.Format(time.StampMilli))
			}
		}
	}
	t.Logf("moves per component in the rolling update: %v (max %d)", moves, slices.Max(moves))
	for _, n := range names {
		led.of(n).Check(t)
	}
}

// lockedBuffer is a bytes.Buffer for many writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
