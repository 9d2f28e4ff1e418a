package framework_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// steps is an ordered log of what happened.
type steps struct {
	mu  sync.Mutex
	all []string
}

func (s *steps) add(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, step)
}

func (s *steps) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.all...)
}

// sharedCache stands for what the components share: it is ready when
// ready is closed, and fails with fail if that is sent.
type sharedCache struct {
	log   *steps
	ready chan struct{}
	fail  chan error
}

func (c *sharedCache) Ready() <-chan struct{} { return c.ready }

func (c *sharedCache) Start(ctx context.Context) error {
	c.log.add("shared started")
	select {
	case <-ctx.Done():
		// Stopping takes a while: the work must not be running meanwhile.
		time.Sleep(20 * time.Millisecond)
		c.log.add("shared stopped")
		return nil
	case err := <-c.fail:
		return err
	}
}

// loggedWork is a component that logs when its work starts and, after
// winding down for 20ms, returns.
func loggedWork(log *steps) components.Component {
	return components.New("billing", func(ctx context.Context) error {
		log.add("work started")
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // winds down
		log.add("work returned")
		return nil
	})
}

// TestSharedRunsAroundTheElections: a Shared runnable starts before the
// elections, which begin once it is ready, and stops after every leader
// work has returned.
func TestSharedRunsAroundTheElections(t *testing.T) {
	noLeaks(t)
	log := &steps{}
	cache := &sharedCache{log: log, ready: make(chan struct{}), fail: make(chan error)}
	work := loggedWork(log)
	app := replica(t, "r1", memoryYAML, framework.Shared(func() framework.Runnable { return cache }), work)
	started := make(chan error, 1)
	go func() { started <- app.Start(context.Background()) }()
	require.Eventually(t, func() bool { return len(log.list()) > 0 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the elections would have led by now
	select {
	case err := <-started:
		t.Fatalf("the start returned before the shared runnable was ready: %v", err)
	default:
	}
	assert.Equal(t, []string{"shared started"}, log.list(), "no work before the shared runnable is ready")
	close(cache.ready)
	require.NoError(t, <-started)
	require.Eventually(t, func() bool { return len(log.list()) == 2 }, 5*time.Second, time.Millisecond)
	require.NoError(t, app.Stop(context.Background()))
	assert.Equal(t, []string{"shared started", "work started", "work returned", "shared stopped"}, log.list())
}

// TestSharedFailureStopsTheApp: a Shared runnable that fails stops the
// app with exit code 1.
func TestSharedFailureStopsTheApp(t *testing.T) {
	noLeaks(t)
	cache := &sharedCache{log: &steps{}, ready: make(chan struct{}), fail: make(chan error, 1)}
	close(cache.ready) // nothing to wait for
	var sh fx.Shutdowner
	app := replica(t, "r1", memoryYAML, fx.Options(fx.Populate(&sh), framework.Shared(func() framework.Runnable { return cache })), recorded(newLedgers(), "billing"))
	app.RequireStart()
	cache.fail <- errors.New("the cache broke")
	select {
	case sig := <-app.Wait():
		assert.Equal(t, 1, sig.ExitCode)
	case <-time.After(5 * time.Second):
		t.Fatal("the app was not stopped")
	}
	app.RequireStop()
}

// TestSharedNeverReadyFailsTheStart: a start whose deadline passes before
// a Shared runnable is ready fails, leads nothing and stops the runnable.
func TestSharedNeverReadyFailsTheStart(t *testing.T) {
	noLeaks(t)
	log := &steps{}
	cache := &sharedCache{log: log, ready: make(chan struct{}), fail: make(chan error)}
	work := loggedWork(log)
	app := replica(t, "r1", memoryYAML, framework.Shared(func() framework.Runnable { return cache }), work)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.Error(t, app.Start(ctx))
	time.Sleep(100 * time.Millisecond) // the elections would have led by now
	assert.Equal(t, []string{"shared started", "shared stopped"}, log.list())
}

// readyComponent is a component that is ready to lead once ready is
// closed.
type readyComponent struct {
	components.Component
	ready chan struct{}
}

func (c readyComponent) Ready() <-chan struct{} { return c.ready }

// TestComponentCampaignsOnceReady: a component with a Ready channel is
// campaigned for only once the channel is closed; the others at once.
func TestComponentCampaignsOnceReady(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	slow := readyComponent{Component: recorded(led, "slow"), ready: make(chan struct{})}
	var r *framework.Runner
	app := replica(t, "r1", memoryYAML, fx.Populate(&r), slow, recorded(led, "quick"))
	app.RequireStart()
	led.of("quick").Leader(t)
	time.Sleep(300 * time.Millisecond) // it would have led by now
	assert.Empty(t, led.of("slow").Leaders(), "not ready: no campaign")
	close(slow.ready)
	assert.Equal(t, "r1", led.of("slow").Leader(t), "ready: it leads")
	app.RequireStop()
}

// lateReady is a component that is not ready at its first Ready call and
// is at every later one: it became ready between the runner's start and
// its campaign.
type lateReady struct {
	components.Component
	calls atomic.Int32
}

func (c *lateReady) Ready() <-chan struct{} {
	ch := make(chan struct{})
	if c.calls.Add(1) > 1 {
		close(ch)
	}
	return ch
}

// TestAComponentReadyBeforeItsCampaignIsAnnounced: a component that
// becomes ready between the start and its campaign is announced to
// placement once it campaigns. (It was left out of the member record for
// good: placement never gave it to this replica, and moved it away
// whenever this replica won it.)
func TestAComponentReadyBeforeItsCampaignIsAnnounced(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	comp := &lateReady{Component: recorded(led, "aa")}
	var r *framework.Runner
	app := replica(t, "r1", placedMemoryYAML, fx.Options(fx.Supply(locks.NewMemorySpace()), fx.Supply(roster), fx.Populate(&r)), comp)
	app.RequireStart()
	defer app.RequireStop()
	led.of("aa").Leader(t)
	require.Eventually(t, func() bool {
		for _, m := range roster.Members() {
			if m.Identity == "r1" && len(m.Components) == 1 {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "r1 announces aa: %+v", roster.Members())
	assert.False(t, r.Status()[0].Waiting)
}

// slowToStop is a Shared runnable that returns once release is closed
// after it is asked to, and counts its starts and the times it ran at
// once with itself.
type slowToStop struct {
	release                   chan struct{}
	running, overlaps, starts atomic.Int32
}

func (s *slowToStop) Start(ctx context.Context) error {
	s.starts.Add(1)
	if s.running.Add(1) > 1 {
		s.overlaps.Add(1)
	}
	defer s.running.Add(-1)
	<-ctx.Done()
	<-s.release
	return nil
}

// TestSharedDoesNotRunTwiceAtOnce: after a stop whose deadline passed
// before a Shared runnable returned, a new start waits for it to return
// before it starts it again.
func TestSharedDoesNotRunTwiceAtOnce(t *testing.T) {
	noLeaks(t)
	run := &slowToStop{release: make(chan struct{})}
	var r *framework.Runner
	replica(t, "r1", memoryYAML, fx.Options(fx.Populate(&r), framework.Shared(func() framework.Runnable { return run })), recorded(newLedgers(), "billing"))
	require.NoError(t, r.Start(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.ErrorContains(t, r.Stop(ctx), "shared runnables did not return", "the stop's deadline passes before the runnable returns")
	started := make(chan error)
	go func() { started <- r.Start(context.Background()) }()
	time.Sleep(100 * time.Millisecond) // it would have started it again by now
	assert.Equal(t, int32(1), run.starts.Load(), "started again before it returned")
	close(run.release)
	require.NoError(t, <-started)
	require.NoError(t, r.Stop(context.Background()))
	assert.Equal(t, int32(2), run.starts.Load())
	assert.Zero(t, run.overlaps.Load(), "the runnable ran twice at once")
}

// onceOnly is a Shared runnable that can run once, as a controller-runtime
// manager: ready once started, and ready for good.
type onceOnly struct {
	ready chan struct{}
	ran   atomic.Bool
}

func (o *onceOnly) Ready() <-chan struct{} { return o.ready }

func (o *onceOnly) Start(ctx context.Context) error {
	if o.ran.Swap(true) {
		return errors.New("started twice")
	}
	close(o.ready)
	<-ctx.Done()
	return nil
}

// TestSharedReadyBeforeItStartsFailsTheStart: a runnable whose Ready is
// closed before it starts (it ran before and cannot again) fails the
// start, which leads nothing.
func TestSharedReadyBeforeItStartsFailsTheStart(t *testing.T) {
	noLeaks(t)
	run := &onceOnly{ready: make(chan struct{})}
	led := newLedgers()
	var r *framework.Runner
	replica(t, "r1", memoryYAML, fx.Options(fx.Populate(&r), framework.Shared(func() framework.Runnable { return run })), recorded(led, "billing"))
	require.NoError(t, r.Start(context.Background()))
	led.of("billing").Leader(t)
	require.NoError(t, r.Stop(context.Background()))
	require.ErrorContains(t, r.Start(context.Background()), "cannot start twice")
	time.Sleep(100 * time.Millisecond) // it would have led by now
	assert.Equal(t, 1, len(led.of("billing").Intervals()), "no second term")
}

// failing is a Shared runnable that fails at once.
type failing struct{}

func (failing) Start(context.Context) error { return errors.New("boom") }

// TestSharedFailureDuringTheWaitFailsTheStart: a runnable that fails
// while the start waits for another to be ready fails the start at once,
// with its error.
func TestSharedFailureDuringTheWaitFailsTheStart(t *testing.T) {
	noLeaks(t)
	never := &sharedCache{log: &steps{}, ready: make(chan struct{}), fail: make(chan error)}
	app := replica(t, "r1", memoryYAML, fx.Options(
		framework.Shared(func() framework.Runnable { return never }),
		framework.Shared(func() framework.Runnable { return failing{} }),
	), recorded(newLedgers(), "billing"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	require.ErrorContains(t, app.Start(ctx), "boom")
	assert.Less(t, time.Since(began), 5*time.Second, "the start waited for its deadline")
}

// TestSharedOutlivesATermThatOutlivedTwoStops: leader work that does not
// return keeps its term through a stop that times out, a start and a
// second stop: the second stop fails too, and the Shared runnable the
// work may use runs on until the work has returned.
func TestSharedOutlivesATermThatOutlivedTwoStops(t *testing.T) {
	noLeaks(t)
	run := &slowToStop{release: make(chan struct{})}
	close(run.release) // returns when asked
	stuck := make(chan struct{})
	led := newLedgers()
	work := components.New("billing", func(ctx context.Context) error {
		term, _ := election.TermFromContext(ctx)
		led.of("billing").Begin(term.Identity, term.FencingToken)
		defer led.of("billing").End(term.Identity)
		<-stuck // ignores its context
		return nil
	})
	var r *framework.Runner
	replica(t, "r1", memoryYAML+"shutdown_timeout: 200ms\n", fx.Options(fx.Populate(&r), framework.Shared(func() framework.Runnable { return run })), work)
	require.NoError(t, r.Start(context.Background()))
	led.of("billing").Leader(t)
	require.ErrorContains(t, r.Stop(context.Background()), "did not return")
	require.NoError(t, r.Start(context.Background()))
	require.ErrorContains(t, r.Stop(context.Background()), "did not return", "the first start's work still runs")
	assert.Equal(t, int32(1), run.running.Load(), "the shared runnable was stopped under the work")
	close(stuck)
	require.NoError(t, r.Stop(context.Background()))
	assert.Zero(t, run.running.Load())
}
