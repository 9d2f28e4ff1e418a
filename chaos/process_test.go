package chaos_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/internal/faultproxy"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/proctest"
)

const (
	lease    = 3 * time.Second
	deadline = 2 * time.Second
	retry    = 200 * time.Millisecond
)

var elections = []string{"billing", "reports", "janitor"}

// replica is one process of the example behind its own proxy.
type replica struct {
	id    string
	proxy *faultproxy.Proxy
	kc    string
	p     *proctest.Process
}

// TestProcessesUnderFaults runs three processes of examples/multicomponent,
// each reaching the API server through a proxy of its own, and injects,
// one after another: SIGKILL, SIGSTOP past the lease then SIGCONT, SIGTERM
// (each component's work winds down for up to two leases, checking its
// term before each act, at times past shutdown_timeout), a SIGSTOP of the
// placement coordinator (placement is on by default, so hand-overs wind
// work down throughout), a partition of the
// leader, a partition of a follower, a restart of the API server, a
// restart of etcd, and reset connections. Every leader checks its term
// with election.Valid before each act while it runs; the checker finds no
// two leaders acting at once, and after each fault heals every election
// has a leader acting within the lease plus a second.
func TestProcessesUnderFaults(t *testing.T) {
	run := duration(t, 3*time.Minute)
	srv := kubetest.Shared(t)
	ns := kubetest.Namespace(t)
	bin := proctest.Build(t, "../examples/multicomponent")
	dir := t.TempDir()
	config := filepath.Join(dir, "tenure.yaml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, "namespace: %s\nshutdown_timeout: 5s\n", ns), 0o600))
	env := []string{}
	for _, c := range append([]string{""}, "COMPONENTS__BILLING__", "COMPONENTS__REPORTS__", "COMPONENTS__JANITOR__") {
		env = append(env, "TENURE_"+c+"LEASE_DURATION="+lease.String(), "TENURE_"+c+"RENEW_DEADLINE="+deadline.String(), "TENURE_"+c+"RETRY_PERIOD="+retry.String())
	}

	admin, err := kubernetes.NewForConfig(srv.Config())
	require.NoError(t, err)
	c := newChecker()
	day := time.Now()
	var mu sync.Mutex
	var placed atomic.Int64 // moves the placement coordinators asked for
	replicas := map[string]*replica{}
	// countMoves counts the moves r's process asked for as coordinator,
	// from its log, once the process has ended.
	countMoves := func(r *replica) {
		if r.p != nil {
			placed.Add(int64(strings.Count(r.p.Stderr(), "placement: asked a leader to move")))
		}
	}
	start := func(r *replica) {
		mu.Lock()
		defer mu.Unlock()
		countMoves(r)
		r.p = proctest.Start(t, r.id, func(l string) { c.parse(day, l) },
			append(env, "TENURE_IDENTITY="+r.id), bin, "--config", config, "--kubeconfig", r.kc, "--act-period", "50ms", "--log-acts", "--wind-down", (2 * lease).String())
	}
	for i := range 3 {
		proxy, err := faultproxy.Start(strings.TrimPrefix(srv.URL, "https://"))
		require.NoError(t, err)
		t.Cleanup(proxy.Close)
		r := &replica{id: fmt.Sprintf("p%d", i+1), proxy: proxy}
		r.kc = kubetest.KubeconfigAt(t, "https://"+proxy.Addr(), srv.AdminToken)
		replicas[r.id] = r
		start(r)
	}
	leaderOf := func() map[string]string { return c.leaders(elections) }
	allLed := func(within time.Duration) {
		t.Helper()
		require.Eventually(t, func() bool { return len(leaderOf()) == len(elections) }, within, 50*time.Millisecond,
			"every election has a leader acting within %v", within)
	}
	busiest := func() *replica {
		count := map[string]int{}
		for _, who := range leaderOf() {
			count[who]++
		}
		best := replicas["p1"]
		for id, r := range replicas {
			if count[id] > count[best.id] {
				best = r
			}
		}
		return best
	}
	follower := func() *replica {
		leaders := map[string]bool{}
		for _, who := range leaderOf() {
			leaders[who] = true
		}
		for _, r := range replicas {
			if !leaders[r.id] {
				return r
			}
		}
		return replicas["p1"]
	}

	allLed(lease + 10*time.Second) // new Leases are first taken after a lease
	faults := []fault{
		{"SIGKILL the busiest", func() {
			r := busiest()
			_ = r.p.Cmd.Process.Kill()
			<-r.p.Done()
			start(r)
		}},
		{"SIGSTOP the busiest past its lease, then SIGCONT", func() {
			r := busiest()
			_ = r.p.Cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(lease + time.Second)
			_ = r.p.Cmd.Process.Signal(syscall.SIGCONT)
		}},
		{"SIGTERM the busiest (its work winds down up to two leases, past shutdown_timeout at times)", func() {
			r := busiest()
			_ = r.p.Cmd.Process.Signal(syscall.SIGTERM)
			_ = r.p.Wait(t, 10*time.Second)
			start(r)
		}},
		{"SIGSTOP the placement coordinator past its lease, then SIGCONT", func() {
			// Placement is on by default: the coordinator, frozen, may
			// wake with a stale view and ask for stale moves, which the
			// locks' compare-and-swap turns into poor moves at worst.
			coord, err := admin.CoordinationV1().Leases(ns).Get(context.Background(), "tenure-placement-multicomponent", metav1.GetOptions{})
			if err != nil || coord.Spec.HolderIdentity == nil || replicas[*coord.Spec.HolderIdentity] == nil {
				return // between coordinators
			}
			r := replicas[*coord.Spec.HolderIdentity]
			_ = r.p.Cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(lease + time.Second)
			_ = r.p.Cmd.Process.Signal(syscall.SIGCONT)
		}},
		{"partition the busiest", func() {
			r := busiest()
			r.proxy.Block()
			time.Sleep(lease + time.Second)
			r.proxy.Heal()
		}},
		{"partition a follower", func() {
			r := follower()
			r.proxy.Block()
			time.Sleep(lease + time.Second)
			r.proxy.Heal()
		}},
	}
	var proxies []*faultproxy.Proxy
	for _, r := range replicas {
		proxies = append(proxies, r.proxy)
	}
	faults = append(faults, sharedFaults(t, srv, proxies)...)
	// The lease, a second, and the 50ms act period's slack.
	n := inject(t, c, run, faults, func(string) { allLed(lease + time.Second + 500*time.Millisecond) })
	for _, r := range replicas {
		_ = r.p.Cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, r := range replicas {
		_ = r.p.Wait(t, 10*time.Second)
		countMoves(r)
	}
	t.Logf("%d faults, %d terms started, %d moves asked by placement", n, c.transitions(), placed.Load())
	c.check(t)
	assert.Positive(t, placed.Load(), "placement (on by default) moved leaderships")
}
