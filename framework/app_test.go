package framework_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/proctest"
	"github.com/tenure/tenure/locks"
)

func newLogger(w *framework.LockedBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// cutLocks wraps each component's lock so that a test can cut it off: its
// requests then fail.
type cutLocks struct {
	mu  sync.Mutex
	cut map[string]*atomic.Bool
}

func (c *cutLocks) of(component string) *atomic.Bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut == nil {
		c.cut = map[string]*atomic.Bool{}
	}
	if c.cut[component] == nil {
		c.cut[component] = &atomic.Bool{}
	}
	return c.cut[component]
}

func (c *cutLocks) wrap(component string, l locks.Lock) locks.Lock {
	return cutLock{Lock: l, cut: c.of(component)}
}

type cutLock struct {
	locks.Lock
	cut *atomic.Bool
}

var errCut = errors.New("cut off")

func (l cutLock) Get(ctx context.Context) (locks.Observed, error) {
	if l.cut.Load() {
		return locks.Observed{}, errCut
	}
	return l.Lock.Get(ctx)
}

func (l cutLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	if l.cut.Load() {
		return locks.Observed{}, errCut
	}
	return l.Lock.Create(ctx, r)
}

func (l cutLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if l.cut.Load() {
		return locks.Observed{}, errCut
	}
	return l.Lock.Update(ctx, version, r)
}

// fakeCluster is a fake clientset whose access reviews allow everything,
// with a free Lease per name in "default": a missing lock is taken only
// after one lease (see package election), and the fake gives an object
// no resourceVersion of its own (nor checks one: fine for one replica).
func fakeCluster(names ...string) *fake.Clientset {
	var objs []runtime.Object
	for _, n := range names {
		objs = append(objs, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: n, ResourceVersion: "1"}})
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		review.Status.Allowed = true
		return true, review, nil
	})
	return cs
}

// leaderGauges gathers tenure_election_leader from g, by election.
func leaderGauges(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, fam := range families {
		if fam.GetName() != "tenure_election_leader" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenure_election_name" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// TestJoinsAnAppWithItsOwnClientAndTelemetry runs the module in an app
// that provides its own Kubernetes client, logger, Prometheus registry and
// tracer provider: the module uses each, the app's own constructors get
// the app's client, and the app stops cleanly.
func TestJoinsAnAppWithItsOwnClientAndTelemetry(t *testing.T) {
	noLeaks(t)
	cs := fakeCluster("billing", "reports")
	reg := prometheus.NewRegistry()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	var logs framework.LockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	led := newLedgers()
	var got kubernetes.Interface
	var r *framework.Runner
	app := fxtest.New(t,
		framework.Module,
		framework.ConfigYAML("t", []byte("identity: r1\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\ntracing:\n  enabled: true\n")),
		fx.Provide(
			func() kubernetes.Interface { return cs },
			func() prometheus.Registerer { return reg },
			func() trace.TracerProvider { return tp },
		),
		fx.Supply(newLogger(&logs)),
		framework.Component(func(c kubernetes.Interface) components.Component {
			got = c
			return recorded(led, "billing")
		}),
		supply(recorded(led, "reports")),
		fx.Populate(&r),
		fx.NopLogger,
	)
	assert.Same(t, cs, got, "the app's constructors get the app's client")
	app.RequireStart()
	led.of("billing").Leader(t)
	led.of("reports").Leader(t)
	require.Eventually(t, func() bool {
		g := leaderGauges(t, reg)
		return g["billing"] == 1 && g["reports"] == 1
	}, 5*time.Second, 10*time.Millisecond, "the leader gauges are on the app's registry")
	app.RequireStop()

	for _, n := range []string{"billing", "reports"} {
		lease, err := cs.CoordinationV1().Leases("default").Get(context.Background(), n, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, lease.Spec.HolderIdentity, "%s released on the app's client", n)
	}
	names := map[string]int{}
	for _, s := range spans.GetSpans() {
		names[s.Name]++
	}
	assert.Equal(t, 1, names["lead billing"], "spans went to the app's tracer provider: %v", names)
	assert.Equal(t, 1, names["lead reports"])
	assert.Equal(t, 2, names["release lease"])
	assert.Contains(t, logs.String(), "starting elections", "logs went to the app's logger")
	assert.Contains(t, logs.String(), "tracing section ignored")
	require.NoError(t, tp.Shutdown(context.Background()))
}

// TestUsesTheAppsMeterProvider: the app's MeterProvider gets the metrics,
// and the module builds no Prometheus endpoint of its own.
func TestUsesTheAppsMeterProvider(t *testing.T) {
	noLeaks(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	led := newLedgers()
	app := replica(t, "r1", memoryYAML, fx.Options(
		fx.Supply(fx.Annotate(mp, fx.As(new(metric.MeterProvider)))),
		fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }), // unused: the MeterProvider wins
	), recorded(led, "billing"))
	app.RequireStart()
	led.of("billing").Leader(t)
	require.Eventually(t, func() bool {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "tenure.election.leader" {
					for _, p := range g.DataPoints { // billing's, and the placement coordinator's
						if v, _ := p.Attributes.Value("tenure.election.name"); v.AsString() == "billing" {
							return p.Value == 1
						}
					}
				}
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	app.RequireStop()
	require.NoError(t, mp.Shutdown(context.Background()))
}

// TestAppWithItsOwnClientOnMemoryLocks: an app that provides a client for
// its own use starts with the module, whose locks are all in memory.
func TestAppWithItsOwnClientOnMemoryLocks(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	app := replica(t, "r1", memoryYAML, withClient(fake.NewClientset()), recorded(led, "billing"))
	app.RequireStart()
	led.of("billing").Leader(t)
	app.RequireStop()
}

// TestEndpoints serves the endpoints of a replica on memory locks, one of
// them cut off from its lock: /metrics has tenure's and the Go runtime's
// metrics, and /healthz answers as Kubernetes components do.
func TestEndpoints(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	cut := &cutLocks{}
	var r *framework.Runner
	app := replica(t, "r1", memoryYAML+"http:\n  address: 127.0.0.1:0\n  healthz_margin: 100ms\n", fx.Options(
		fx.Supply(locks.NewMemorySpace()), framework.WrapLocks(cut.wrap), fx.Populate(&r),
	), recorded(led, "billing"), recorded(led, "reports"))
	app.RequireStart()
	led.of("billing").Leader(t)
	led.of("reports").Leader(t)
	get := func(path string) (int, string) { return proctest.Get(t, "http://"+r.HTTPAddress()+path) }

	_, metrics := get("/metrics")
	for _, want := range []string{"tenure_election_leader{", "go_goroutines ", "process_cpu_seconds_total "} {
		assert.Contains(t, metrics, want)
	}
	for path, want := range map[string]string{
		"/healthz":         "ok",
		"/healthz?verbose": "[+]billing ok\n[+]reports ok\nhealthz check passed\n",
		"/healthz/billing": "ok",
		"/readyz":          "ok",
	} {
		code, body := get(path)
		assert.Equal(t, http.StatusOK, code, path)
		assert.Equal(t, want, body, path)
	}
	code, body := get("/healthz/nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "no component \"nope\": known are billing, reports\n", body)

	cut.of("reports").Store(true)
	require.Eventually(t, func() bool { code, _ := get("/healthz"); return code == http.StatusInternalServerError },
		10*time.Second, 10*time.Millisecond, "fails past renew_deadline + healthz_margin")
	for _, path := range []string{"/healthz", "/healthz?verbose"} {
		code, body = get(path)
		assert.Equal(t, http.StatusInternalServerError, code)
		assert.Regexp(t, `^\[\+\]billing ok\n\[-\]reports failed: election reports: no successful call to memory/default/reports for .*\nhealthz check failed\n$`, body)
	}
	code, body = get("/healthz/reports")
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.True(t, strings.HasPrefix(body, "internal server error: election reports: no successful call"), body)
	checks := r.HealthChecks()
	assert.ElementsMatch(t, []string{"billing", "reports"}, slices.Collect(maps.Keys(checks)))
	assert.NoError(t, checks["billing"](nil))
	assert.ErrorContains(t, checks["reports"](nil), "no successful call")
	app.RequireStop()
}
