package election

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// A real time.Time carries two clocks: the wall clock, which an NTP step
// or a VM restored from a snapshot moves, and the monotonic clock, which
// nothing moves. The fake clock has one reading; these tests step a
// candidate's wall clock through Election.wall, which renew times are read
// from, while its timers and deadlines follow the fake clock.

// stepWall makes c's wall clock read its monotonic clock plus *offset.
func stepWall(c *candidate, offset *atomic.Int64) {
	c.wall = func(t time.Time) time.Time { return t.Add(time.Duration(offset.Load())) }
}

// TestWallStepBackNeverRepeatsARecordAFollowerSaw (seventh review): on a
// lock of whole seconds, a leader whose wall clock stepped back 14.5s
// renews with renew times it already stored; at 15s its renewal would
// store, byte for byte, the record B saw at 0.1s before B was cut off. B,
// seeing no change for a lease, took over at 15.1s while A, whose renewals
// all changed the record from its last write, still led. A term's renew
// times now only grow: every renewal after the step stores a second past
// the last, and B sees a change.
//
//	t=0      A acquires: R0, renew time 12:00:00
//	t=0.1    B reads R0, and is cut off at 0.2
//	t=1      A's wall clock steps back 14.5s
//	t=3..15  A renews every 3s; at 15s its wall clock reads 12:00:00.5
//	t=15.1   B is back and reads the record
func TestWallStepBackNeverRepeatsARecordAFollowerSaw(t *testing.T) {
	mem := freeLock(t)
	followerCutOffWhileTheWallStepsBack(t, epoch, mem, mem, func(t time.Time, d time.Duration) time.Time { return t.Add(d) })
}

// followerCutOffWhileTheWallStepsBack runs the interleaving of
// TestWallStepBackNeverRepeatsARecordAFollowerSaw on mem, which a reaches
// as la, from start, with shift stepping a's wall-clock readings, and
// checks that b does not take over under a.
func followerCutOffWhileTheWallStepsBack(t *testing.T, start time.Time, mem *locks.MemoryLock, la locks.Lock, shift func(time.Time, time.Duration) time.Time) {
	t.Helper()
	lb := &faultLock{Lock: mem, res: mem.TimeResolution()}
	a := newCandidate(t, la, "a", start)
	b := newCandidate(t, lb, "b", start)
	var back atomic.Int64
	a.wall = func(t time.Time) time.Time { return shift(t, time.Duration(back.Load())) }
	step := func(d time.Duration) { a.clock.Step(d); b.clock.Step(d) }
	at := func() time.Duration { return a.clock.Now().Sub(start) }

	require.True(t, a.try(t), "a acquires at 0")
	r0, err := mem.Get(context.Background())
	require.NoError(t, err)
	step(100 * time.Millisecond)
	require.False(t, b.try(t), "b sees a's fresh lease")
	step(100 * time.Millisecond)
	lb.mode.Store(1) // cut off
	step(800 * time.Millisecond)
	back.Store(int64(-14500 * time.Millisecond))
	for _, renewAt := range []time.Duration{3, 6, 9, 12, 15} {
		step(renewAt*time.Second - at())
		require.True(t, a.try(t), "a renews at %v", at())
	}
	now, err := mem.Get(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, string(r0.Raw), string(now.Raw), "a stored again the record b saw at 0.1s")
	step(100 * time.Millisecond)
	lb.mode.Store(0)
	bLeads := b.try(t)
	assert.False(t, a.IsLeader() && bLeads, "two leaders at %v", at())
	assert.True(t, a.IsLeader(), "a's renewals kept its term")
}

// TestWallStepBackNeverRepeatsARecordAFollowerSawUnderRun is the same
// under Run, with the default renew interval: A's work is live and Valid
// when B would take over.
func TestWallStepBackNeverRepeatsARecordAFollowerSawUnderRun(t *testing.T) {
	mem := freeLock(t)
	lb := &faultLock{Lock: mem, res: mem.TimeResolution()}
	var workCtx atomic.Pointer[context.Context]
	a := newCandidate(t, mem, "a", epoch, func(cfg *Config) {
		cfg.OnStartedLeading = func(ctx context.Context) {
			workCtx.Store(&ctx)
			<-ctx.Done()
		}
	})
	b := newCandidate(t, lb, "b", epoch)
	var back atomic.Int64
	stepWall(a, &back)
	at := func() time.Duration { return a.clock.Now().Sub(epoch) }
	a.run(t)
	waitFor(t, func() bool { return workCtx.Load() != nil }, "a leads")
	idle := func() {
		waitFor(t, func() bool {
			n := a.clock.Waiters()
			return n >= 2 || (n >= 1 && (*workCtx.Load()).Err() != nil)
		}, "a idle")
	}
	stepTo := func(d time.Duration) {
		for at() < d {
			idle()
			a.clock.Step(100 * time.Millisecond)
			b.clock.Step(100 * time.Millisecond)
		}
	}
	stepTo(100 * time.Millisecond)
	require.False(t, b.try(t), "b sees a's fresh lease")
	lb.mode.Store(1)
	stepTo(time.Second)
	back.Store(int64(-14500 * time.Millisecond))
	stepTo(15100 * time.Millisecond)
	idle()
	lb.mode.Store(0)
	bLeads := b.try(t)
	ctx := *workCtx.Load()
	aWorks := ctx.Err() == nil && Valid(ctx) == nil
	assert.False(t, aWorks && bLeads, "two leaders at %v (renew interval %v)", at(), a.cfg.RenewInterval)
}

// TestWallStepBackNeverRepeatsARecordAFollowerMissedRenewalsOf is the
// narrower form that the code before the seventh review's had too: B
// misses A's counted renewals at 3s and 6s, A's wall clock steps back 15s
// at 9s, and A, renewing every second as it did after a renewal that left
// the renew time behind, stored R0's bytes again at 15.01s, inside its
// deadline from 6s; B took over at 15.1s.
func TestWallStepBackNeverRepeatsARecordAFollowerMissedRenewalsOf(t *testing.T) {
	mem := freeLock(t)
	lb := &faultLock{Lock: mem, res: mem.TimeResolution()}
	a := newCandidate(t, mem, "a", epoch)
	b := newCandidate(t, lb, "b", epoch)
	var back atomic.Int64
	stepWall(a, &back)
	step := func(d time.Duration) { a.clock.Step(d); b.clock.Step(d) }
	at := func() time.Duration { return a.clock.Now().Sub(epoch) }
	require.True(t, a.try(t))
	r0, err := mem.Get(context.Background())
	require.NoError(t, err)
	step(100 * time.Millisecond)
	require.False(t, b.try(t))
	lb.mode.Store(1)
	for _, renewAt := range []time.Duration{3000, 6000, 9000, 10010, 11010, 12010, 13010, 14010, 15010} {
		if renewAt == 9000 {
			back.Store(int64(-15 * time.Second))
		}
		step(renewAt*time.Millisecond - at())
		a.try(t)
	}
	now, err := mem.Get(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, string(r0.Raw), string(now.Raw), "a stored again the record b saw at 0.1s")
	step(15100*time.Millisecond - at())
	lb.mode.Store(0)
	bLeads := b.try(t)
	assert.False(t, a.IsLeader() && bLeads, "two leaders at %v", at())
}

// TestWallClockStepBackKeepsTheTerm: after the leader's wall clock steps
// back by more than the renew deadline, its renewals must still count:
// before, a renewal counted only when the stored renew time moved past the
// last one, so the leader wrote every 10ms until its wall clock caught up
// and lost a healthy term at the deadline. Its renew times now step past
// the last stored one, on a Lease's microseconds and on whole seconds,
// renewing about once per renew interval.
func TestWallClockStepBackKeepsTheTerm(t *testing.T) {
	const retry, deadline = 2 * time.Second, 10 * time.Second
	for _, lk := range []struct {
		name string
		res  time.Duration
	}{{"microseconds", time.Microsecond}, {"seconds", time.Second}} {
		for _, back := range []time.Duration{8 * time.Second, 12 * time.Second} {
			t.Run(fmt.Sprintf("%s/back=%v", lk.name, back), func(t *testing.T) {
				var lock locks.Lock = &microLock{}
				if lk.res == time.Second {
					lock = freeLock(t)
				}
				counted := &countingLock{Lock: lock, res: lk.res}
				c := newCandidate(t, counted, "a", epoch, func(cfg *Config) {
					cfg.RetryPeriod, cfg.RenewDeadline = retry, deadline
					cfg.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() }
				})
				var offset atomic.Int64
				stepWall(c, &offset)
				ri := c.cfg.RenewInterval
				c.run(t)
				waitFor(t, c.IsLeader, "leader")
				var ended time.Duration
				stepped := false
				for now := time.Duration(0); now < ri+deadline+time.Second; now = c.clock.Now().Sub(epoch) {
					if !stepped && now > ri+100*time.Millisecond { // just after the first renewal
						offset.Store(int64(-back))
						counted.updates.Store(0)
						stepped = true
					}
					if ended == 0 && !c.IsLeader() {
						ended = now
					}
					waitFor(t, func() bool { return c.clock.Waiters() >= 2 || !c.IsLeader() }, "hold loop idle")
					c.clock.Step(10 * time.Millisecond)
				}
				t.Logf("renew interval %v, wall clock back %v: %d writes after the step; term ended at %v (0: never)",
					ri, back, counted.updates.Load(), ended)
				assert.Zero(t, ended, "a healthy leader's term ended")
				assert.Less(t, int(counted.updates.Load()), 10, "renewals after the step (a renewal every %v would make %d)", ri, int(deadline/ri)+1)
			})
		}
	}
}

// countingLock counts Updates and keeps the lock's time resolution.
type countingLock struct {
	locks.Lock
	res     time.Duration
	updates atomic.Int32
}

func (l *countingLock) TimeResolution() time.Duration { return l.res }

func (l *countingLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	l.updates.Add(1)
	return l.Lock.Update(ctx, version, r)
}

// TestSlowAcquisitionKeepsTheFirstTerm (seventh review): every write
// answered after 3s at 10s/2s. The deadline counts from the acquiring
// write's start; the first renewal was timed from the answer (hold's start),
// a renew interval later, and its answer came after the deadline: every
// term ended at 10s. It is now timed from the write's start, as later
// renewals are (TestSlowRenewalsDoNotEndTheTerm).
func TestSlowAcquisitionKeepsTheFirstTerm(t *testing.T) {
	const retry, deadline, latency = 2 * time.Second, 10 * time.Second, 3 * time.Second
	sl := &slowLock{Lock: freeLock(t)}
	c := newCandidate(t, sl, "a", epoch, func(cfg *Config) {
		cfg.RetryPeriod, cfg.RenewDeadline = retry, deadline
		cfg.OnStartedLeading = func(ctx context.Context) { <-ctx.Done() }
	})
	sl.clock = c.clock
	sl.latency.Store(int64(latency)) // the acquisition's too
	c.run(t)
	var led, ended time.Duration
	for now := time.Duration(0); now < 3*deadline; now = c.clock.Now().Sub(epoch) {
		if led == 0 && c.IsLeader() {
			led = now
		}
		if led != 0 && ended == 0 && !c.IsLeader() {
			ended = now
		}
		waitFor(t, func() bool {
			return c.clock.Waiters() >= 2 || (led != 0 && !c.IsLeader()) || (led == 0 && c.clock.Waiters() >= 1)
		}, "idle")
		c.clock.Step(10 * time.Millisecond)
	}
	t.Logf("renew interval %v, every write answered after %v: led from %v, term ended at %v (0: never)", c.cfg.RenewInterval, latency, led, ended)
	assert.NotZero(t, led, "never led")
	assert.Zero(t, ended, "writes %v slow, none failing, ended the term", latency)
}

// shiftWallOnly returns t with its wall-clock reading moved by d and its
// monotonic reading kept: what time.Now() returns after the system clock
// was stepped by d. The public API cannot build such a value (Add moves
// both readings), so this rewrites time.Time's wall field: with
// hasMonotonic set it holds 33 bits of seconds since 1885 above 30 bits of
// nanoseconds (the layout of Go's time.Time, checked by TestShiftWallOnly).
func shiftWallOnly(t time.Time, d time.Duration) time.Time {
	type timeLayout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	const hasMonotonic, nsecShift, nsecMask = 1 << 63, 30, 1<<30 - 1
	p := (*timeLayout)(unsafe.Pointer(&t))
	if p.wall&hasMonotonic == 0 {
		panic("shiftWallOnly: t has no monotonic reading")
	}
	total := int64(p.wall<<1>>(nsecShift+1))*1e9 + int64(p.wall&nsecMask) + int64(d)
	p.wall = hasMonotonic | uint64(total/1e9)<<nsecShift | uint64(total%1e9)
	return t
}

func TestShiftWallOnly(t *testing.T) {
	now := time.Now()
	back := shiftWallOnly(now, -14500*time.Millisecond)
	assert.Zero(t, back.Sub(now), "monotonic readings equal")
	assert.Equal(t, -14500*time.Millisecond, back.Round(0).Sub(now.Round(0)), "wall readings 14.5s apart")
	assert.True(t, back.After(now.Add(-time.Nanosecond)), "After compares the monotonic readings: the stepped-back reading is not before")
}

// givenLock is a memory lock whose writes answer with the record they
// were given, as a custom lock may (against Observed's contract, which
// lockstest cannot check at whole seconds): Raw is what was stored, Record
// the caller's own value, monotonic readings and all.
type givenLock struct{ *locks.MemoryLock }

func (l givenLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	obs, err := l.MemoryLock.Update(ctx, version, r)
	if err == nil {
		obs.Record = r
	}
	return obs, err
}

func (l givenLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	obs, err := l.MemoryLock.Create(ctx, r)
	if err == nil {
		obs.Record = r
	}
	return obs, err
}

// TestWallStepBackWithMonotonicReadings (eighth review): the seventh
// review's interleaving (TestWallStepBackNeverRepeatsARecordAFollowerSaw)
// with real time.Time readings, which carry a monotonic reading that the
// wall clock's step leaves alone, on a lock that answers with the record
// it was given. Comparing the renew times with their monotonic readings
// took the stepped-back wall clock for later than the last renew time, so
// renew times went back and a renewal stored R0's bytes again.
func TestWallStepBackWithMonotonicReadings(t *testing.T) {
	for _, given := range []bool{false, true} {
		t.Run(fmt.Sprintf("records as given=%v", given), func(t *testing.T) {
			start := time.Now() // a monotonic reading, as the real clock's
			start = start.Add(-time.Duration(start.Nanosecond()))
			require.NotEqual(t, start.String(), start.Round(0).String(), "the fake clock's readings carry a monotonic reading")
			mem := freeLock(t)
			var la locks.Lock = mem
			if given {
				la = givenLock{mem}
			}
			followerCutOffWhileTheWallStepsBack(t, start, mem, la, shiftWallOnly)
		})
	}
}

// faultLock is a lock as one candidate reaches it, in one of three modes:
// reached, cut off (every request fails before reaching it), or answers
// lost (writes land, their answers fail). It keeps the lock's resolution.
type faultLock struct {
	locks.Lock
	res  time.Duration
	mode atomic.Int32 // 0 reached, 1 cut off, 2 answers lost
}

func (l *faultLock) TimeResolution() time.Duration { return l.res }

func (l *faultLock) Get(ctx context.Context) (locks.Observed, error) {
	if l.mode.Load() != 0 {
		return locks.Observed{}, errInjected
	}
	return l.Lock.Get(ctx)
}

func (l *faultLock) answer(obs locks.Observed, err error) (locks.Observed, error) {
	if l.mode.Load() == 2 {
		return locks.Observed{}, errInjected
	}
	return obs, err
}

func (l *faultLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if l.mode.Load() == 1 {
		return locks.Observed{}, errInjected
	}
	return l.answer(l.Lock.Update(ctx, version, r))
}

func (l *faultLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	if l.mode.Load() == 1 {
		return locks.Observed{}, errInjected
	}
	return l.answer(l.Lock.Create(ctx, r))
}

// faultAnnotator is a faultLock of a lock that keeps annotations, so that
// its candidate hands over.
type faultAnnotator struct{ *faultLock }

func (l faultAnnotator) Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	if l.mode.Load() == 1 {
		return locks.Observed{}, errInjected
	}
	return l.answer(l.Lock.(annotator).Annotate(ctx, version, r, set))
}

// TestWallStepsAndPartitions drives three candidates on one lock, step by
// step every 10ms for five minutes of fake time, through random faults:
// each candidate's wall clock steps back or forward by up to two leases;
// each is cut off from the lock, or has the answers of its writes lost
// (they land), for up to two leases; a wall step together with another
// candidate cut off (the seventh review's interleaving: a follower that
// last saw a record before it was cut off, a leader whose renew times come
// back to it); a coordinator asks for moves and withdraws them; terms end
// with a release or a hand-over, as Run's do (from the eighth review).
// Leaders renew at random within the renew deadline, sometimes too late;
// followers try every retry period or so. At every step at most one
// candidate may be leader. On a lock of whole seconds and on one of
// microseconds, for several seeds.
func TestWallStepsAndPartitions(t *testing.T) {
	const (
		lease    = 3 * time.Second
		deadline = 2 * time.Second
		retry    = 300 * time.Millisecond
		tick     = 10 * time.Millisecond
		length   = 5 * time.Minute
	)
	for _, kind := range []string{"seconds", "microseconds"} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("%s/seed=%d", kind, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 8))
				random := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max))) }
				var shared locks.Lock
				var mem *locks.MemoryLock
				res := time.Second
				if kind == "seconds" {
					mem = freeLock(t)
					shared = mem
				} else {
					shared, res = &microLock{}, time.Microsecond
				}
				type cand struct {
					*candidate
					lock                        *faultLock
					offset                      atomic.Int64
					next, faultUntil, nextFault time.Duration
				}
				var cs []*cand
				ids := []string{"a", "b", "c"}
				for _, id := range ids {
					c := &cand{lock: &faultLock{Lock: shared, res: res}}
					var l locks.Lock = c.lock
					if mem != nil {
						l = faultAnnotator{c.lock}
					}
					c.candidate = newCandidate(t, l, id, epoch.Add(time.Duration(rng.Int64N(1e9))), func(cfg *Config) {
						cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = lease, deadline, retry
					})
					stepWall(c.candidate, &c.offset)
					c.nextFault = random(2 * lease)
					cs = append(cs, c)
				}
				var overlaps, terms, handed int
				nextMove := random(lease)
				for now := time.Duration(0); now < length; now += tick {
					if mem != nil && now >= nextMove { // a coordinator asks for a move, or withdraws it
						if obs, err := mem.Get(context.Background()); err == nil {
							to := ids[rng.IntN(3)]
							if rng.IntN(3) == 0 {
								to = ""
							}
							_, _ = mem.Annotate(context.Background(), obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to})
						}
						nextMove = now + random(4*lease)
					}
					for _, c := range cs {
						if now >= c.nextFault {
							switch rng.IntN(4) {
							case 0:
								d := random(2 * lease)
								if rng.IntN(4) == 0 {
									d = -d
								}
								c.offset.Add(int64(-d))
							case 1:
								c.lock.mode.Store(1)
								c.faultUntil = now + random(2*lease)
							case 2:
								c.lock.mode.Store(2)
								c.faultUntil = now + random(lease)
							case 3:
								c.offset.Add(-int64(lease + random(lease)))
								for _, o := range cs {
									if o != c && o.faultUntil < now {
										o.lock.mode.Store(1)
										o.faultUntil = now + lease + random(lease)
										break
									}
								}
							}
							c.nextFault = now + lease + random(4*lease)
						}
						if now >= c.faultUntil {
							c.lock.mode.Store(0)
						}
						if now < c.next {
							continue
						}
						wasLeader := c.IsLeader()
						if wasLeader && rng.IntN(40) == 0 { // the work returned: release or hand over, as Run does
							c.Election.mu.Lock()
							c.holding = false
							c.Election.mu.Unlock()
							if h, _ := c.release(context.Background()); h {
								handed++
							}
							c.next = now + retry/2 + random(retry)
							continue
						}
						c.try(t)
						if c.IsLeader() {
							if !wasLeader {
								terms++
							}
							c.next = now + retry/2 + random(deadline)
						} else {
							c.next = now + retry/2 + random(retry)
						}
					}
					var leaders []string
					for _, c := range cs {
						if c.IsLeader() {
							leaders = append(leaders, c.cfg.Identity)
						}
					}
					if len(leaders) > 1 {
						overlaps++
						if overlaps <= 3 {
							t.Errorf("at %v: %v all lead", now, leaders)
						}
					}
					for _, c := range cs {
						c.clock.Step(tick)
					}
				}
				t.Logf("%d terms, %d hand-overs, %d steps with two leaders", terms, handed, overlaps)
				assert.Zero(t, overlaps, "steps with two leaders")
				assert.Greater(t, terms, 20, "too few terms to have tried anything")
			})
		}
	}
}
