package election

// Tests of the two-leader holes of issue 14: each fails on the code before
// its fix.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// windDownSetUp runs a with winding-down work on a lock shared with b,
// until a leads.
func windDownSetUp(t *testing.T) (mem *locks.MemoryLock, lock *testLock, w *windingDown, a, b *candidate, workCtx context.Context) {
	mem = freeLock(t)
	lock = &testLock{Lock: mem}
	w = newWindingDown()
	a = newCandidate(t, lock, "a", epoch, func(c *Config) { c.OnStartedLeading = w.work })
	b = newCandidate(t, mem, "b", epoch)
	a.run(t)
	t.Cleanup(w.end) // before Run is joined, if the test fails early
	waitFor(t, a.IsLeader, "a leads")
	return mem, lock, w, a, b, <-w.ctx
}

// TestWindDownKeepsTheTerm (hole 1): after Stop the leader keeps renewing
// while its work winds down, however long that takes; no other candidate
// takes over until the work has returned and the lock is released. Valid
// keeps saying the term holds during the wind-down.
func TestWindDownKeepsTheTerm(t *testing.T) {
	noLeaks(t)
	mem, lock, w, a, b, workCtx := windDownSetUp(t)
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

// TestStopThatGivesUpKeepsTheTerm (issue 15 review): Stop(ctx) returns
// when ctx ends, but the term lasts until the work has returned: the
// leader keeps renewing while its work runs on, so no other candidate
// takes over while the process lives (a program whose stop runs on after
// the framework gave up, flushing telemetry, say), and the lock is
// released once the work returns. Before, giving up stopped the renewals
// and b took over a lease later while a's work still ran.
func TestStopThatGivesUpKeepsTheTerm(t *testing.T) {
	noLeaks(t)
	mem, lock, w, a, b, workCtx := windDownSetUp(t)
	require.False(t, b.try(t), "b sees a's first write")

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()
	<-w.cancelled
	cancel() // Stop gives up waiting
	err := <-stopped
	require.Error(t, err)
	assert.Contains(t, err.Error(), "renewed until it returns")
	for i := range int(2 * lease / retry) {
		eventually(func() bool { return a.clock.Waiters() == 2 })
		a.clock.Step(retry)
		b.clock.Step(retry)
		eventually(func() bool { return lock.updates.Load() == int32(i+2) })
		require.False(t, b.try(t), "b took over at %v while a's work still ran after Stop gave up", time.Duration(i+1)*retry)
		assert.NoError(t, Valid(workCtx), "Valid at %v", time.Duration(i+1)*retry)
	}
	w.end()
	require.True(t, eventually(func() bool { return holderOf(t, mem).HolderIdentity == "" }), "released once the work returned: %+v", holderOf(t, mem))
	require.True(t, b.try(t), "b leads at once after the release")
}

// TestWindDownEndsAtTheRenewDeadlineWhenRenewalsFail (hole 1): during a
// wind-down whose renewals fail, the term ends at the renew deadline as
// always and Valid says so, before any other candidate can take over; the
// lock taken over meanwhile is not released.
func TestWindDownEndsAtTheRenewDeadlineWhenRenewalsFail(t *testing.T) {
	noLeaks(t)
	mem, lock, w, a, b, workCtx := windDownSetUp(t)
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

// hangARenewal runs a until it leads on lock, then makes its next renewal
// hang.
func hangARenewal(t *testing.T, a *candidate, lock *stuckLock) {
	t.Helper()
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	lock.stuck.Store(true)
	a.waitTimers(t, 2)
	a.clock.Step(retry)
	waitFor(t, func() bool { return lock.hung.Load() == 1 }, "the renewal hangs")
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
	hangARenewal(t, a, lock)
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

// skippingLock stores a write that changes no byte as the API server
// does: not at all, answering with the current version.
type skippingLock struct{ *locks.MemoryLock }

func (l skippingLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	current, err := l.MemoryLock.Get(ctx)
	raw, encErr := r.Encode()
	if err == nil && encErr == nil && current.Version == version && bytes.Equal(raw, current.Raw) {
		return current, nil
	}
	return l.MemoryLock.Update(ctx, version, r)
}

// TestSameSecondRenewalsAreSeen (hole 2): renewals within one second
// store the same bytes on a lock whose times have whole seconds. A
// follower must see each new version as a change, and a leader must not
// count a renewal that the lock skipped (no new version) as one, or the
// follower judges the lease expired before the cut-off leader's deadline.
func TestSameSecondRenewalsAreSeen(t *testing.T) {
	const (
		lease    = 2 * time.Second
		deadline = 1500 * time.Millisecond
		retry    = 100 * time.Millisecond
	)
	for name, wrap := range map[string]func(*locks.MemoryLock) locks.Lock{
		"every write a new version": func(m *locks.MemoryLock) locks.Lock { return m },
		"unchanged writes skipped":  func(m *locks.MemoryLock) locks.Lock { return skippingLock{m} },
	} {
		t.Run(name, func(t *testing.T) {
			timings := func(c *Config) { c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = lease, deadline, retry }
			mem := freeLock(t)
			lock := &testLock{Lock: wrap(mem)}
			a := newCandidate(t, lock, "a", epoch, timings)
			b := newCandidate(t, wrap(mem), "b", epoch, timings)
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
		})
	}
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

// microLock is an in-memory lock that keeps a record's times to the
// nanosecond, as finely as a Lease keeps them to the microsecond: the
// MemoryLock, in client-go's JSON, keeps whole seconds.
type microLock struct {
	mu      sync.Mutex
	record  locks.Record
	version int
}

func (l *microLock) observed() locks.Observed {
	return locks.Observed{Record: l.record, Raw: fmt.Appendf(nil, "%+v", l.record), Version: strconv.Itoa(l.version)}
}

func (l *microLock) Get(context.Context) (locks.Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.observed(), nil
}

func (l *microLock) Create(context.Context, locks.Record) (locks.Observed, error) {
	return locks.Observed{}, locks.ErrConflict // it always exists
}

func (l *microLock) Update(_ context.Context, version string, r locks.Record) (locks.Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if version != strconv.Itoa(l.version) {
		return locks.Observed{}, locks.ErrConflict
	}
	l.record = r
	l.version++
	return l.observed(), nil
}

func (l *microLock) Describe() string { return "micro" }

// TestAcquisitionWithALostResponseIsRecognised (hole 7): the candidate
// whose acquiring write landed but whose answer was lost recognises its own
// write at its next attempt and leads, instead of waiting a lease.
func TestAcquisitionWithALostResponseIsRecognised(t *testing.T) {
	micro := &microLock{}
	lock := &lostResponseLock{Lock: micro}
	sent := epoch.Add(123456 * time.Microsecond)
	a := newCandidate(t, lock, "a", sent)
	lock.lose.Store(true)
	held, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errLostResponse)
	require.False(t, held)
	assert.Equal(t, "a", holderOf(t, micro).HolderIdentity, "the write landed")
	lock.lose.Store(false)
	a.clock.Step(retry)
	require.True(t, a.try(t), "a recognises its own write")
	term, _ := a.Term()
	assert.Equal(t, sent, term.Started, "the term started when the write was sent")
	assert.Equal(t, int32(1), term.FencingToken)
	a.clock.Step(deadline - retry - time.Millisecond)
	assert.True(t, a.IsLeader())
	require.True(t, a.try(t), "renews")
}

// TestLostResponseRecognisedOnlyWithinItsDeadline (hole 7): a write
// recognised too late to be safe is waited out as any other.
func TestLostResponseRecognisedOnlyWithinItsDeadline(t *testing.T) {
	micro := &microLock{}
	lock := &lostResponseLock{Lock: micro}
	a := newCandidate(t, lock, "a", epoch.Add(123456*time.Microsecond))
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

// TestLostResponseOnWholeSecondsIsWaitedOut: on a lock that keeps whole
// seconds (the MemoryLock, a ConfigMap), writes of one second cannot be
// told apart: the candidate waits the lease out, as before.
func TestLostResponseOnWholeSecondsIsWaitedOut(t *testing.T) {
	mem := freeLock(t)
	lock := &lostResponseLock{Lock: mem}
	a := newCandidate(t, lock, "a", epoch)
	lock.lose.Store(true)
	_, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errLostResponse)
	lock.lose.Store(false)
	a.clock.Step(retry)
	require.False(t, a.try(t))
	a.clock.Step(lease)
	require.True(t, a.try(t))
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
	release(t, a.Election)
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

// dropLock loses the answer of an Update while drop is set, without the
// write having been applied (a connection reset before the request
// arrived, or a 409 Conflict whose answer was lost). before runs first.
type dropLock struct {
	locks.Lock
	drop   bool
	before func()
}

var errDropped = errors.New("review: connection reset, answer lost")

func (l *dropLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if l.drop {
		if l.before != nil {
			l.before()
		}
		return locks.Observed{}, errDropped
	}
	return l.Lock.Update(ctx, version, r)
}

// TestTwinsLostAnswerIsNotTakenAsOwn (found in review): two candidates
// with the same identity race for a free record. a2 wins; a1's write did not land
// (or got a conflict) but its answer was lost. a1 remembers the tried
// write (identity "a", token 1, acquire time t0) and, at its next attempt,
// finds a2's record, which has exactly that identity, token and acquire
// time: it must not "recognise" a2's write as its own and lead. From then on each
// renewal that conflicts finds a record naming "a" with its token and
// carries on: both lead for ever.
func TestTwinsLostAnswerIsNotTakenAsOwn(t *testing.T) {
	mem := &microLock{}
	lossy := &dropLock{Lock: mem}
	a1 := newCandidate(t, lossy, "a", epoch.Add(123456*time.Microsecond))
	// Twins are other processes: their writes are not sent in the same
	// microsecond (if they were, they could not be told apart: see
	// triedWrite.matches).
	a2 := newCandidate(t, mem, "a", epoch.Add(123455*time.Microsecond))

	// a1 reads the free record, then a2 wins the race before a1's write
	// arrives; a1's answer is lost.
	lossy.drop = true
	lossy.before = func() { require.True(t, a2.try(t), "a2 acquires") }
	held, err := a1.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errDropped)
	require.False(t, held)
	lossy.drop = false

	term2, ok := a2.Term()
	require.True(t, ok)

	step := func(d time.Duration) {
		a1.clock.Step(d)
		a2.clock.Step(d)
	}
	step(retry)
	a1Leads := a1.try(t) // before a2's renewal: the record is a2's write as it was sent
	require.True(t, a2.try(t), "a2 renews")
	term1, _ := a1.Term()
	t.Logf("a1 leads=%v term=%+v; a2 term=%+v; record=%+v", a1Leads, term1, term2, holderOf(t, mem))
	v1, v2 := a1.validTerm(term1), a2.validTerm(term2)
	if a1Leads && v1 == nil && v2 == nil {
		t.Errorf("TWO LEADERS at %v: a1 (term %d) and a2 (term %d) are both valid", a1.clock.Since(epoch), term1.FencingToken, term2.FencingToken)
	}
	// Both keep renewing: each conflict finds a record naming "a" with
	// the shared token.
	both := 0
	for range int(3 * lease / retry) {
		step(retry)
		ok2 := a2.try(t)
		ok1 := a1.try(t)
		if ok1 && ok2 && a1.validTerm(term1) == nil && a2.validTerm(term2) == nil {
			both++
		}
	}
	if both > 0 {
		t.Errorf("both duplicates remained valid leaders at %d of %d steps, over %v", both, int(3*lease/retry), 3*lease)
	}
}

// TestStopGivesUpAfterTheTermEndedWithStuckWork (found in review): the
// term ends at its renew deadline
// (renewals fail) while the leader work ignores its cancelled context
// (stuck on I/O to the partitioned network, say); lead then waits for the
// work. Stop(ctx) with a short ctx must return once ctx ends, as its doc
// promises, not wait for the work for ever.
func TestStopGivesUpAfterTheTermEndedWithStuckWork(t *testing.T) {
	mem := freeLock(t)
	lock := &testLock{Lock: mem}
	release := make(chan struct{})
	started := make(chan struct{})
	a := newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			close(started)
			<-release // ignores ctx
		}
	})
	r := a.run(t)
	_ = r
	t.Cleanup(func() { close(release) }) // runs before Run is joined
	waitFor(t, a.IsLeader, "a leads")
	<-started
	lock.failUpdates.Store(true)
	for !func() bool { a.Election.mu.Lock(); defer a.Election.mu.Unlock(); return !a.holding }() {
		eventually(func() bool { return a.clock.Waiters() >= 1 })
		a.clock.Step(retry)
		time.Sleep(time.Millisecond)
	}
	// The term has ended at its deadline; the work is still stuck.
	stopGivesUp(t, a)
}

// stopGivesUp checks that Stop with a context that ends in 100ms returns
// soon after, saying it gave up.
func stopGivesUp(t *testing.T, a *candidate) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()
	select {
	case err := <-stopped:
		require.Error(t, err, "Stop says it gave up")
	case <-time.After(3 * time.Second):
		t.Errorf("Stop(ctx) did not return 3s after its 100ms ctx ended (IsLeader=%v)", a.IsLeader())
	}
}

// scriptedLock: every Update reaches the lock but its answer is lost
// while lose is set; Get answers stale while set (a watch cache behind a
// write whose answer was lost, which the freshness floor allows).
type scriptedLock struct {
	locks.Lock
	lose  bool
	fail  bool
	stale *locks.Observed
}

func (l *scriptedLock) Get(ctx context.Context) (locks.Observed, error) {
	if l.stale != nil {
		return *l.stale, nil
	}
	return l.Lock.Get(ctx)
}

func (l *scriptedLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if l.fail {
		return locks.Observed{}, errInjected
	}
	obs, err := l.Lock.Update(ctx, version, r)
	if l.lose {
		return locks.Observed{}, errDropped
	}
	return obs, err
}

// TestOnlyTheWriteSentIsRecognised (found in review): a tolerance on the
// acquire time (a lock may keep whole seconds) would let a later tried write (W2, whose own answer was
// lost: a conflict) "recognise" an earlier write W of the same token that
// landed up to 1s before W2 was sent. The term then starts at W2's send
// time, though followers may have seen W since W's send time: with
// LeaseDuration − RenewDeadline < 1s, a follower takes over while the
// recognised term is still valid.
func TestOnlyTheWriteSentIsRecognised(t *testing.T) {
	const (
		lease    = 2 * time.Second
		deadline = 1500 * time.Millisecond
		retry    = 100 * time.Millisecond
	)
	timings := func(c *Config) { c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = lease, deadline, retry }
	mem := &microLock{}
	v0, err := mem.Get(context.Background())
	require.NoError(t, err)
	lock := &scriptedLock{Lock: mem}
	t0 := epoch.Add(123456 * time.Microsecond)
	a := newCandidate(t, lock, "a", t0, timings)
	b := newCandidate(t, mem, "b", t0, timings)
	step := func(d time.Duration) {
		a.clock.Step(d)
		b.clock.Step(d)
	}

	// t0: a's write W lands, its answer is lost.
	lock.lose = true
	held, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errDropped)
	require.False(t, held)
	require.False(t, b.try(t), "b sees W at t0")

	// t0+0.9s: a's cache still shows v0; W2 conflicts, the answer is lost.
	step(900 * time.Millisecond)
	lock.stale = &v0
	_, err = a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, errDropped)
	lock.stale, lock.lose = nil, false

	// t0+1.0s: a reads W and takes it for W2.
	step(100 * time.Millisecond)
	require.False(t, a.try(t), "a does not take W, sent before W2, for W2")
	term, _ := a.Term()

	// a is cut off now; b waits out the lease from t0.
	lock.fail = true
	for !b.try(t) {
		step(retry / 2)
		_, _ = a.TryAcquireOrRenew(context.Background())
	}
	at := b.clock.Since(epoch)
	if err := a.validTerm(term); err == nil {
		t.Errorf("TWO LEADERS: b took over at %v while a's recognised term (started %v) is valid until %v",
			at, term.Started.Sub(epoch), term.Started.Add(deadline).Sub(epoch))
	}
}

// TestForeignWritesDoNotKeepADeadLeader (found in review): a write of the
// lock object that leaves the record alone (a ConfigMap's data, a Lease's
// labels) is no renewal: a crashed leader is taken over a lease after its
// last renewal however often the object is written.
func TestForeignWritesDoNotKeepADeadLeader(t *testing.T) {
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	b := newCandidate(t, mem, "b", epoch)
	require.True(t, a.try(t))
	require.False(t, b.try(t))
	// a crashes; another program writes the object every 5s, the record
	// unchanged (here: the same bytes stored again, a new version).
	var elapsed time.Duration
	for !b.try(t) {
		require.Less(t, elapsed, lease+retry, "b has not taken over from the crashed leader")
		b.clock.Step(retry)
		elapsed += retry
		if elapsed%(5*time.Second) < retry {
			obs, err := mem.Get(context.Background())
			require.NoError(t, err)
			mem.Put(obs.Raw)
		}
	}
}

// TestWholeSecondLocksNeedADeadlineAboveASecond (found in review): on a
// lock that stores whole seconds, renewals within one second do not renew
// the term; New refuses a RenewDeadline with no room for the renewal after
// the next second and a retry.
func TestWholeSecondLocksNeedADeadlineAboveASecond(t *testing.T) {
	for _, tc := range []struct {
		lease, deadline, retry time.Duration
		ok                     bool
	}{
		{2 * time.Second, time.Second, 100 * time.Millisecond, false},
		{3 * time.Second, 1850 * time.Millisecond, 950 * time.Millisecond, false},
		{2 * time.Second, 1500 * time.Millisecond, 100 * time.Millisecond, true},
		{3 * time.Second, 2200 * time.Millisecond, 950 * time.Millisecond, true},
	} {
		_, err := New(Config{Lock: locks.NewMemoryLock("l"), Identity: "a", LeaseDuration: tc.lease, RenewDeadline: tc.deadline, RetryPeriod: tc.retry})
		if tc.ok {
			assert.NoError(t, err, "%v/%v/%v", tc.lease, tc.deadline, tc.retry)
		} else {
			assert.ErrorContains(t, err, "the lock memory/l stores times to 1s, renewals within one 1s do not renew the term", "%v/%v/%v", tc.lease, tc.deadline, tc.retry)
		}
	}
}

// TestHealthyLeaderKeepsItsTermOnWholeSeconds (found in review): with
// timings New accepts, a leader on a lock that stores whole seconds and
// skips a write that changes nothing (a ConfigMap on the API server) keeps
// its term while every request succeeds: after an unchanged renewal it
// renews again right after the next second.
func TestHealthyLeaderKeepsItsTermOnWholeSeconds(t *testing.T) {
	for _, timings := range [][3]time.Duration{
		{2 * time.Second, 1500 * time.Millisecond, 100 * time.Millisecond},
		{3 * time.Second, 2200 * time.Millisecond, 950 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(timings), func(t *testing.T) {
			noLeaks(t)
			lock := skippingLock{locks.NewMemoryLock("l")}
			_, err := lock.Create(context.Background(), locks.Record{})
			require.NoError(t, err)
			cancelled := make(chan time.Time, 1)
			var a *candidate
			a = newCandidate(t, lock, "a", epoch.Add(550*time.Millisecond), func(c *Config) {
				c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = timings[0], timings[1], timings[2]
				c.OnStartedLeading = func(ctx context.Context) {
					<-ctx.Done()
					cancelled <- a.clock.Now()
				}
			})
			a.run(t)
			waitFor(t, a.IsLeader, "a leads")
			for range 400 { // 20 s
				a.waitTimers(t, 2)
				a.clock.Step(50 * time.Millisecond)
				select {
				case at := <-cancelled:
					t.Fatalf("a healthy leader lost its term at %v", at.Sub(epoch))
				default:
				}
			}
		})
	}
}

// TestStopGivesUpWhileARenewalHangs: Stop(ctx) is documented to
// give up and return once ctx ends. A renewal in flight on a lock that
// ignores cancellation (stuckLock, as the chaos suite's stubborn lock) is
// joined by hold's deferred inflight.Wait whenever hold returns without
// gaveUp (the work returned after Stop's cancel, or the deadline passed),
// and giving up cannot interrupt that join: Stop waits <-done for ever.
func TestStopGivesUpWhileARenewalHangs(t *testing.T) {
	lock := newStuckLock(freeLock(t))
	a := newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() } // well-behaved work
	})
	hangARenewal(t, a, lock)
	t.Cleanup(lock.unstick) // runs before Run is joined

	stopGivesUp(t, a)
}
