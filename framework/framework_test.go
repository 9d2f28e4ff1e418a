package framework_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/leadertest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fast timings on memory locks.
// onlyComponents keeps the placement coordinator's election out of a test
// that counts the spans of its components' elections.
const onlyComponents = "placement: none\n"

const memoryYAML = `
lock: memory
lease_duration: 2s
renew_deadline: 1500ms
retry_period: 100ms
failure_backoff: 50ms
failure_backoff_max: 200ms
`

// noLeaks fails t if goroutines started during t outlive it: the
// goroutines running before it are taken now, and checked after every
// other cleanup (cleanups run last first).
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// ledgers records each component's terms.
type ledgers struct {
	mu sync.Mutex
	by map[string]*leadertest.Ledger
}

func newLedgers() *ledgers { return &ledgers{by: map[string]*leadertest.Ledger{}} }

func (l *ledgers) of(name string) *leadertest.Ledger {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by[name] == nil {
		l.by[name] = leadertest.New()
	}
	return l.by[name]
}

// recorded is a component that records its terms and runs until its
// context is done.
func recorded(led *ledgers, name string) components.Component {
	return components.New(name, func(ctx context.Context) error {
		term, ok := election.TermFromContext(ctx)
		if !ok {
			return errors.New("no term in the context")
		}
		led.of(name).Begin(term.Identity, term.FencingToken)
		<-ctx.Done()
		led.of(name).End(term.Identity)
		return ctx.Err()
	})
}

func supply(c components.Component) fx.Option {
	return framework.Component(func() components.Component { return c })
}

// withClient provides cs to the app, as an app with a client of its own
// does.
func withClient(cs kubernetes.Interface) fx.Option {
	return fx.Provide(func() kubernetes.Interface { return cs })
}

// replica makes an app with the identity id; where is where its locks
// are: fx.Supply(a *locks.MemorySpace) or withClient.
func replica(t *testing.T, id, yaml string, where fx.Option, comps ...components.Component) *fxtest.App {
	opts := []fx.Option{
		framework.Module,
		framework.ConfigYAML("test.yaml", []byte(yaml+"identity: "+id+"\n")),
		where,
		fx.Supply(quiet),
		fx.NopLogger,
	}
	for _, c := range comps {
		opts = append(opts, supply(c))
	}
	return fxtest.New(t, opts...)
}

func TestReplicasShareComponentsWithoutOverlap(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	space := locks.NewMemorySpace()
	names := []string{"billing", "reports", "mailer", "indexer", "janitor"}
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2", "r3"} {
		var comps []components.Component
		for _, n := range names {
			comps = append(comps, recorded(led, n))
		}
		apps[id] = replica(t, id, memoryYAML, fx.Supply(space), comps...)
		apps[id].RequireStart()
	}
	for len(apps) > 0 {
		stopBusiest(t, apps, led, names)
	}
	for _, n := range names {
		led.of(n).Check(t)
		obs, err := space.Lock("default/" + n).Get(context.Background())
		require.NoError(t, err)
		assert.Empty(t, obs.Record.HolderIdentity, "%s released on stop", n)
	}
}

// stopBusiest stops the replica of apps that leads the most of the named
// components, and checks that each component it led moves to another
// replica within a second, or has no leader if none is left.
func stopBusiest(t *testing.T, apps map[string]*fxtest.App, led *ledgers, names []string) {
	t.Helper()
	leaderOf := map[string]string{}
	count := map[string]int{}
	for _, n := range names {
		leaderOf[n] = led.of(n).Leader(t)
		count[leaderOf[n]]++
	}
	var busiest string
	for id := range apps {
		if busiest == "" || count[id] > count[busiest] {
			busiest = id
		}
	}
	stopped := time.Now()
	apps[busiest].RequireStop()
	delete(apps, busiest)
	for _, n := range names {
		if leaderOf[n] != busiest {
			continue
		}
		if len(apps) == 0 {
			assert.Empty(t, led.of(n).Leaders(), "%s has no leader left", n)
			continue
		}
		next := led.of(n).Leader(t)
		took := led.of(n).Started(next).Sub(stopped)
		assert.Less(t, took, time.Second, "%s moved from %s to %s within a second (took %v)", n, busiest, next, took)
	}
}

func TestFailingWorkIsRetriedAndOthersCarryOn(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	var errRuns, panicRuns, earlyRuns atomic.Int32
	failing := components.New("failing", func(ctx context.Context) error {
		errRuns.Add(1)
		return errors.New("database gone")
	})
	panicking := components.New("panicking", func(ctx context.Context) error {
		panicRuns.Add(1)
		panic("bug")
	})
	early := components.New("early", func(ctx context.Context) error {
		earlyRuns.Add(1)
		return nil
	})
	app := replica(t, "r1", memoryYAML, fx.Supply(locks.NewMemorySpace()), failing, panicking, early, recorded(led, "steady"))
	app.RequireStart()
	require.Eventually(t, func() bool {
		return errRuns.Load() >= 3 && panicRuns.Load() >= 3 && earlyRuns.Load() >= 3
	}, 10*time.Second, 5*time.Millisecond, "each failing component campaigns again")
	assert.Equal(t, []string{"r1"}, led.of("steady").Leaders(), "the steady component kept leading")
	assert.Equal(t, 0, led.of("steady").Ended())
	app.RequireStop()
}

func TestFailureCanStopTheProgram(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	failing := components.New("failing", func(ctx context.Context) error {
		<-time.After(100 * time.Millisecond)
		return errors.New("fatal")
	})
	app := replica(t, "r1", memoryYAML+"on_failure: exit\n", fx.Supply(locks.NewMemorySpace()), failing, recorded(led, "steady"))
	app.RequireStart()
	select {
	case sig := <-app.Wait():
		assert.Equal(t, 1, sig.ExitCode)
	case <-time.After(10 * time.Second):
		t.Fatal("the program was not asked to stop")
	}
	app.RequireStop()
	assert.Empty(t, led.of("steady").Leaders(), "the other components stopped gracefully")
}

// TestShutdownTimeoutKeepsStuckWorksTerm: work that does not return
// within shutdown_timeout makes the stop fail, naming it, without waiting
// longer; its term goes on (a term lasts until its work has returned), so
// its lease is renewed while it runs, and no other replica can take over
// while this process lives. Once the work returns the lease is released
// and nothing of tenure's is left running. (Before, the term was given up
// unrenewed, and a standby took the lease a lease later while the work
// still ran in a process whose stop was not over.)
func TestShutdownTimeoutKeepsStuckWorksTerm(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	returned := make(chan struct{})
	stuck := components.New("stuck", func(ctx context.Context) error {
		defer close(returned)
		<-release // ignores ctx
		return nil
	})
	space := locks.NewMemorySpace()
	lock := space.Lock("default/stuck")
	app := replica(t, "r1", memoryYAML+"shutdown_timeout: 200ms\n", fx.Supply(space), stuck)
	app.RequireStart()
	require.Eventually(t, func() bool {
		obs, _ := lock.Get(context.Background())
		return obs.Record.HolderIdentity == "r1"
	}, 5*time.Second, 5*time.Millisecond)
	err := app.Stop(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "leader work of stuck did not return within shutdown_timeout 200ms")
	assert.Contains(t, err.Error(), "their leases are renewed until then")

	before, err := lock.Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "r1", before.Record.HolderIdentity, "never released under running work")
	require.Eventually(t, func() bool {
		now, err := lock.Get(context.Background())
		return err == nil && now.Record.HolderIdentity == "r1" && now.Record.RenewTime.After(before.Record.RenewTime)
	}, 5*time.Second, 10*time.Millisecond, "the lease of work still running is renewed after the stop")

	close(release)
	<-returned
	require.Eventually(t, func() bool {
		obs, err := lock.Get(context.Background())
		return err == nil && obs.Record.HolderIdentity == ""
	}, 5*time.Second, 5*time.Millisecond, "released once the work returned")
}

func TestDisabledComponentDoesNotCampaign(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	space := locks.NewMemorySpace()
	app := replica(t, "r1", memoryYAML+"components:\n  off:\n    enabled: false\n", fx.Supply(space), recorded(led, "off"), recorded(led, "on"))
	app.RequireStart()
	led.of("on").Leader(t)
	assert.Empty(t, led.of("off").Leaders())
	app.RequireStop()
}

func TestIdentityIsUniquePerProcess(t *testing.T) {
	t.Setenv("POD_NAME", "web-7d9f")
	var ids []string
	for range 2 {
		var r *framework.Runner
		app := fxtest.New(t, framework.Module, framework.ConfigYAML("t", []byte("lock: memory\n")), fx.Supply(quiet), fx.NopLogger, fx.Populate(&r))
		app.RequireStart().RequireStop()
		ids = append(ids, r.Identity())
	}
	assert.Regexp(t, `^web-7d9f-[0-9a-f]{6}$`, ids[0])
	assert.NotEqual(t, ids[0], ids[1])
}

func TestBadSetUpFailsBeforeAnythingStarts(t *testing.T) {
	noLeaks(t)
	ok := func(name string) fx.Option {
		return supply(components.New(name, func(ctx context.Context) error { <-ctx.Done(); return nil }))
	}
	for name, tc := range map[string]struct {
		yaml string
		opts []fx.Option
		want string
	}{
		"entry without component": {
			yaml: memoryYAML + "components:\n  billing: {}\n  biling: {}\n",
			opts: []fx.Option{ok("billing")},
			want: "components.biling: no component of that name is registered (registered: billing)",
		},
		"bad yaml": {
			yaml: "lock: [memory\n",
			want: "config test.yaml: yaml:",
		},
		"bad duration": {
			yaml: memoryYAML + "components:\n  billing:\n    lease_duration: 5x\n",
			opts: []fx.Option{ok("billing")},
			want: `components.billing.lease_duration: "5x" is not a duration`,
		},
		"unknown key": {
			yaml: memoryYAML + "shutdown_timout: 5s\n",
			want: "shutdown_timout: unknown key",
		},
		"wrong timing order": {
			yaml: memoryYAML + "components:\n  billing:\n    lease_duration: 1s\n",
			opts: []fx.Option{ok("billing")},
			want: "components.billing: lease_duration 1s must exceed renew_deadline 1.5s",
		},
		"code timings in wrong order": {
			yaml: memoryYAML,
			opts: []fx.Option{supply(components.New("billing", nil, components.WithSettings(components.Settings{RetryPeriod: 2 * time.Second})))},
			want: "components.billing: renew_deadline 1.5s must exceed retry_period 2s",
		},
		"invalid name": {
			yaml: memoryYAML,
			opts: []fx.Option{ok("Billing")},
			want: `component name "Billing" must be a DNS label`,
		},
		"duplicate name": {
			yaml: memoryYAML,
			opts: []fx.Option{ok("billing"), ok("billing")},
			want: "component billing is registered twice",
		},
		"two components on one lock": {
			yaml: memoryYAML + "components:\n  reports:\n    lock_name: billing\n",
			opts: []fx.Option{ok("billing"), ok("reports")},
			want: "components billing and reports use the same lock memory/default/billing: each component needs a lock of its own",
		},
		"a lock named like the placement coordinator's": {
			yaml: memoryYAML + "placement: balanced\nplacement_group: g\ncomponents:\n  billing:\n    lock_name: " + placement.CoordinatorLeaseName("g") + "\n",
			opts: []fx.Option{ok("billing")},
			want: "components.billing: its lock " + placement.CoordinatorLeaseName("g") + ` is the placement coordinator's (placement group "g"): set lock_name`,
		},
		"member Leases under a second": {
			yaml: "lock: lease\nplacement: balanced\nlease_duration: 900ms\nrenew_deadline: 700ms\nretry_period: 500ms\n",
			opts: []fx.Option{ok("billing"), withClient(fake.NewClientset())},
			want: "placement: lease_duration 900ms is under a second, the least a member Lease keeps: set lease_duration of 1s or more, or placement: none",
		},
		"a lock named like a member record": {
			yaml: memoryYAML + "placement: balanced\ncomponents:\n  billing:\n    placement: none\n    lock_name: tenure-member-x\n",
			opts: []fx.Option{ok("billing"), ok("reports")},
			want: "components.billing: its lock tenure-member-x is named like a placement member record (tenure-member-*): set lock_name",
		},
		"wrong kubeconfig path": {
			yaml: memoryYAML + "kubeconfig: /nonexistent/kubeconfig\n",
			opts: []fx.Option{ok("billing")},
			want: `kubernetes client: kubeconfig "/nonexistent/kubeconfig": stat /nonexistent/kubeconfig: no such file or directory`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			started := false
			opts := append([]fx.Option{
				framework.Module,
				framework.ConfigYAML("test.yaml", []byte(tc.yaml)),
				fx.Supply(quiet),
				fx.NopLogger,
				fx.Invoke(func(lc fx.Lifecycle) {
					lc.Append(fx.StartHook(func() { started = true }))
				}),
			}, tc.opts...)
			app := fx.New(opts...)
			require.Error(t, app.Err())
			assert.Contains(t, app.Err().Error(), tc.want)
			assert.False(t, started)
		})
	}
}

// noCluster points every place a cluster could be configured at nothing.
// (clientcmd reads $HOME once, when the program starts, so it is
// $KUBECONFIG that keeps a developer's ~/.kube/config out of the test.)
func noCluster(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "none"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}

func TestNoClusterIsAClearError(t *testing.T) {
	noCluster(t)
	ok := func(name string, lock locks.Kind) fx.Option {
		return supply(components.New(name, nil, components.WithSettings(components.Settings{Lock: lock})))
	}
	for name, tc := range map[string]struct {
		yaml string
		opts []fx.Option
		want string
	}{
		"defaults on leases": {
			yaml: "identity: r1\n",
			opts: []fx.Option{ok("billing", ""), ok("reports", "")},
			want: "tenure: no Kubernetes cluster configured for components billing, reports (lock lease): set kubeconfig (--kubeconfig) or $KUBECONFIG, run in a cluster, provide a kubernetes.Interface to the app, or set lock: memory",
		},
		"one lock in a cluster": {
			yaml: "lock: memory\n",
			opts: []fx.Option{ok("billing", "lease"), ok("reports", "")},
			want: "no Kubernetes cluster configured for component billing (lock lease):",
		},
		"kinds apart": {
			yaml: "lock: memory\n",
			opts: []fx.Option{ok("legacy", "configmap"), ok("billing", "lease"), ok("reports", "lease"), ok("cache", "")},
			want: "no Kubernetes cluster configured for components legacy (lock configmap), billing, reports (lock lease):",
		},
	} {
		t.Run(name, func(t *testing.T) {
			app := fx.New(append([]fx.Option{framework.Module, framework.ConfigYAML("t", []byte(tc.yaml)), fx.NopLogger, fx.Supply(quiet)}, tc.opts...)...)
			require.Error(t, app.Err())
			assert.Contains(t, app.Err().Error(), tc.want)
			assert.NotContains(t, app.Err().Error(), "KUBERNETES_MASTER")
		})
	}
}

// TestMemoryLocksNeedNoClient: with every lock in memory the module makes
// no client and provides none, so a constructor that wants one fails to
// build rather than receive nil.
func TestMemoryLocksNeedNoClient(t *testing.T) {
	noCluster(t)
	app := fx.New(framework.Module, framework.ConfigYAML("t", []byte("lock: memory\n")), fx.NopLogger, fx.Supply(quiet),
		framework.Component(func(cs kubernetes.Interface) components.Component { return components.New("billing", nil) }))
	require.Error(t, app.Err())
	assert.Contains(t, app.Err().Error(), "missing type: kubernetes.Interface")
}

// TestModuleKeepsItsOwnValuesPrivate: the app sees only the Runner.
func TestModuleKeepsItsOwnValuesPrivate(t *testing.T) {
	var cfg *config.Config
	app := fx.New(framework.Module, framework.ConfigYAML("t", []byte("lock: memory\n")), fx.NopLogger, fx.Supply(quiet), fx.Populate(&cfg))
	require.Error(t, app.Err())
	assert.Contains(t, app.Err().Error(), "missing type: *config.Config")
}

func kubernetesFor(cfg *rest.Config) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(cfg)
}

func TestStatusAndLockWrapper(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	var wrapped []string
	var r *framework.Runner
	app := fxtest.New(t, framework.Module,
		framework.ConfigYAML("t", []byte(memoryYAML+"identity: r1\n")),
		framework.WrapLocks(func(name string, l locks.Lock) locks.Lock {
			wrapped = append(wrapped, name+"="+l.Describe())
			return l
		}),
		fx.Supply(quiet), fx.NopLogger,
		supply(recorded(led, "billing")), supply(recorded(led, "reports")),
		fx.Populate(&r),
	)
	assert.ElementsMatch(t, []string{"billing=memory/default/billing", "reports=memory/default/reports"}, wrapped)
	app.RequireStart()
	led.of("billing").Leader(t)
	led.of("reports").Leader(t)
	require.Eventually(t, func() bool {
		st := r.Status()
		return len(st) == 2 && st[0].Leading && st[1].Leading
	}, 5*time.Second, time.Millisecond)
	st := r.Status()
	assert.ElementsMatch(t, []string{"billing", "reports"}, []string{st[0].Name, st[1].Name})
	for _, s := range st {
		assert.Equal(t, "memory/default/"+s.Name, s.Lock)
		assert.Equal(t, "r1", s.Leader)
		assert.Equal(t, "r1", s.Term.Identity)
		assert.Equal(t, int32(1), s.Term.FencingToken)
	}
	app.RequireStop()
	for _, s := range r.Status() {
		assert.False(t, s.Leading)
	}
}
