package controllerruntime_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/contrib/controllerruntime"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// reconciles records every reconcile: who, in which term, when.
type reconciles struct {
	mu       sync.Mutex
	all      []leadertest.Act
	slowOnce atomic.Bool // the first reconcile of "slow" winds down with its term
}

// begin records a reconcile that starts now; end, when it returns.
func (r *reconciles) begin(x leadertest.Act) (end func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x.Start = time.Now()
	r.all = append(r.all, x)
	i := len(r.all) - 1
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.all[i].End = time.Now()
	}
}

func (r *reconciles) by(who string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.all {
		if x.Who == who {
			n++
		}
	}
	return n
}

// check fails t if reconciles of two terms overlap, or one term's come
// from two replicas.
func (r *reconciles) check(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	leadertest.CheckActs(t, r.all, nil)
}

// newManager is a manager of ns with its leader election off. Controller
// names are not checked: the test runs several managers in one process.
func newManager(t *testing.T, ns string) manager.Manager {
	return newManagerWith(t, kubetest.Config(t), ns, nil)
}

// newManagerWith is newManager on cfg, with its options changed by
// change if not nil.
func newManagerWith(t *testing.T, cfg *rest.Config, ns string, change func(*manager.Options)) manager.Manager {
	t.Helper()
	opts := manager.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             crconfig.Controller{SkipNameValidation: ptr.To(true)},
	}
	if change != nil {
		change(&opts)
	}
	mgr, err := manager.New(cfg, opts)
	require.NoError(t, err)
	return mgr
}

// tenureYAML configures a replica's elections, with short timings.
func tenureYAML(ns, id string) []config.Source {
	return []config.Source{config.YAML("test.yaml", fmt.Appendf(nil, `
identity: %s
namespace: %s
placement: none
lease_duration: 2s
renew_deadline: 1500ms
retry_period: 200ms
`, id, ns))}
}

// replica is one manager with the ConfigMap controller as a tenure
// component, run by Add.
type replica struct {
	id     string
	mgr    manager.Manager
	runner *framework.Runner
	stop   context.CancelFunc
	done   chan struct{}
}

// leads says whether the replica runs the component's leader work.
func (r *replica) leads(component string) bool {
	for _, st := range r.runner.Status() {
		if st.Name == component {
			return st.Leading
		}
	}
	return false
}

// configMaps is the component whose controller records its reconciles
// of ConfigMaps in rec.
func configMaps(t *testing.T, id string, mgr manager.Manager, rec *reconciles) components.Component {
	t.Helper()
	r := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		term, ok := election.TermFromContext(ctx)
		if !ok || election.Valid(ctx) != nil {
			t.Logf("%s: reconcile of %s outside a term (term in context: %v, valid: %v)", id, req.Name, ok, election.Valid(ctx))
			return reconcile.Result{}, nil // not a term's: nothing is done
		}
		defer rec.begin(leadertest.Act{Who: id, Token: term.FencingToken, What: req.Name})()
		if req.Name == "slow" && rec.slowOnce.CompareAndSwap(false, true) {
			<-ctx.Done() // winds down when the term ends
			time.Sleep(500 * time.Millisecond)
		}
		return reconcile.Result{}, nil
	})
	comp, err := controllerruntime.NewComponent("configmaps", mgr, func(mgr manager.Manager) error {
		return builder.ControllerManagedBy(mgr).For(&corev1.ConfigMap{}).Complete(r)
	})
	require.NoError(t, err)
	return comp
}

func startReplica(t *testing.T, ns, id string, rec *reconciles) *replica {
	t.Helper()
	mgr := newManager(t, ns)
	runner, err := controllerruntime.Add(mgr, tenureYAML(ns, id), configMaps(t, id, mgr, rec))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{id: id, mgr: mgr, runner: runner, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := mgr.Start(ctx); err != nil {
			t.Logf("%s: manager: %v", id, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// TestControllerReconcilesOnlyOnTheLeader: two managers, one ConfigMap
// controller each under one election. Only the leader reconciles; the
// standby's informer is synced before it ever leads; when the leader
// stops, a reconcile under way winds down and returns before the other
// replica starts, which reconciles at once from its warm cache.
func TestControllerReconcilesOnlyOnTheLeader(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	rec := &reconciles{}
	reps := map[string]*replica{}
	for _, id := range []string{"r1", "r2"} {
		reps[id] = startReplica(t, ns, id, rec)
	}
	create := func(name string) {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	for i := range 3 {
		create(fmt.Sprintf("cm-%d", i))
	}
	var first, second string
	require.Eventually(t, func() bool {
		for id, r := range reps {
			if r.leads("configmaps") && rec.by(id) >= 3 {
				first = id
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "the leader reconciles the ConfigMaps: %d reconciles", len(rec.all))
	for id := range reps {
		if id != first {
			second = id
		}
	}
	assert.Zero(t, rec.by(second), "the standby reconciles nothing")
	inf, err := reps[second].mgr.GetCache().GetInformer(ctx, &corev1.ConfigMap{}, cache.BlockUntilSynced(false))
	require.NoError(t, err)
	assert.True(t, inf.HasSynced(), "the standby's ConfigMap informer was started and synced before it led")

	create("slow") // under way when the leader stops
	time.Sleep(200 * time.Millisecond)
	stopped := time.Now()
	reps[first].stop()
	<-reps[first].done
	require.Eventually(t, func() bool { return rec.by(second) >= 4 }, 10*time.Second, 10*time.Millisecond,
		"%s takes over and reconciles what is there", second)
	rec.mu.Lock()
	var took time.Duration
	for _, x := range rec.all {
		if x.Who == second && (took == 0 || x.Start.Sub(stopped) < took) {
			took = x.Start.Sub(stopped)
		}
	}
	rec.mu.Unlock()
	t.Logf("%s reconciled %v after %s was stopped (its slow reconcile wound down for 500ms first)", second, took.Round(time.Millisecond), first)
	rec.check(t)
}

// TestEndedTermsLeaveNoEventHandlers runs a component's leader work for
// many terms on one manager: each term's event handlers are removed from
// the shared informer when it ends (controller-runtime's own sources
// leave theirs: two goroutines per term, and each runs at every event
// for the life of the process).
func TestEndedTermsLeaveNoEventHandlers(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	mgr := newManager(t, ns)
	var (
		mu    sync.Mutex
		terms = map[int]int{} // term → reconciles
		now   int
	)
	comp, err := controllerruntime.NewComponent("handlers", mgr, func(mgr manager.Manager) error {
		return builder.ControllerManagedBy(mgr).For(&corev1.ConfigMap{}).Complete(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			terms[now]++
			return reconcile.Result{}, nil
		}))
	})
	require.NoError(t, err)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-mgr.Elected()
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	runTerm := func(n int) {
		mu.Lock()
		now = n
		mu.Unlock()
		tctx, end := context.WithCancel(ctx)
		ran := make(chan error)
		go func() { ran <- comp.Run(tctx) }()
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return terms[n] > 0 }, 10*time.Second, 5*time.Millisecond, "term %d reconciles", n)
		end()
		require.NoError(t, <-ran)
	}
	runTerm(1)
	settle := func() int {
		time.Sleep(200 * time.Millisecond)
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	for n := 2; n <= 11; n++ {
		runTerm(n)
	}
	after := settle()
	assert.LessOrEqual(t, after, before+4, "goroutines after ten more terms: %d, after the first: %d", after, before)

}

// TestAddPutsEachElectionOnTheManagersHealthz: with Add, the manager's
// /healthz has each election's liveness check, as tenure-<component>.
func TestAddPutsEachElectionOnTheManagersHealthz(t *testing.T) {
	ns := kubetest.Namespace(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	mgr := newManagerWith(t, kubetest.Config(t), ns, func(o *manager.Options) { o.HealthProbeBindAddress = addr })
	runner, err := controllerruntime.Add(mgr, tenureYAML(ns, "r1"), configMaps(t, "r1", mgr, &reconciles{}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return runner.Status()[0].Leading }, 15*time.Second, 10*time.Millisecond)
	for _, path := range []string{"/healthz/tenure-configmaps", "/healthz?verbose"} {
		resp, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		if path != "/healthz/tenure-configmaps" {
			assert.Contains(t, string(body), "[+]tenure-configmaps ok")
		}
	}
}
