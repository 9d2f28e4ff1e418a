package election

// Tests of the two-leader holes of issue 14: each fails on the code before
// its fix.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// eventually polls cond for up to a second and reports whether it held,
// without failing: for waits that the code before a fix never satisfies,
// so that the test fails on its own assertion instead.
func eventually(cond func() bool) bool {
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return cond()
}

// windingDown is leader work that, once cancelled, keeps acting until
// finish is closed, as a flush or a commit does.
type windingDown struct {
	ctx       chan context.Context
	cancelled chan struct{}
	finish    chan struct{}
	returned  chan struct{}
	once      sync.Once
}

// end lets the work return.
func (w *windingDown) end() { w.once.Do(func() { close(w.finish) }) }

func newWindingDown() *windingDown {
	return &windingDown{ctx: make(chan context.Context, 1), cancelled: make(chan struct{}), finish: make(chan struct{}), returned: make(chan struct{})}
}

func (w *windingDown) work(ctx context.Context) {
	defer close(w.returned)
	w.ctx <- ctx
	<-ctx.Done()
	close(w.cancelled)
	<-w.finish
}

// TestWindDownKeepsTheTerm (hole 1): after Stop the leader keeps renewing
// while its work winds down, however long that takes; no other candidate
// takes over until the work has returned and the lock is released. Valid
// keeps saying the term holds during the wind-down.
func TestWindDownKeepsTheTerm(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	lock := &testLock{Lock: mem}
	w := newWindingDown()
	a := newCandidate(t, lock, "a", epoch, func(c *Config) { c.OnStartedLeading = w.work })
	b := newCandidate(t, mem, "b", epoch)
	a.run(t)
	t.Cleanup(w.end) // before Run is joined, if the test fails early
	waitFor(t, a.IsLeader, "a leads")
	workCtx := <-w.ctx
	require.False(t, b.try(t), "b sees a's first write")

	stopped := make(chan struct{})
	go func() {
		_ = a.Stop(context.Background())
		close(stopped)
	}()
	<-w.cancelled
	assert.NoError(t, Valid(workCtx), "the term holds while the work winds down")
	for i := range int(2 * lease / retry) { // two leases of wind-down
		eventually(func() bool { return a.clock.Waiters() == 2 })
		a.clock.Step(retry)
		b.clock.Step(retry)
		eventually(func() bool { return lock.updates.Load() == int32(i+2) })
		require.False(t, b.try(t), "b took over at %v while a's work was still winding down", time.Duration(i+1)*retry)
		assert.NoError(t, Valid(workCtx), "Valid at %v of wind-down", time.Duration(i+1)*retry)
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned before the work did")
	default:
	}
	w.end()
	<-stopped
	assert.Empty(t, holderOf(t, mem).HolderIdentity, "released once the work returned")
	require.True(t, b.try(t), "b leads at once after the release")
}

// TestWindDownEndsAtTheRenewDeadlineWhenRenewalsFail (hole 1): during a
// wind-down whose renewals fail, the term ends at the renew deadline as
// always and Valid says so, before any other candidate can take over; the
// lock taken over meanwhile is not released.
func TestWindDownEndsAtTheRenewDeadlineWhenRenewalsFail(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	lock := &testLock{Lock: mem}
	w := newWindingDown()
	a := newCandidate(t, lock, "a", epoch, func(c *Config) { c.OnStartedLeading = w.work })
	b := newCandidate(t, mem, "b", epoch)
	a.run(t)
	t.Cleanup(w.end) // before Run is joined, if the test fails early
	waitFor(t, a.IsLeader, "a leads")
	workCtx := <-w.ctx
	require.False(t, b.try(t))

	lock.failUpdates.Store(true)
	stopped := make(chan struct{})
	go func() {
		_ = a.Stop(context.Background())
		close(stopped)
	}()
	<-w.cancelled
	require.NoError(t, Valid(workCtx))
	eventually(func() bool { return a.clock.Waiters() == 2 })
	a.clock.Step(deadline - time.Millisecond)
	require.NoError(t, Valid(workCtx), "just before the deadline")
	a.clock.Step(time.Millisecond)
	require.ErrorIs(t, Valid(workCtx), ErrNotLeader, "the term ended at the renew deadline")
	assert.False(t, a.IsLeader())
	b.clock.Step(deadline)
	require.False(t, b.try(t), "at a's deadline b still waits")
	b.clock.Step(lease - deadline)
	require.True(t, b.try(t), "b takes over once the lease has expired")

	lock.failUpdates.Store(false)
	w.end()
	<-stopped
	assert.Equal(t, "b", holderOf(t, mem).HolderIdentity, "a leaves b's record alone")
	assert.Equal(t, 1, a.stoppedLeading())
}

// stuckLock's updates hang until unstuck, whatever their context says, as
// a custom lock on a slow backend or a half-open connection may.
type stuckLock struct {
	locks.Lock
	stuck   atomic.Bool
	mu      sync.Mutex
	unstuck chan struct{}
	hung    atomic.Int32
}

func newStuckLock(l locks.Lock) *stuckLock {
	return &stuckLock{Lock: l, unstuck: make(chan struct{})}
}

func (l *stuckLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if l.stuck.Load() {
		l.hung.Add(1)
		l.mu.Lock()
		ch := l.unstuck
		l.mu.Unlock()
		<-ch
		return locks.Observed{}, errInjected
	}
	return l.Lock.Update(ctx, version, r)
}

func (l *stuckLock) unstick() {
	l.stuck.Store(false)
	l.mu.Lock()
	close(l.unstuck)
	l.unstuck = make(chan struct{})
	l.mu.Unlock()
}

// TestWorkIsCancelledAtTheDeadlineWhileARequestHangs (hole 3): a renewal
// that ignores its context does not keep the work running past the renew
// deadline.
func TestWorkIsCancelledAtTheDeadlineWhileARequestHangs(t *testing.T) {
	noLeaks(t)
	lock := newStuckLock(freeLock(t))
	cancelled := make(chan time.Time, 1)
	var a *candidate
	a = newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			<-ctx.Done()
			cancelled <- a.clock.Now()
		}
	})
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	lock.stuck.Store(true)
	a.waitTimers(t, 2)
	a.clock.Step(retry)
	waitFor(t, func() bool { return lock.hung.Load() == 1 }, "the renewal hangs")
	a.waitTimers(t, 1)
	a.clock.Step(deadline - retry)
	select {
	case at := <-cancelled:
		assert.Equal(t, epoch.Add(deadline), at)
	case <-time.After(3 * time.Second):
		t.Error("the leader work was not cancelled at the deadline while a renewal hung")
	}
	assert.False(t, a.IsLeader())
	lock.unstick()
	waitFor(t, func() bool { return a.stoppedLeading() == 1 }, "the term ends")
}

// TestStepAPIReportsNoLeaderPastTheDeadline (hole 4): TryAcquireOrRenew,
// IsLeader and Term report leadership only while the last successful write
// was sent less than RenewDeadline ago.
func TestStepAPIReportsNoLeaderPastTheDeadline(t *testing.T) {
	mem := freeLock(t)
	lock := &testLock{Lock: mem}
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, mem, "b", epoch)
	require.True(t, a.try(t))
	require.False(t, b.try(t))
	lock.failUpdates.Store(true)
	a.clock.Step(retry)
	held, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errInjected)
	assert.True(t, held, "within the deadline a failed renewal keeps the term")
	a.clock.Step(deadline - retry)
	held, err = a.TryAcquireOrRenew(context.Background())
	assert.False(t, held, "past the deadline: %v", err)
	assert.False(t, a.IsLeader())
	_, ok := a.Term()
	assert.False(t, ok)

	b.clock.Step(lease)
	require.True(t, b.try(t))
	a.clock.Step(60 * time.Second)
	held, _ = a.TryAcquireOrRenew(context.Background())
	assert.False(t, held, "another candidate holds the lock")
	assert.False(t, a.IsLeader())
}

// TestRenewLoopEndedByCancellationLeavesNoLeader (hole 4): once RenewLoop
// has returned, IsLeader turns false at the renew deadline.
func TestRenewLoopEndedByCancellationLeavesNoLeader(t *testing.T) {
	noLeaks(t)
	a := newCandidate(t, freeLock(t), "a", epoch)
	require.True(t, a.try(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		a.RenewLoop(ctx)
		close(done)
	}()
	cancel()
	<-done
	assert.True(t, a.IsLeader(), "within the deadline")
	a.clock.Step(deadline)
	assert.False(t, a.IsLeader(), "the deadline passed with no renewal")
}

// TestSameSecondRenewalsAreSeen (hole 2): renewals within one second
// store the same bytes on a lock whose times have whole seconds; a
// follower must still see each as a change (a new version), or it judges
// the lease expired before the partitioned leader's deadline.
func TestSameSecondRenewalsAreSeen(t *testing.T) {
	const (
		lease    = 2 * time.Second
		deadline = 1500 * time.Millisecond
		retry    = 100 * time.Millisecond
	)
	timings := func(c *Config) { c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = lease, deadline, retry }
	mem := freeLock(t)
	lock := &testLock{Lock: mem}
	a := newCandidate(t, lock, "a", epoch, timings)
	b := newCandidate(t, mem, "b", epoch, timings)
	step := func(d time.Duration) {
		a.clock.Step(d)
		b.clock.Step(d)
	}
	require.True(t, a.try(t))
	term, _ := a.Term()
	step(50 * time.Millisecond)
	require.False(t, b.try(t), "b sees a's record at 0.05s")
	step(50 * time.Millisecond)
	for range 8 { // renewals at 0.1s … 0.8s: the same second
		require.True(t, a.try(t))
		step(retry)
	}
	require.True(t, a.try(t), "the last renewal, at 0.9s")
	lock.failUpdates.Store(true) // a is cut off
	for a.validTerm(term) == nil {
		step(retry / 2)
		require.False(t, b.try(t), "b took over at %v while a's term was valid", a.clock.Since(epoch))
	}
	step(lease)
	require.True(t, b.try(t), "b takes over once a's lease expired")
}

// lostResponseLock applies writes but loses their answers while lose is
// set, as a connection cut after the request arrived.
type lostResponseLock struct {
	locks.Lock
	lose atomic.Bool
}

var errLostResponse = errors.New("connection reset: response lost")

func (l *lostResponseLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	obs, err := l.Lock.Create(ctx, r)
	if err == nil && l.lose.Load() {
		return locks.Observed{}, errLostResponse
	}
	return obs, err
}

func (l *lostResponseLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	obs, err := l.Lock.Update(ctx, version, r)
	if err == nil && l.lose.Load() {
		return locks.Observed{}, errLostResponse
	}
	return obs, err
}

// TestAcquisitionWithALostResponseIsRecognised (hole 7): the candidate
// whose acquiring write landed but whose answer was lost recognises its own
// write at its next attempt and leads, instead of waiting a lease.
func TestAcquisitionWithALostResponseIsRecognised(t *testing.T) {
	mem := freeLock(t)
	lock := &lostResponseLock{Lock: mem}
	a := newCandidate(t, lock, "a", epoch)
	lock.lose.Store(true)
	held, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errLostResponse)
	require.False(t, held)
	assert.Equal(t, "a", holderOf(t, mem).HolderIdentity, "the write landed")
	lock.lose.Store(false)
	a.clock.Step(retry)
	require.True(t, a.try(t), "a recognises its own write")
	term, _ := a.Term()
	assert.Equal(t, epoch, term.Started, "the term started when the write was sent")
	assert.Equal(t, int32(1), term.FencingToken)
	a.clock.Step(deadline - retry - time.Millisecond)
	assert.True(t, a.IsLeader())
	require.True(t, a.try(t), "renews")
}

// TestLostResponseRecognisedOnlyWithinItsDeadline (hole 7): a write
// recognised too late to be safe is waited out as any other.
func TestLostResponseRecognisedOnlyWithinItsDeadline(t *testing.T) {
	mem := freeLock(t)
	lock := &lostResponseLock{Lock: mem}
	a := newCandidate(t, lock, "a", epoch)
	lock.lose.Store(true)
	_, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errLostResponse)
	lock.lose.Store(false)
	a.clock.Step(deadline)
	require.False(t, a.try(t), "past the write's renew deadline the record is not taken as a live term")
	a.clock.Step(lease)
	require.True(t, a.try(t), "taken over once the lease expired")
	term, _ := a.Term()
	assert.Equal(t, int32(2), term.FencingToken)
}

// TestStopFromACallbackDoesNotDeadlock (item 5): Stop called from the
// leader work, OnNewLeader or OnStoppedLeading ends Run and the lock is
// released.
func TestStopFromACallbackDoesNotDeadlock(t *testing.T) {
	for _, from := range []string{"OnStartedLeading", "OnNewLeader", "OnStoppedLeading"} {
		t.Run(from, func(t *testing.T) {
			noLeaks(t)
			mem := freeLock(t)
			var a *candidate
			stopErr := make(chan error, 1)
			stop := func() { stopErr <- a.Stop(context.Background()) }
			a = newCandidate(t, mem, "a", epoch, func(c *Config) {
				switch from {
				case "OnStartedLeading":
					c.OnStartedLeading = func(ctx context.Context) { stop() }
				case "OnNewLeader":
					c.OnNewLeader = func(string) { stop() }
					c.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() }
				case "OnStoppedLeading":
					c.OnStoppedLeading = stop
					c.OnStartedLeading = func(ctx context.Context) {} // returns: the term ends
				}
			})
			done := make(chan error, 1)
			go func() { done <- a.Run(context.Background()) }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after Stop from " + from)
			}
			require.NoError(t, <-stopErr)
			assert.Empty(t, holderOf(t, mem).HolderIdentity, "released")
		})
	}
}

// silentCache is a lock read through a cache that can go silent, as a
// LeaseLock's watch cache does when its watch is established but delivers
// nothing (a half-open connection). Like a LeaseLock's, it never answers
// with a version older than one read from the server.
type silentCache struct {
	*locks.MemoryLock
	mu     sync.Mutex
	frozen *locks.Observed
	floor  int // the newest version read from the server
	direct atomic.Int32
}

func (c *silentCache) Get(ctx context.Context) (locks.Observed, error) {
	c.mu.Lock()
	frozen, floor := c.frozen, c.floor
	c.mu.Unlock()
	if frozen == nil {
		return c.MemoryLock.Get(ctx)
	}
	if v, _ := strconv.Atoi(frozen.Version); v < floor {
		return c.GetFromServer(ctx) // the cache lags behind what was seen
	}
	return *frozen, nil
}

func (c *silentCache) GetFromServer(ctx context.Context) (locks.Observed, error) {
	c.direct.Add(1)
	obs, err := c.MemoryLock.Get(ctx)
	v, _ := strconv.Atoi(obs.Version)
	c.mu.Lock()
	c.floor = max(c.floor, v)
	c.mu.Unlock()
	return obs, err
}

// freeze makes the cache silent: it answers what it holds now.
func (c *silentCache) freeze(t *testing.T) {
	obs, err := c.MemoryLock.Get(context.Background())
	require.NoError(t, err)
	c.mu.Lock()
	c.frozen = &obs
	c.mu.Unlock()
}

// TestSilentCacheIsReadPast (item 8): a follower whose cache shows no
// renewal for longer than renewals take reads from the server, so that a
// release behind a silent watch is taken within two retry periods, and a
// crashed leader within a lease and a retry period of its last renewal;
// a live cache is never read past.
func TestSilentCacheIsReadPast(t *testing.T) {
	mem := freeLock(t)
	cache := &silentCache{MemoryLock: mem}
	a := newCandidate(t, mem, "a", epoch)
	b := newCandidate(t, cache, "b", epoch)
	step := func(d time.Duration) {
		a.clock.Step(d)
		b.clock.Step(d)
	}
	require.True(t, a.try(t))
	for range 10 { // a renews, b sees it in its cache
		require.False(t, b.try(t))
		step(retry)
		require.True(t, a.try(t))
	}
	assert.Zero(t, cache.direct.Load(), "a live cache is not read past")

	cache.freeze(t)
	step(retry)
	require.True(t, a.try(t))
	require.False(t, b.try(t))
	require.NoError(t, a.release(context.Background()))
	released := a.clock.Now()
	for !b.try(t) { // b's Run wakes when the silence begins (untilSilent)
		step(retry / 10)
		require.Less(t, a.clock.Since(released), 2*retry, "b did not see the release behind its silent cache within two retry periods")
	}

	// b leads; a follows behind a silent cache of its own, and b crashes
	// after a renewal.
	cacheA := &silentCache{MemoryLock: mem}
	a2 := newCandidate(t, cacheA, "a2", b.clock.Now())
	require.False(t, a2.try(t))
	cacheA.freeze(t)
	for range 3 {
		step(retry)
		a2.clock.Step(retry)
		require.True(t, b.try(t))
		require.False(t, a2.try(t))
	}
	lastRenewal := a2.clock.Now()
	for !a2.try(t) {
		a2.clock.Step(retry / 10)
		require.LessOrEqual(t, a2.clock.Since(lastRenewal), lease+retry, "a2 did not take over from the crashed leader within a lease and a retry period")
	}
	require.GreaterOrEqual(t, a2.clock.Since(lastRenewal), lease, "never before the lease expired")
}
