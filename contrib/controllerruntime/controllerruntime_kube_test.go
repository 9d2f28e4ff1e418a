package controllerruntime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tenure/tenure/contrib/controllerruntime"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// reconciles records every reconcile: who, in which term, when.
type reconciles struct {
	mu       sync.Mutex
	all      []reconciled
	slowOnce atomic.Bool // the first reconcile of "slow" winds down with its term
}

type reconciled struct {
	who        string
	term       int32
	name       string
	start, end time.Time
}

// begin records a reconcile that starts now; end, when it returns.
func (r *reconciles) begin(x reconciled) (end func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x.start = time.Now()
	r.all = append(r.all, x)
	i := len(r.all) - 1
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.all[i].end = time.Now()
	}
}

func (r *reconciles) by(who string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.all {
		if x.who == who {
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
	whoOf := map[int32]string{}
	for _, a := range r.all {
		if w, ok := whoOf[a.term]; ok && w != a.who {
			t.Errorf("term %d reconciled by %s and %s", a.term, w, a.who)
		}
		whoOf[a.term] = a.who
		end := a.end
		if end.IsZero() {
			end = time.Now() // still running
		}
		for _, b := range r.all {
			if a.term < b.term && b.start.Before(end) {
				t.Errorf("%s/%d reconciled %s until %s, after %s/%d began reconciling %s at %s",
					a.who, a.term, a.name, end.Format("15:04:05.000"), b.who, b.term, b.name, b.start.Format("15:04:05.000"))
			}
		}
	}
}

// replica is one manager with the ConfigMap controller as a tenure
// component under its own election.
type replica struct {
	id     string
	stop   context.CancelFunc
	done   chan struct{}
	leader *election.Election
}

func startReplica(t *testing.T, ns, id string, rec *reconciles) *replica {
	t.Helper()
	cfg := kubetest.Config(t)
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	require.NoError(t, err)
	comp, err := controllerruntime.NewComponent("configmaps", controller.Options{
		Reconciler: reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			term, ok := election.TermFromContext(ctx)
			if !ok || election.Valid(ctx) != nil {
				t.Logf("%s: reconcile of %s outside a term (term in context: %v, valid: %v)", id, req.Name, ok, election.Valid(ctx))
				return reconcile.Result{}, nil // not a term's: nothing is done
			}
			defer rec.begin(reconciled{who: id, term: term.FencingToken, name: req.Name})()
			if req.Name == "slow" && rec.slowOnce.CompareAndSwap(false, true) {
				<-ctx.Done() // winds down when the term ends
				time.Sleep(500 * time.Millisecond)
			}
			return reconcile.Result{}, nil
		}),
	}, func(c controller.Controller) error {
		return c.Watch(source.Kind(mgr.GetCache(), &corev1.ConfigMap{}, &handler.TypedEnqueueRequestForObject[*corev1.ConfigMap]{}))
	})
	require.NoError(t, err)
	lock, err := locks.NewLeaseLock(kubetest.Client(t).CoordinationV1(), ns, "configmaps", locks.WithIdentity(id))
	require.NoError(t, err)
	e, err := election.New(election.Config{
		Lock: lock, LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
		OnStartedLeading: func(ctx context.Context) {
			if err := comp.Run(ctx); err != nil {
				t.Logf("%s: %v", id, err)
			}
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{id: id, stop: cancel, done: make(chan struct{}), leader: e}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := mgr.Start(ctx); err != nil {
			t.Logf("%s: manager: %v", id, err)
		}
	})
	wg.Go(func() { _ = e.Run(ctx) })
	go func() { wg.Wait(); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// TestControllerReconcilesOnlyOnTheLeader: two managers, one ConfigMap
// controller each under one election. Only the leader reconciles; when it
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
			if r.leader.IsLeader() && rec.by(id) >= 3 {
				first = id
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "the leader reconciles the ConfigMaps: r1 leads %v, r2 leads %v, %d reconciles", reps["r1"].leader.IsLeader(), reps["r2"].leader.IsLeader(), len(rec.all))
	for id := range reps {
		if id != first {
			second = id
		}
	}
	assert.Zero(t, rec.by(second), "the standby reconciles nothing")

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
		if x.who == second && (took == 0 || x.start.Sub(stopped) < took) {
			took = x.start.Sub(stopped)
		}
	}
	rec.mu.Unlock()
	t.Logf("%s reconciled %v after %s was stopped (its slow reconcile wound down for 500ms first)", second, took.Round(time.Millisecond), first)
	rec.check(t)
}
