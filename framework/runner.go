package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/fx"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/backoff"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// runnerParams are newRunner's dependencies.
type runnerParams struct {
	fx.In
	Shutdowner fx.Shutdowner
	Config     *config.Config
	Identity   identity
	Telemetry  *telemetry
	// Components are the registered components (see Component).
	Components []components.Component `group:"components"`
	// Client is the app's, if it provides one (see Runner.clusterClient).
	Client kubernetes.Interface `optional:"true"`
	// Logger receives the logs. Default: slog.Default().
	Logger *slog.Logger `optional:"true"`
	// MemorySpace holds the memory locks; supply one to share them
	// between apps in one process. Default: one of the app's own.
	MemorySpace *locks.MemorySpace `optional:"true"`
	// WrapLock, if set, wraps every component's lock (see WrapLocks).
	WrapLock LockWrapper `optional:"true"`
	// SecondSignal, if set, ends the process on a signal while stopping
	// (see ExitOnSecondSignal).
	SecondSignal *secondSignal `optional:"true"`
	// Roster holds the member records of apps whose locks are in memory;
	// supply one, with the MemorySpace, to spread the leaderships of apps
	// in one process. Default: one of the app's own.
	Roster *placement.MemoryRoster `optional:"true"`
	// Shared are the app's Shared runnables.
	Shared []Runnable `group:"shared"`
}

// ComponentStatus is what this replica knows of one component's election.
type ComponentStatus struct {
	// Name of the component.
	Name string
	// Lock describes the component's lock; Namespace is the lock's.
	Lock      string
	Namespace string
	// Leading says whether this replica runs the component's leader work.
	Leading bool
	// Term is the current term, while Leading.
	Term election.Term
	// Leader is the holder this replica last observed ("" if none).
	Leader string
	// HandOverTo is the replica this one was asked to hand its
	// leadership over to, while Leading (see package placement).
	HandOverTo string
	// Failures counts the leader work's failures in a row.
	Failures int
	// Waiting says that this replica does not campaign yet: the
	// component is not ready to lead (see components.Component).
	Waiting bool
	// Record is the lock's record as this replica last saw it; Observed
	// is false until it has seen one.
	Record   locks.Record
	Observed bool
	// Healthy is the component's health check (see Runner.HealthChecks):
	// nil, or why it fails.
	Healthy error
}

// Runner runs one election per enabled component, and each component's
// leader work while this replica leads it. Module provides it, and starts
// and stops it with the app; a program reads it for status and health.
type Runner struct {
	cfg          *config.Config
	identity     string
	log          *slog.Logger
	shutdowner   fx.Shutdowner
	clock        clock.WithTicker
	client       kubernetes.Interface // nil when every lock is in memory
	units        []*unit
	events       *events       // nil unless configured
	secondSignal *secondSignal // nil unless ExitOnSecondSignal
	placer       *placer       // nil unless a component is placed
	shared       *shared       // the app's Shared runnables

	cancel   context.CancelFunc
	loops    *sync.WaitGroup // the last start's election loops
	running  atomic.Bool     // between start and stop: ready
	httpAddr atomic.Value    // string: where the HTTP endpoint listens
}

// unit is one component and its election.
type unit struct {
	r        *Runner
	comp     components.Component
	settings components.Settings
	perms    []locks.Permission // the API requests its lock makes, if known
	election *election.Election
	lockImpl locks.Lock // the election's lock
	lock     string     // the election's lock, as its Describe says
	log      *slog.Logger

	mu        sync.Mutex
	cancelRun context.CancelFunc // ends the current Run after a failure
	failed    error              // why the last term failed, if it did
	failures  int                // failures in a row
	working   bool               // the leader work is running
	paused    bool               // in a failure backoff: not campaigning
	waiting   bool               // for the component to be ready: not campaigning

	loopDone chan struct{} // closed when the loop of the last start has returned
}

// newRunner checks the components against the configuration and makes
// their elections; every problem found is in its error, and nothing has
// started. fx calls it when the app is built.
func newRunner(p runnerParams) (*Runner, error) {
	r := &Runner{
		cfg:          p.Config,
		identity:     string(p.Identity),
		log:          p.Logger,
		shutdowner:   p.Shutdowner,
		clock:        clock.RealClock{},
		secondSignal: p.SecondSignal,
		shared:       &shared{runnables: p.Shared},
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	space := p.MemorySpace
	if space == nil {
		space = locks.NewMemorySpace()
	}
	ns := namespace(p.Config)

	var errs []error
	var names []string
	lockUsers := map[string]string{} // lock → the component using it
	for _, c := range p.Components {
		if c == nil {
			errs = append(errs, errors.New("a component constructor returned nil"))
			continue
		}
		name := c.Name()
		if err := components.ValidateName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if slices.Contains(names, name) {
			errs = append(errs, fmt.Errorf("component %s is registered twice", name))
			continue
		}
		names = append(names, name)
		u, err := r.newUnit(c, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if u == nil {
			continue
		}
		key := lockKey(u.settings)
		if other, ok := lockUsers[key]; ok {
			pair := []string{other, name}
			slices.Sort(pair)
			errs = append(errs, fmt.Errorf("components %s and %s use the same lock %s: each component needs a lock of its own (set lock_name)", pair[0], pair[1], key))
			continue
		}
		lockUsers[key] = name
		r.units = append(r.units, u)
	}
	// fx gives a value group in no set order: sort for status and health
	// that read the same on every replica.
	slices.SortFunc(r.units, func(a, b *unit) int { return strings.Compare(a.comp.Name(), b.comp.Name()) })
	if err := p.Config.CheckComponents(names); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tenure: %w", err)
	}
	cs, err := r.clusterClient(p.Client)
	if err != nil {
		return nil, fmt.Errorf("tenure: %w", err)
	}
	r.client = cs
	for _, u := range r.units {
		errs = append(errs, u.elect(p, space))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tenure: %w", err)
	}
	if r.placer, err = newPlacer(r, p, space, ns); err != nil {
		return nil, fmt.Errorf("tenure: placement: %w", err)
	}
	return r, nil
}

// withSettings is implemented by components that bring their own election
// settings, such as those made by components.New with
// components.WithSettings.
type withSettings interface {
	Settings() components.Settings
}

// newUnit makes the election of c, or returns nil if c is disabled.
// runWithApp starts the HTTP endpoint, if configured, and the runner with
// the app, and stops them in the reverse order: the endpoint answers
// until the elections have stopped.
func runWithApp(lc fx.Lifecycle, r *Runner, t *telemetry) {
	if r.cfg.HTTP.Address != "" {
		lc.Append(r.httpHook(t.metrics))
	}
	lc.Append(fx.Hook{OnStart: r.start, OnStop: r.stop})
}

// newUnit returns c's unit with its settings, or nil if c is disabled.
func (r *Runner) newUnit(c components.Component, ns string) (*unit, error) {
	name := c.Name()
	var code components.Settings
	if s, ok := c.(withSettings); ok {
		code = s.Settings()
	}
	settings, err := r.cfg.Settings(name, code)
	if err != nil {
		return nil, err
	}
	if settings.Namespace == "" {
		settings.Namespace = ns
	}
	if !r.cfg.Enabled(name) {
		r.log.Info("component disabled by configuration", "component", name)
		return nil, nil
	}
	return &unit{r: r, comp: c, settings: settings, log: r.log.With("component", name)}, nil
}

// elect makes the unit's lock and election.
func (u *unit) elect(p runnerParams, space *locks.MemorySpace) error {
	r, name := u.r, u.comp.Name()
	lock, err := r.newLock(name, u.settings, r.client, space)
	if err != nil {
		return err
	}
	if pl, ok := lock.(permissioned); ok {
		u.perms = pl.Permissions()
		if r.cfg.Events {
			u.perms = append(u.perms, eventPermissions(u.settings.Namespace)...)
		}
	}
	if p.WrapLock != nil {
		lock = p.WrapLock(name, lock)
	}
	u.lock, u.lockImpl = lock.Describe(), lock
	u.election, err = election.New(election.Config{
		Lock:             lock,
		Name:             name,
		Identity:         r.identity,
		LeaseDuration:    u.settings.LeaseDuration,
		RenewDeadline:    u.settings.RenewDeadline,
		RetryPeriod:      u.settings.RetryPeriod,
		RenewInterval:    u.settings.RenewInterval,
		OnStartedLeading: u.work,
		TracerProvider:   p.Telemetry.tracerProvider,
		MeterProvider:    p.Telemetry.meterProvider,
		Logger:           u.log,
	})
	if err != nil {
		return fmt.Errorf("components.%s: %w", name, err)
	}
	return nil
}

// lockKey names the lock of s as "kind/namespace/name".
func lockKey(s components.Settings) string {
	return s.Lock.Key(s.Namespace, s.LockName)
}

func (r *Runner) newLock(name string, s components.Settings, cs kubernetes.Interface, space *locks.MemorySpace) (locks.Lock, error) {
	if s.Lock == locks.KindMemory {
		return space.Lock(s.Namespace + "/" + s.LockName), nil
	}
	var (
		l   locks.Lock
		err error
	)
	switch s.Lock {
	case locks.KindLease:
		opts := []locks.Option{locks.WithIdentity(r.identity)}
		if !r.cfg.Watch {
			opts = append(opts, locks.WithoutWatch())
		}
		l, err = locks.NewLeaseLock(cs.CoordinationV1(), s.Namespace, s.LockName, opts...)
	case locks.KindConfigMap:
		l, err = locks.NewConfigMapLock(cs.CoreV1(), s.Namespace, s.LockName, locks.WithIdentity(r.identity))
	default:
		err = fmt.Errorf("unknown lock kind %q", s.Lock)
	}
	if err != nil {
		return nil, fmt.Errorf("components.%s: %w", name, err)
	}
	return l, nil
}

// Identity is this replica's identity in every election.
func (r *Runner) Identity() string { return r.identity }

// Status returns the status of every enabled component, by name.
func (r *Runner) Status() []ComponentStatus {
	out := make([]ComponentStatus, 0, len(r.units))
	for _, u := range r.units {
		st := ComponentStatus{Name: u.comp.Name(), Lock: u.lock, Namespace: u.settings.Namespace, Leader: u.election.Leader()}
		st.Record, st.Observed = u.election.Record()
		st.Healthy = u.check()
		u.mu.Lock()
		st.Leading, st.Failures, st.Waiting = u.working, u.failures, u.waiting
		u.mu.Unlock()
		if st.Leading {
			st.Term, _ = u.election.Term()
			st.HandOverTo = u.election.HandOverTo()
		}
		out = append(out, st)
	}
	return out
}

// start checks that this program may make the requests its locks make
// (see checkAccess), starts the Shared runnables and waits until they are
// ready, then starts every election and returns.
func (r *Runner) start(startCtx context.Context) error {
	if err := r.checkAccess(startCtx, r.client); err != nil {
		return err
	}
	if err := r.startShared(startCtx); err != nil {
		return err
	}
	// fx reports a start past its deadline as failed, and nobody would
	// stop elections started after it.
	if err := startCtx.Err(); err != nil {
		r.abortShared()
		return fmt.Errorf("tenure: start: %w", err)
	}
	if r.cfg.Events && r.client != nil {
		r.events = newEvents(r.client, r.identity)
	}
	// A component that is not ready is not announced to placement until
	// it is: its campaign waits for it (waitReady).
	for _, u := range r.units {
		u.mu.Lock()
		u.waiting = !u.ready() && !r.cfg.NeverLead
		u.mu.Unlock()
	}
	if r.placer != nil {
		if err := r.placer.start(); err != nil {
			r.events.shutdown()
			r.events = nil
			r.abortShared()
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.log.Info("starting elections", "identity", r.identity, "components", len(r.units))
	r.running.Store(true)
	// A WaitGroup of this start's own: one of a stop that stopped waiting
	// may still be waited on when this start adds to it, which a
	// WaitGroup does not allow. This start's loops each wait for the last
	// start's loop of their unit, so waiting for them covers those too.
	loops := &sync.WaitGroup{}
	r.loops = loops
	for _, u := range r.units {
		if r.cfg.NeverLead {
			r.log.Info("never_lead: this replica campaigns for nothing", "component", u.comp.Name())
			break
		}
		// After a stop that did not wait, the last start's loop may still
		// run its election (its term lasts until its work has returned):
		// the new loop campaigns once that one has returned.
		prev, done := u.loopDone, make(chan struct{})
		u.loopDone = done
		loops.Go(func() {
			defer close(done)
			defer u.wait(false) // also when stopped before its campaign
			if prev != nil {
				// Even when stopped meanwhile: this loop's end must mean
				// that the last start's term has ended too (see stop).
				<-prev
				if ctx.Err() != nil {
					return
				}
			}
			if !u.waitReady(ctx) {
				return
			}
			u.loop(ctx)
		})
	}
	return nil
}

// stop cancels every component's leader work and waits for it to return,
// at most the configured shutdown timeout (or until ctx is done). Each
// election keeps renewing its lease while its work winds down and
// releases it as soon as the work has returned, all at once. If some work
// does not return in time, stop returns an error naming it without
// waiting longer; those terms go on, since a term lasts until its work has
// returned: their leases are renewed until then and released after, and
// the process should exit to end them (the leases then expire, with the
// work gone). The event recorder stops on every path. stop does not handle
// signals (see ExitOnSecondSignal).
func (r *Runner) stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.secondSignal.listen(r) // until the module's last stop hook
	r.running.Store(false)
	if r.placer != nil {
		// Ask for this replica's leaderships to move to the replicas that
		// stay, so that each election hands over rather than releases.
		hctx, cancel := context.WithTimeout(ctx, r.cfg.Defaults.RenewDeadline)
		r.placer.handOff(hctx)
		cancel()
	}
	r.cancel()
	loops := r.loops
	done := make(chan struct{})
	go func() {
		loops.Wait()
		close(done)
	}()
	timeout := r.clock.NewTimer(r.cfg.ShutdownTimeout)
	defer timeout.Stop()
	var err error
	select {
	case <-done:
		r.log.Info("stopped: all leader work returned and leases released", "identity", r.identity)
		// The work has returned: what it shared can stop. (Otherwise it
		// runs on, for the work that still does, until the process ends.)
		err = r.stopShared(ctx)
	case <-timeout.C():
		err = fmt.Errorf("tenure: %s within shutdown_timeout %v%s", r.notStopped(), r.cfg.ShutdownTimeout, stillHeld)
	case <-ctx.Done():
		err = fmt.Errorf("tenure: %s before the stop deadline%s: %w", r.notStopped(), stillHeld, ctx.Err())
	}
	// Stopped or not, the event recorder stops: an election still running
	// records nothing more.
	r.events.shutdown()
	if r.placer != nil {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Defaults.RenewDeadline)
		if perr := r.placer.stop(lctx); perr != nil {
			r.log.Warn("placement: cannot delete this replica's member record; it expires", "err", perr)
		}
		cancel()
	}
	return err
}

// stillHeld is what a stop that did not wait for every election says of
// them.
const stillHeld = "; a term lasts until its work has returned, so their leases are renewed until then and released after (exit the process to end them sooner: the leases then expire)"

// loopReturned says whether the unit's loop of the last start has returned.
func (u *unit) loopReturned() bool { return isClosed(u.loopDone) }

// notStopped says which components have not stopped: those whose leader
// work is still running or, if none is, whose election is (a request to
// the lock that has not returned).
func (r *Runner) notStopped() string {
	if names := r.working(); len(names) > 0 {
		return "leader work of " + strings.Join(names, ", ") + " did not return"
	}
	var names []string
	for _, u := range r.units {
		if !u.loopReturned() {
			names = append(names, u.comp.Name())
		}
	}
	return "the elections of " + strings.Join(names, ", ") + " did not stop"
}

// working names the components whose leader work is running.
func (r *Runner) working() []string {
	var names []string
	for _, u := range r.units {
		u.mu.Lock()
		if u.working {
			names = append(names, u.comp.Name())
		}
		u.mu.Unlock()
	}
	return names
}

// loop runs the component's election until ctx is done, campaigning again
// after a backoff when its leader work fails.
func (u *unit) loop(ctx context.Context) {
	for {
		runCtx, cancel := context.WithCancel(ctx)
		u.mu.Lock()
		u.cancelRun, u.failed = cancel, nil
		u.mu.Unlock()
		err := u.election.Run(runCtx)
		cancel()
		if err != nil {
			u.log.Error("election ended", "err", err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		u.mu.Lock()
		failed, failures := u.failed, u.failures
		u.mu.Unlock()
		if failed == nil {
			continue
		}
		if u.r.cfg.OnFailure == config.FailureExit {
			u.log.Error("leader work failed; stopping the program (on_failure: exit)", "err", failed)
			if err := u.r.shutdowner.Shutdown(fx.ExitCode(1)); err != nil {
				u.log.Error("cannot stop the program", "err", err)
			}
			<-ctx.Done()
			return
		}
		backoff := u.r.backoff(failures)
		u.log.Info("campaigning again after a backoff", "backoff", backoff.String(), "failures", failures)
		u.pause(true)
		t := u.r.clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			u.pause(false)
			return
		case <-t.C():
		}
		u.pause(false)
	}
}

// pause records whether the unit's election waits out a failure backoff,
// and tells the placer: placement must not hand the component to a replica
// that does not campaign for it.
func (u *unit) pause(paused bool) {
	u.mu.Lock()
	u.paused = paused
	u.mu.Unlock()
	if u.r.placer != nil {
		u.r.placer.campaigning()
	}
}

// ready says whether the unit's component is ready to lead: it is unless
// its type has a method Ready() <-chan struct{} whose channel is open
// (see components.Component).
func (u *unit) ready() bool {
	rd, ok := u.comp.(readier)
	return !ok || isClosed(rd.Ready())
}

// waitReady waits until the unit's component is ready to lead, and says
// whether it is; false if ctx is done first. Either way the unit is no
// longer waiting (see start).
func (u *unit) waitReady(ctx context.Context) bool {
	defer u.wait(false)
	if u.ready() {
		return true
	}
	u.wait(true) // again: a stop's late wait(false) may have cleared start's
	u.log.Info("waiting for the component to be ready before campaigning")
	select {
	case <-u.comp.(readier).Ready():
		u.log.Info("the component is ready: campaigning")
		return true
	case <-ctx.Done():
		return false
	}
}

// wait records whether the unit's campaign waits for its component to be
// ready, and tells the placer (see pause).
func (u *unit) wait(waiting bool) {
	u.mu.Lock()
	changed := u.waiting != waiting
	u.waiting = waiting
	u.mu.Unlock()
	if changed && u.r.placer != nil {
		u.r.placer.campaigning()
	}
}

// pausing says whether the unit's election does not campaign for now: it
// waits out a failure backoff, or for its component to be ready.
func (u *unit) pausing() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.paused || u.waiting
}

// backoff is the wait after the n-th failure in a row.
func (r *Runner) backoff(n int) time.Duration {
	return backoff.Doubling(r.cfg.FailureBackoff, r.cfg.FailureBackoffMax, n)
}

// work is the election's OnStartedLeading: the component's Run, with
// failures recorded and the current Run ended after one.
func (u *unit) work(ctx context.Context) {
	term, _ := election.TermFromContext(ctx)
	obj := lockObject(u.settings)
	u.r.events.record(obj, term.Identity+" became leader")
	defer u.r.events.record(obj, term.Identity+" stopped leading")
	started := u.r.clock.Now()
	u.mu.Lock()
	u.working = true
	u.mu.Unlock()
	err := u.run(ctx)
	u.mu.Lock()
	u.working = false
	u.mu.Unlock()
	if ctx.Err() != nil {
		// The term ended, or the program is stopping: the work was asked
		// to return.
		if err != nil && !errors.Is(err, context.Canceled) {
			u.log.Warn("leader work returned an error when its term ended", "err", err)
		}
		u.mu.Lock()
		u.failures = 0
		u.mu.Unlock()
		return
	}
	if err == nil {
		err = errors.New("returned before its term ended")
	}
	u.mu.Lock()
	if u.r.clock.Since(started) > u.r.cfg.FailureBackoffMax {
		u.failures = 0 // a long good run: start the backoff over
	}
	u.failures++
	u.failed = err
	cancel := u.cancelRun
	u.mu.Unlock()
	u.log.Error("leader work failed; releasing the lock", "err", err, "term", term.FencingToken)
	cancel()
}

// run calls the component's Run, turning a panic into an error.
func (u *unit) run(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return u.comp.Run(ctx)
}
