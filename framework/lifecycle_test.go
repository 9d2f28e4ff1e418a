package framework_test

// Adversarial tests of the module's lifecycle (issue 15 review): restarts,
// start and stop deadlines, failed construction, shared registries, and
// the window between a given-up term and the end of the process.

import (
	"context"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/proctest"
	"github.com/tenure/tenure/locks"
)

// inChild runs the test named name in a child process with the
// environment variable key set, and returns its output and error: for
// tests whose failure is a panic in a goroutine, which would end the whole
// test binary.
func inChild(t *testing.T, name, key string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), key+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRestartedAppServesItsEndpointAgain stops an app with http.address
// and starts it again, as fx allows: the endpoint serves again, and
// nothing panics. (Run in a child process: the failure is a panic in the
// serving goroutine, "close of closed channel", as the hook's done channel
// and http.Server are made once per app and a Server cannot serve after
// Shutdown.)
func TestRestartedAppServesItsEndpointAgain(t *testing.T) {
	const key = "FRAMEWORK_TEST_RESTART_CHILD"
	if os.Getenv(key) == "" {
		out, err := inChild(t, t.Name(), key)
		require.NoError(t, err, "child:\n%s", out)
		return
	}
	led := newLedgers()
	var r *framework.Runner
	// The app's own MeterProvider keeps the module's, which does not
	// survive a restart (TestRestartedAppKeepsItsMetrics), out of this.
	app := replica(t, "r1", memoryYAML+"http:\n  address: 127.0.0.1:0\n",
		fx.Options(fx.Supply(locks.NewMemorySpace()), fx.Populate(&r),
			fx.Provide(func() metric.MeterProvider { return metricnoop.NewMeterProvider() })),
		recorded(led, "billing"))
	app.RequireStart()
	led.of("billing").Leader(t)
	app.RequireStop()

	app.RequireStart()
	assert.Equal(t, "r1", led.of("billing").Leader(t), "leads again after the restart")
	code, body := proctest.Get(t, "http://"+r.HTTPAddress()+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)
	app.RequireStop()
}

// appOnRegistry is a replica whose component billing exports its metrics
// to reg.
func appOnRegistry(t *testing.T, id string, reg *prometheus.Registry) (*fxtest.App, *ledgers) {
	led := newLedgers()
	return replica(t, id, memoryYAML, fx.Options(
		fx.Supply(locks.NewMemorySpace()),
		fx.Provide(func() prometheus.Registerer { return reg }),
	), recorded(led, "billing")), led
}

// leadsOnRegistry starts app and waits until billing leads and reg shows
// it.
func leadsOnRegistry(t *testing.T, app *fxtest.App, led *ledgers, reg *prometheus.Registry) {
	app.RequireStart()
	led.of("billing").Leader(t)
	require.Eventually(t, func() bool { return leaderGauges(t, reg)["billing"] == 1 }, 5*time.Second, 10*time.Millisecond)
}

// TestRestartedAppKeepsItsMetrics stops an app that exports to its own
// Prometheus registry and starts it again: the elections run again, and
// so do their metrics (a MeterProvider shut down on the first stop would
// export nothing after it).
func TestRestartedAppKeepsItsMetrics(t *testing.T) {
	noLeaks(t)
	reg := prometheus.NewRegistry()
	app, led := appOnRegistry(t, "r1", reg)
	leadsOnRegistry(t, app, led, reg)
	app.RequireStop()

	app.RequireStart()
	led.of("billing").Leader(t)
	assert.Eventually(t, func() bool { return leaderGauges(t, reg)["billing"] == 1 }, 3*time.Second, 10*time.Millisecond,
		"tenure_election_leader after the restart: %v", leaderGauges(t, reg))
	app.RequireStop()
}

// TestTwoAppsOnOneRegistry runs two replicas in one process that share
// the app's Prometheus registry (as two apps on
// prometheus.DefaultRegisterer do). Each election's metrics carry only the
// election's name, so the two replicas' series would collide and every
// gather fail (/metrics answering 500): the second start fails instead,
// saying why, and the first app's metrics still gather.
func TestTwoAppsOnOneRegistry(t *testing.T) {
	noLeaks(t)
	reg := prometheus.NewRegistry()
	space := locks.NewMemorySpace()
	led := newLedgers()
	where := fx.Options(fx.Supply(space), fx.Provide(func() prometheus.Registerer { return reg }))
	r1 := replica(t, "r1", memoryYAML, where, recorded(led, "billing"))
	r2 := replica(t, "r2", memoryYAML, where, recorded(led, "billing"))
	r1.RequireStart()
	err := r2.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another running tenure module exports its metrics to the app's prometheus.Registerer")
	led.of("billing").Leader(t)
	_, err = reg.Gather()
	assert.NoError(t, err)
	r1.RequireStop()
}

// TestStartDeadlineDuringTheAccessCheckStartsNothing: the app's start
// deadline passes while the module checks its access (here: a slow API
// server). fx then reports the start as failed, and the module must not
// start its elections afterwards: nobody would stop them, and the lease
// would be held by a replica that reported it did not start.
func TestStartDeadlineDuringTheAccessCheckStartsNothing(t *testing.T) {
	cs := fakeCluster("billing")
	slow := make(chan struct{})
	defer close(slow)
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		select { // the fake ignores the request's context
		case <-slow:
		case <-time.After(300 * time.Millisecond):
		}
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		review.Status.Allowed = true
		return true, review, nil
	})
	led := newLedgers()
	app := fx.New(
		framework.Module,
		framework.ConfigYAML("t", []byte("identity: r1\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\n")),
		withClient(cs),
		fx.Supply(quiet),
		fx.NopLogger,
		supply(recorded(led, "billing")),
	)
	require.NoError(t, app.Err())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, app.Start(ctx), context.DeadlineExceeded)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelStop()
	_ = app.Stop(stopCtx)
	assert.Never(t, func() bool { return len(led.of("billing").Leaders()) > 0 }, 3*time.Second, 20*time.Millisecond,
		"leads after a start that failed and a stop")
	lease, err := cs.CoordinationV1().Leases("default").Get(context.Background(), "billing", metav1.GetOptions{})
	require.NoError(t, err)
	if h := lease.Spec.HolderIdentity; h != nil {
		assert.Empty(t, *h, "no lease held after a failed start")
	}
	// The start that went on past its deadline left fx's lifecycle
	// started: a second stop ends what it started.
	_ = app.Stop(stopCtx)
}

// TestFailedConstructionLeavesNothingRunning: a module whose tracing is on
// fails to build (a bad component name): fx.New returns the error, the
// program never starts or stops the app, and nothing of the module's may
// run on. The module builds its TracerProvider, whose batcher runs a
// goroutine, before it checks the components.
func TestFailedConstructionLeavesNothingRunning(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	app := fx.New(
		framework.Module,
		framework.ConfigYAML("t", []byte(memoryYAML+"tracing:\n  enabled: true\n  exporter: stdout\n")),
		fx.Supply(quiet),
		fx.NopLogger,
		supply(components.New("Bad_Name", nil)),
	)
	require.ErrorContains(t, app.Err(), `component name "Bad_Name" must be a DNS label`)
	goleak.VerifyNone(t, opt)
}

// deniedCluster is a fake cluster whose access reviews deny everything.
func deniedCluster(names ...string) kubernetes.Interface {
	cs := fakeCluster(names...)
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		review.Status.Allowed = false
		return true, review, nil
	})
	return cs
}

// TestStartFailuresLeaveNothingRunning: a start that fails (access denied;
// http.address taken) leaves no goroutine of the module running and no
// lease held, with events and a tracer provider of the module's own.
func TestStartFailuresLeaveNothingRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	for name, tc := range map[string]struct {
		cs   kubernetes.Interface
		yaml string
		want string
	}{
		"access denied":     {deniedCluster("billing"), "", "missing RBAC permissions"},
		"http.address used": {fakeCluster("billing"), "http:\n  address: " + taken.Addr().String() + "\n", "http.address: listen tcp"},
	} {
		t.Run(name, func(t *testing.T) {
			noLeaks(t)
			led := newLedgers()
			app := fx.New(
				framework.Module,
				framework.ConfigYAML("t", []byte("identity: r1\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\nevents: true\ntracing:\n  enabled: true\n  exporter: stdout\n"+tc.yaml)),
				withClient(tc.cs),
				fx.Supply(quiet),
				fx.NopLogger,
				supply(recorded(led, "billing")),
			)
			require.NoError(t, app.Err())
			require.ErrorContains(t, app.Start(context.Background()), tc.want)
			assert.Empty(t, led.of("billing").Leaders())
			lease, err := tc.cs.CoordinationV1().Leases("default").Get(context.Background(), "billing", metav1.GetOptions{})
			require.NoError(t, err)
			if h := lease.Spec.HolderIdentity; h != nil {
				assert.Empty(t, *h)
			}
		})
	}
}

// TestAppWithItsOwnConfig: an app that loads tenure's configuration for
// its own use and provides the *config.Config still builds with the
// module (whose own configuration is private).
func TestAppWithItsOwnConfig(t *testing.T) {
	cfg, err := config.Load(config.YAML("app", []byte("lock: memory\n")))
	require.NoError(t, err)
	app := fx.New(framework.Module, framework.ConfigYAML("t", []byte("lock: memory\n")), fx.Supply(quiet, cfg), fx.NopLogger)
	assert.NoError(t, app.Err())
}

// stuckWork is a component whose work ignores cancellation until released,
// recorded in led.
func stuckWork(led *ledgers, name, id string) (components.Component, func()) {
	release := make(chan struct{})
	var once sync.Once
	return components.New(name, func(ctx context.Context) error {
		led.of(name).Begin(id, 0)
		<-release // ignores ctx
		led.of(name).End(id)
		return nil
	}), func() { once.Do(func() { close(release) }) }
}

// blackHole accepts connections and never answers, as a collector behind
// a partition; it returns the address.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// TestGivenUpTermIsNotTakenOverWhileTheAppStops: r1's leader work ignores
// cancellation, so its stop gives the term up after shutdown_timeout and
// leaves the lease to expire, counting on the process to exit first. But
// fx.App.Run exits only once the stop is over, and the stop goes on with
// the hooks that run after the elections': here the module's own flush
// of spans to an OTLP collector that does not answer, which takes until
// the stop's deadline (a minute, with the documented fx.StopTimeout).
// Meanwhile the lease expires and r2 leads while r1's work still runs:
// two leaders at once.
func TestGivenUpTermIsNotTakenOverWhileTheAppStops(t *testing.T) {
	collector := blackHole(t)
	space := locks.NewMemorySpace()
	led := newLedgers()
	stuck, release := stuckWork(led, "stuck", "r1")
	defer release()
	timings := "lease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\nlock: memory\n"
	r1 := replica(t, "r1", timings+"shutdown_timeout: 300ms\ntracing:\n  enabled: true\n  protocol: http/protobuf\n  insecure: true\n  endpoint: http://"+collector+"\n",
		fx.Supply(space), stuck)
	r1.RequireStart()
	require.Equal(t, "r1", led.of("stuck").Leader(t))
	r2 := replica(t, "r2", timings, fx.Supply(space), recorded(led, "stuck"))
	r2.RequireStart()
	defer r2.RequireStop()

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		stopped <- r1.Stop(ctx)
	}()
	twoLeaders := make(chan struct{})
	go func() {
		defer close(twoLeaders)
		for len(led.of("stuck").Leaders()) < 2 {
			select {
			case <-stopped:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	select {
	case err := <-stopped:
		t.Logf("r1 stopped: %v", err)
	case <-twoLeaders:
		t.Errorf("r2 leads while r1's given-up work still runs and r1's app is still stopping: %v", led.of("stuck").Leaders())
		<-stopped
	}
}

// TestReleaseSpansReachAProviderShutDownFromItsConstructor: the app's
// TracerProvider gets every span, the release included, when the app
// shuts it down from a hook its constructor appends, as the package doc
// says. (fx runs a module's invokes before the app's own, so a hook the
// app appends in an fx.Invoke stops before the elections: the release's
// span would be lost.)
func TestReleaseSpansReachAProviderShutDownFromItsConstructor(t *testing.T) {
	noLeaks(t)
	spans := &keptSpans{}
	led := newLedgers()
	app := replica(t, "r1", memoryYAML+onlyComponents, fx.Options(
		fx.Supply(locks.NewMemorySpace()),
		fx.Provide(func(lc fx.Lifecycle) trace.TracerProvider {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			lc.Append(fx.StopHook(tp.Shutdown))
			return tp
		}),
	), recorded(led, "billing"))
	app.RequireStart()
	led.of("billing").Leader(t)
	app.RequireStop()
	names := spans.names()
	require.NotEmpty(t, names["acquire lease"], "spans: %v", names)
	assert.Equal(t, 1, names["release lease"], "spans: %v", names)
	assert.Equal(t, 1, names["lead billing"], "spans: %v", names)
}

// keptSpans is a span exporter that keeps the names of what it exports,
// also after its shutdown (tracetest's InMemoryExporter forgets them).
type keptSpans struct {
	mu sync.Mutex
	by map[string]int
}

func (k *keptSpans) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.by == nil {
		k.by = map[string]int{}
	}
	for _, s := range spans {
		k.by[s.Name()]++
	}
	return nil
}

func (k *keptSpans) Shutdown(context.Context) error { return nil }

func (k *keptSpans) names() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.by)
}

// TestRestartedAppKeepsItsSpans stops an app that sends spans to an OTLP
// collector with the module's own TracerProvider, and starts it again: the
// second term's spans reach the collector too. The module shuts its
// TracerProvider down on the first stop, so after a restart every span is
// dropped.
func TestRestartedAppKeepsItsSpans(t *testing.T) {
	recv, endpoint := startReceiver(t)
	led := newLedgers()
	app := replica(t, "r1", memoryYAML+onlyComponents+"tracing:\n  enabled: true\n  insecure: true\n  endpoint: "+endpoint+"\n",
		fx.Supply(locks.NewMemorySpace()), recorded(led, "billing"))
	releases := func() int {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		n := 0
		for _, s := range recv.spans {
			if s.name == "release lease" {
				n++
			}
		}
		return n
	}
	app.RequireStart()
	led.of("billing").Leader(t)
	app.RequireStop()
	require.Equal(t, 1, releases())

	app.RequireStart()
	led.of("billing").Leader(t)
	app.RequireStop()
	assert.Equal(t, 2, releases(), "the second term's release reached the collector")
}

// hungGets wraps a lock so that its reads hang, ignoring their context,
// once hang is closed, until unhang is.
type hungGets struct {
	locks.Lock
	hang, unhang chan struct{}
	hung         chan struct{} // receives when a read hangs
}

func (l hungGets) Get(ctx context.Context) (locks.Observed, error) {
	select {
	case <-l.hang:
		select {
		case l.hung <- struct{}{}:
		default:
		}
		<-l.unhang
		return locks.Observed{}, context.Canceled
	default:
		return l.Lock.Get(ctx)
	}
}

// TestStopReturnsDespiteAHungReadWhileCampaigning: a standby's read of its
// lock hangs, ignoring cancellation (a custom lock, or a WrapLocks
// wrapper). The stop gives up after shutdown_timeout, as it does for a
// hung renewal, and returns. It waits instead for the election loop, which
// waits for the read, for as long as the read hangs.
func TestStopReturnsDespiteAHungReadWhileCampaigning(t *testing.T) {
	space := locks.NewMemorySpace()
	led := newLedgers()
	leader := replica(t, "r1", memoryYAML, fx.Supply(space), recorded(led, "billing"))
	leader.RequireStart()
	defer leader.RequireStop()
	led.of("billing").Leader(t)

	l := hungGets{hang: make(chan struct{}), unhang: make(chan struct{}), hung: make(chan struct{}, 1)}
	defer close(l.unhang)
	standby := fx.New(
		framework.Module,
		framework.ConfigYAML("t", []byte(memoryYAML+"identity: r2\nshutdown_timeout: 200ms\n")),
		fx.Supply(space, quiet),
		fx.NopLogger,
		framework.WrapLocks(func(_ string, inner locks.Lock) locks.Lock { l.Lock = inner; return l }),
		supply(recorded(led, "billing")),
	)
	require.NoError(t, standby.Start(context.Background()))
	close(l.hang)
	select {
	case <-l.hung:
	case <-time.After(5 * time.Second):
		t.Fatal("no read hung")
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		stopped <- standby.Stop(ctx)
	}()
	select {
	case err := <-stopped:
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "the stop returned only at the app's stop deadline")
	case <-time.After(5 * time.Second):
		t.Fatal("the stop hangs")
	}
}

// TestAppsOneAfterAnotherOnOneRegistry builds, runs and stops an app on a
// registry, then another on the same registry (as tests on
// prometheus.DefaultRegisterer do): the registry gathers throughout, and
// shows the running app's metrics.
func TestAppsOneAfterAnotherOnOneRegistry(t *testing.T) {
	noLeaks(t)
	reg := prometheus.NewRegistry()
	for _, id := range []string{"r1", "r2"} {
		app, led := appOnRegistry(t, id, reg)
		leadsOnRegistry(t, app, led, reg)
		app.RequireStop()
		_, err := reg.Gather()
		require.NoError(t, err, "after %s stopped", id)
	}
}

// TestHealthFailsWhileWorkOutlivesItsTerm: r1's leader work ignores
// cancellation; r1 is cut off from its lock, its term ends at the renew
// deadline, and r2 takes over once the lease expires. r1's work still
// runs: two leaders act, which only ending r1's process can stop. r1's
// health check fails while r1 is cut off; once the network heals it
// passes again, though r1's work still outlives its term, and a liveness
// probe never restarts r1.
func TestHealthFailsWhileWorkOutlivesItsTerm(t *testing.T) {
	space := locks.NewMemorySpace()
	led := newLedgers()
	cut := &cutLocks{}
	stuck, release := stuckWork(led, "billing", "r1")
	defer release()
	var r1 *framework.Runner
	app1 := replica(t, "r1", memoryYAML+"http:\n  healthz_margin: 100ms\n",
		fx.Options(fx.Supply(space), framework.WrapLocks(cut.wrap), fx.Populate(&r1)), stuck)
	app1.RequireStart()
	require.Equal(t, "r1", led.of("billing").Leader(t))
	app2 := replica(t, "r2", memoryYAML, fx.Supply(space), recorded(led, "billing"))
	app2.RequireStart()
	defer app2.RequireStop()
	check := r1.HealthChecks()["billing"]

	cut.of("billing").Store(true)
	require.Eventually(t, func() bool { return check(nil) != nil }, 5*time.Second, 10*time.Millisecond, "fails while cut off")
	require.Eventually(t, func() bool { return len(led.of("billing").Leaders()) == 2 }, 10*time.Second, 10*time.Millisecond,
		"r2 takes over; r1's work ignores its cancellation")
	cut.of("billing").Store(false)
	assert.Never(t, func() bool { return check(nil) == nil }, 2*time.Second, 10*time.Millisecond,
		"r1 passes its health check while its work runs past its term, beside r2's")
	release()
	app1.RequireStop()
}

// TestHealthFailsWhileWorkOutlivesALostTerm: r1's leader work ignores
// cancellation, and r1 loses its lock to another writer (here: the record
// is replaced by a released one, as an operator's edit or a
// misconfigured replica would). r2 takes over while r1's work still
// runs: two leaders, which only ending r1's process can stop. r1's health
// check should say so, so that a liveness probe restarts r1; it passes,
// since r1 was not cut off from its lock.
func TestHealthFailsWhileWorkOutlivesALostTerm(t *testing.T) {
	space := locks.NewMemorySpace()
	led := newLedgers()
	stuck, release := stuckWork(led, "billing", "r1")
	defer release()
	var r1 *framework.Runner
	app1 := replica(t, "r1", memoryYAML+"http:\n  healthz_margin: 100ms\n",
		fx.Options(fx.Supply(space), fx.Populate(&r1)), stuck)
	app1.RequireStart()
	require.Equal(t, "r1", led.of("billing").Leader(t))
	app2 := replica(t, "r2", memoryYAML, fx.Supply(space), recorded(led, "billing"))
	app2.RequireStart()
	defer app2.RequireStop()
	check := r1.HealthChecks()["billing"]

	now := time.Now()
	raw, err := locks.Record{LeaseDuration: time.Second, AcquireTime: now, RenewTime: now, LeaderTransitions: 5}.Encode()
	require.NoError(t, err)
	space.Lock("default/billing").Put(raw)
	require.Eventually(t, func() bool { return len(led.of("billing").Leaders()) == 2 }, 10*time.Second, 10*time.Millisecond,
		"r2 takes over; r1's work ignores its cancellation")
	assert.Eventually(t, func() bool { return check(nil) != nil }, 3*time.Second, 10*time.Millisecond,
		"r1's work runs past its term, beside r2's, and r1 passes its health check")
	release()
	app1.RequireStop()
}
