package election

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

func TestNewValidatesConfig(t *testing.T) {
	lock := freeLock(t)
	valid := Config{Lock: lock, Identity: "a", LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no lock", func(c *Config) { c.Lock = nil }, "Lock is required"},
		{"no identity", func(c *Config) { c.Identity = "" }, "election l: Identity is empty and the lock memory/l has none"},
		{"zero lease", func(c *Config) { c.LeaseDuration = 0 }, "LeaseDuration 0s must be positive"},
		{"negative deadline", func(c *Config) { c.RenewDeadline = -time.Second }, "RenewDeadline -1s must be positive"},
		{"zero retry", func(c *Config) { c.RetryPeriod = 0 }, "RetryPeriod 0s must be positive"},
		{"lease not above deadline", func(c *Config) { c.LeaseDuration = deadline }, "LeaseDuration 10s must exceed RenewDeadline 10s"},
		{"deadline too close to retry", func(c *Config) { c.RetryPeriod = 9 * time.Second }, "RenewDeadline 10s must exceed RetryPeriod 9s × 1.2 = 10.8s"},
		{"huge lease", func(c *Config) { c.LeaseDuration = 100 * 365 * 24 * time.Hour }, "exceeds the maximum"},
		{"identity too long", func(c *Config) { c.Identity = strings.Repeat("x", maxIdentityLength+1) }, "election l: Identity is 1025 bytes long, more than the maximum 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.mutate(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	e, err := New(valid)
	require.NoError(t, err)
	assert.Equal(t, "l", e.cfg.Name, "Name defaults to the lock's name")
}

type identityLock struct{ *locks.MemoryLock }

func (identityLock) Identity() string { return "from-lock" }

func TestIdentityDefaultsToTheLocks(t *testing.T) {
	e, err := New(Config{Lock: identityLock{locks.NewMemoryLock("l")}, LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry})
	require.NoError(t, err)
	assert.Equal(t, "from-lock", e.cfg.Identity)
}

func TestFirstCandidateAcquiresAFreeLock(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	assert.True(t, a.IsLeader())
	assert.Equal(t, "a", a.Leader())
	term, ok := a.Term()
	require.True(t, ok)
	assert.Equal(t, Term{Election: "test", Identity: "a", FencingToken: 1, Started: epoch}, term)
	rec := holderOf(t, lock)
	assert.Equal(t, "a", rec.HolderIdentity)
	assert.Equal(t, lease, rec.LeaseDuration)
	assert.Equal(t, []string{"a"}, a.newLeaders())
}

// TestMissingLockIsCreatedAfterALease: a candidate cannot tell a lock
// that never existed from one deleted under a leader that has not noticed
// yet, so it creates a missing lock only after a lease.
func TestMissingLockIsCreatedAfterALease(t *testing.T) {
	lock := locks.NewMemoryLock("l")
	a := newCandidate(t, lock, "a", epoch)
	require.False(t, a.try(t))
	a.clock.Step(lease - time.Millisecond)
	require.False(t, a.try(t))
	a.clock.Step(time.Millisecond)
	require.True(t, a.try(t))
	rec := holderOf(t, lock)
	assert.Equal(t, "a", rec.HolderIdentity)
	assert.Equal(t, int32(0), rec.LeaderTransitions, "the first term of a lock nobody has seen")
}

// TestExpiryIsJudgedOnTheLocalClock runs candidates whose clocks disagree
// by decades: the follower waits exactly one lease on its own clock from
// when it first saw the record, whatever the record's timestamps say.
func TestExpiryIsJudgedOnTheLocalClock(t *testing.T) {
	for _, skew := range []time.Duration{0, -20 * 365 * 24 * time.Hour, 20 * 365 * 24 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			lock := freeLock(t)
			a := newCandidate(t, lock, "a", epoch.Add(skew))
			b := newCandidate(t, lock, "b", epoch)
			require.True(t, a.try(t))

			require.False(t, b.try(t), "a's lease is fresh")
			assert.Equal(t, "a", b.Leader())
			b.clock.Step(lease - time.Millisecond)
			require.False(t, b.try(t), "one lease has not passed on b's clock")
			b.clock.Step(time.Millisecond)
			require.True(t, b.try(t), "one lease has passed on b's clock since b saw the record")
			assert.Equal(t, int32(2), holderOf(t, lock).LeaderTransitions)
		})
	}
}

func TestExpiryRestartsWhenTheRecordChanges(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	require.True(t, a.try(t))
	require.False(t, b.try(t)) // b first sees the record at 0s

	a.clock.Step(9 * time.Second)
	require.True(t, a.try(t), "a renews")
	b.clock.Step(12 * time.Second)
	require.False(t, b.try(t), "b sees the renewal at 12s")
	b.clock.Step(lease - time.Millisecond)
	require.False(t, b.try(t), "a lease from 12s has not passed")
	b.clock.Step(time.Millisecond)
	require.True(t, b.try(t))
}

func TestReleasedLockIsTakenAtOnce(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	require.True(t, a.try(t))
	require.False(t, b.try(t))
	release(t, a.Election)
	rec := holderOf(t, lock)
	assert.Empty(t, rec.HolderIdentity)
	assert.Equal(t, time.Second, rec.LeaseDuration, "released as client-go does")
	assert.Equal(t, int32(1), rec.LeaderTransitions, "a release is no transition")
	require.True(t, b.try(t), "a released lock is free at once")
	assert.Equal(t, int32(2), holderOf(t, lock).LeaderTransitions)
}

func TestTransitionsCountChangesOfHolder(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	var tokens []int32
	token := func(c *candidate) {
		term, ok := c.Term()
		require.True(t, ok)
		tokens = append(tokens, term.FencingToken)
	}

	require.True(t, a.try(t))
	token(a)
	for range 3 {
		require.True(t, a.try(t), "renewal")
	}
	assert.Equal(t, int32(1), holderOf(t, lock).LeaderTransitions, "renewals are no transitions")
	release(t, a.Election)
	a.lose(a.clock.Now(), "test")
	a.mu.Lock()
	a.holding = false
	a.mu.Unlock()

	require.True(t, b.try(t))
	token(b)
	require.True(t, b.try(t))

	// b goes silent; a takes over after a lease.
	require.False(t, a.try(t))
	a.clock.Step(lease)
	require.True(t, a.try(t))
	token(a)
	assert.Equal(t, []int32{1, 2, 3}, tokens, "each new holder's fencing token is one more")
}

func TestRacingCandidatesHaveOneWinner(t *testing.T) {
	lock := freeLock(t)
	first := newCandidate(t, lock, "first", epoch)
	require.True(t, first.try(t))
	release(t, first.Election)

	var cands []*candidate
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		c := newCandidate(t, lock, id, epoch)
		require.False(t, c.try(t) && false)
		cands = append(cands, c)
	}
	// They have all read the released record; now they race to write it.
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, c := range cands {
		wg.Go(func() {
			<-start
			if c.try(t) {
				wins.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Equal(t, int32(1), wins.Load(), "exactly one candidate wins")
	winner := holderOf(t, lock).HolderIdentity
	for _, c := range cands {
		if c.cfg.Identity == winner {
			continue
		}
		assert.False(t, c.IsLeader())
		assert.False(t, c.try(t), "the loser re-reads and follows")
		assert.Equal(t, winner, c.Leader())
	}
}

func TestCorruptedRecordIsTakenOverAfterALease(t *testing.T) {
	lock := freeLock(t)
	garbage := []byte(`{"holderIdentity":"x","leaseDurationSeconds":"banana"}`)
	lock.Put(garbage)
	b := newCandidate(t, lock, "b", epoch)

	ok, err := b.TryAcquireOrRenew(context.Background())
	require.False(t, ok)
	require.ErrorIs(t, err, locks.ErrInvalidRecord)
	assert.Contains(t, err.Error(), "leaseDurationSeconds")

	b.clock.Step(lease - time.Second)
	lock.Put(garbage) // rewritten unchanged: the same record, the wait goes on
	require.False(t, b.try(t))
	b.clock.Step(time.Second)
	require.True(t, b.try(t), "unchanged for a whole lease of b's own")
	assert.Equal(t, "b", holderOf(t, lock).HolderIdentity)
}

func TestChangingCorruptedRecordRestartsTheWait(t *testing.T) {
	lock := freeLock(t)
	lock.Put([]byte(`not json 1`))
	b := newCandidate(t, lock, "b", epoch)
	require.False(t, b.try(t))
	b.clock.Step(lease - time.Second)
	lock.Put([]byte(`not json 2`)) // somebody is writing it: it may be alive
	require.False(t, b.try(t))
	b.clock.Step(lease - time.Second)
	require.False(t, b.try(t))
	b.clock.Step(time.Second)
	require.True(t, b.try(t))
}

func TestSameIdentityElsewhereIsNotTakenAsOwn(t *testing.T) {
	lock := freeLock(t)
	a1 := newCandidate(t, lock, "a", epoch)
	a2 := newCandidate(t, lock, "a", epoch)
	require.True(t, a1.try(t))
	require.False(t, a2.try(t), "a record with our identity that we did not acquire is someone else's")
	a2.clock.Step(lease)
	require.True(t, a2.try(t), "after a lease it is taken over as any other")
	ok, err := a1.TryAcquireOrRenew(context.Background())
	require.False(t, ok, "the first holder sees the new term and steps down")
	require.NoError(t, err)
}

func TestDeletedLockMakesTheLeaderStepDown(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	require.True(t, a.try(t))
	require.False(t, b.try(t))

	lock.Delete()
	ok, err := a.TryAcquireOrRenew(context.Background())
	require.False(t, ok)
	require.ErrorIs(t, err, locks.ErrNotFound)
	assert.False(t, a.IsLeader())

	require.False(t, b.try(t), "b saw a hold it: it waits a lease before re-creating")
	b.clock.Step(lease - time.Millisecond)
	require.False(t, b.try(t))
	b.clock.Step(time.Millisecond)
	require.True(t, b.try(t))
	assert.Equal(t, int32(2), holderOf(t, lock).LeaderTransitions, "the fencing token keeps growing across the re-creation")
}

// TestWorkIsCancelledAtTheRenewDeadline: with every renewal failing, the
// leader work's context is cancelled exactly RenewDeadline after the start
// of the last successful write, while another candidate that saw that
// write still considers the lease valid; renewal was retried every
// RetryPeriod until then.
func TestWorkIsCancelledAtTheRenewDeadline(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	lock := &testLock{Lock: mem}
	cancelledAt := make(chan time.Time, 1)
	var a *candidate
	a = newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			<-ctx.Done()
			cancelledAt <- a.clock.Now()
		}
	})
	b := newCandidate(t, mem, "b", epoch)
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	require.False(t, b.try(t), "b sees a's first write at 0s")
	lock.failUpdates.Store(true)

	for i := 1; i <= 3; i++ { // renewals at 3s, 6s, 9s fail
		a.waitTimers(t, 2)
		a.clock.Step(retry)
		waitFor(t, func() bool { return lock.updates.Load() == int32(i+1) /* +1: the acquisition */ }, "renewal attempt")
	}
	a.waitTimers(t, 2)
	require.True(t, a.IsLeader(), "9s: still within the deadline")
	a.clock.Step(deadline - 3*retry - time.Millisecond)
	a.waitTimers(t, 2)
	require.True(t, a.IsLeader(), "just before the deadline")
	a.clock.Step(time.Millisecond)
	select {
	case at := <-cancelledAt:
		assert.Equal(t, epoch.Add(deadline), at, "cancelled at the deadline")
	case <-time.After(10 * time.Second):
		t.Fatal("leader work not cancelled at the renew deadline")
	}
	assert.False(t, a.IsLeader())
	b.clock.Step(deadline)
	require.False(t, b.try(t), "when a stops, b does not yet consider the lease expired")
	waitFor(t, func() bool { return a.stoppedLeading() == 1 }, "OnStoppedLeading")
}

// TestHungRenewalDoesNotDelayTheDeadline: a renewal request that never
// answers does not keep the term alive.
func TestHungRenewalDoesNotDelayTheDeadline(t *testing.T) {
	noLeaks(t)
	lock := &testLock{Lock: freeLock(t)}
	cancelled := make(chan struct{})
	a := newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			<-ctx.Done()
			lock.hangUpdates.Store(false) // the API server answers again
			close(cancelled)
		}
	})
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	lock.hangUpdates.Store(true)
	a.waitTimers(t, 2)
	a.clock.Step(retry) // the renewal hangs
	a.waitTimers(t, 1)  // only the deadline is armed while it hangs
	a.clock.Step(deadline - retry)
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("a hung renewal kept the leader work running past the deadline")
	}
	waitFor(t, func() bool { return a.stoppedLeading() == 1 }, "the term ends")
	assert.Empty(t, holderOf(t, lock).HolderIdentity, "released once the work returned")
}

// TestReleaseWaitsForTheLeaderWork: Stop cancels the work, which takes its
// time to finish; the lock stays held until it has returned, then is
// released so that a standby leads at once.
func TestReleaseWaitsForTheLeaderWork(t *testing.T) {
	noLeaks(t)
	lock := freeLock(t)
	finish := make(chan struct{})
	workCancelled := make(chan struct{})
	a := newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			<-ctx.Done()
			close(workCancelled)
			<-finish // cleaning up
		}
	})
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	stopped := make(chan struct{})
	go func() {
		assert.NoError(t, a.Stop(context.Background()))
		close(stopped)
	}()
	<-workCancelled
	assert.Equal(t, "a", holderOf(t, lock).HolderIdentity, "held while the work finishes")
	select {
	case <-stopped:
		t.Fatal("Stop returned before the leader work did")
	default:
	}
	close(finish)
	<-stopped
	assert.Empty(t, holderOf(t, lock).HolderIdentity, "released after the work returned")
	b := newCandidate(t, lock, "b", epoch)
	require.True(t, b.try(t))
	assert.Equal(t, 1, a.stoppedLeading())
}

func TestKeepLeaseOnStop(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch, func(c *Config) { c.KeepLeaseOnStop = true })
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	require.NoError(t, a.Stop(context.Background()))
	assert.Equal(t, "a", holderOf(t, lock).HolderIdentity)
	assert.ErrorIs(t, a.Run(context.Background()), ErrStopped)
}

func TestReleaseLeavesAnotherHoldersRecord(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	raw, err := locks.Record{HolderIdentity: "x", LeaseDuration: lease, LeaderTransitions: 2}.Encode()
	require.NoError(t, err)
	lock.Put(raw)
	release(t, a.Election)
	assert.Equal(t, "x", holderOf(t, lock).HolderIdentity, "never overwrite someone else's record")
}

func TestReleaseRetriesAConflictOnItsOwnRecord(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	// Our record, rewritten (an edit, or our own write whose answer was
	// lost): new version, same holder and term.
	raw, err := locks.Record{HolderIdentity: "a", LeaseDuration: lease, RenewTime: epoch.Add(time.Second), LeaderTransitions: 1}.Encode()
	require.NoError(t, err)
	lock.Put(raw)
	release(t, a.Election)
	assert.Empty(t, holderOf(t, lock).HolderIdentity)
}

func TestStoppedLeadingOnlyAfterLeading(t *testing.T) {
	noLeaks(t)
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	b := newCandidate(t, lock, "b", epoch)
	b.run(t)
	b.waitTimers(t, 1) // campaigning, waiting to retry
	require.NoError(t, b.Stop(context.Background()))
	assert.Zero(t, b.stoppedLeading(), "b never led")
	assert.Equal(t, []string{"a"}, b.newLeaders())
}

func TestNewLeaderIsAnnouncedOncePerChange(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	require.True(t, a.try(t))
	require.False(t, b.try(t))
	require.True(t, a.try(t)) // renewals change nothing
	require.False(t, b.try(t))
	release(t, a.Election)
	require.True(t, b.try(t))
	require.True(t, b.try(t))
	assert.Equal(t, []string{"a", "b"}, b.newLeaders())
	assert.Equal(t, []string{"a"}, a.newLeaders())
}

// TestLeaderWorkThatEndsEndsTheTerm: leader work that panics or returns
// ends the term; the lock is released and the candidate campaigns again
// with a new term.
func TestLeaderWorkThatEndsEndsTheTerm(t *testing.T) {
	for _, tc := range []struct {
		name string
		work func(ctx context.Context)
	}{
		{"returns", func(context.Context) {}},
		{"panics", func(context.Context) { panic("boom") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			lock := freeLock(t)
			var terms atomic.Int32
			var tokens sync.Map
			a := newCandidate(t, lock, "a", epoch, func(c *Config) {
				c.OnStartedLeading = func(ctx context.Context) {
					term, _ := TermFromContext(ctx)
					tokens.Store(terms.Add(1), term.FencingToken)
					if terms.Load() == 1 {
						tc.work(ctx)
						return
					}
					<-ctx.Done()
				}
			})
			a.run(t)
			waitFor(t, func() bool { return a.stoppedLeading() == 1 }, "the first term ends")
			assert.Empty(t, holderOf(t, lock).HolderIdentity, "released")
			a.waitTimers(t, 1)
			a.clock.Step(retry) // back-off before campaigning again
			waitFor(t, func() bool { _, ok := tokens.Load(int32(2)); return ok }, "a second term")
			first, _ := tokens.Load(int32(1))
			second, _ := tokens.Load(int32(2))
			assert.Equal(t, int32(1), first)
			assert.Equal(t, int32(2), second)
		})
	}
}

func TestRunTwiceAtOnceFails(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	err := a.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already running")
}

func TestCallbackPanicsAreContained(t *testing.T) {
	lock := freeLock(t)
	e, err := New(Config{
		Lock: lock, Identity: "a", LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnNewLeader: func(string) { panic("boom") },
	})
	require.NoError(t, err)
	ok, err := e.TryAcquireOrRenew(context.Background())
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestCheckFailsForALeaderCutOffFromItsLock(t *testing.T) {
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	b := newCandidate(t, mem, "b", epoch)
	const margin = time.Second
	require.True(t, a.try(t))
	require.False(t, b.try(t))
	require.NoError(t, a.Check(margin))

	a.clock.Step(deadline + margin + time.Millisecond)
	b.clock.Step(deadline + margin + time.Millisecond)
	require.EqualError(t, a.Check(margin), "election test: no successful call to memory/l for 11.001s (renew deadline 10s)")
	require.NoError(t, b.Check(margin), "a follower is not at fault")
	held, err := a.TryAcquireOrRenew(context.Background())
	require.ErrorIs(t, err, ErrNotLeader, "the term ended at its renew deadline")
	require.False(t, held)
	require.Error(t, a.Check(margin), "cut off since it lost its term")
	require.False(t, a.try(t), "an attempt that reaches the lock")
	require.NoError(t, a.Check(margin), "healthy again once an attempt succeeds")
}

// TestReleaseWakesAFollowerAtOnce: on a lock that reports changes, a
// follower campaigns as soon as the leader releases, without waiting for
// its next poll (the fake clock does not move).
func TestReleaseWakesAFollowerAtOnce(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	require.True(t, a.try(t))
	b := newCandidate(t, mem, "b", epoch)
	b.run(t)
	waitFor(t, func() bool { return b.Leader() == "a" }, "b sees a")
	b.waitTimers(t, 1)
	release(t, a.Election)
	waitFor(t, b.IsLeader, "b leads without its clock moving")
}

// TestFollowerTakesOverAtLocalExpiry: a follower wakes when the lease it
// observes expires, not at its next poll after that.
func TestFollowerTakesOverAtLocalExpiry(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	a := newCandidate(t, &testLock{Lock: mem}, "a", epoch) // no change reports
	require.True(t, a.try(t))
	b := newCandidate(t, &testLock{Lock: mem}, "b", epoch)
	b.run(t)
	waitFor(t, func() bool { return b.Leader() == "a" }, "b sees a")
	// Polls every retry (3s); the lease (15s) ends between two polls.
	for b.clock.Since(epoch) < lease-retry {
		b.waitTimers(t, 1)
		b.clock.Step(retry)
	}
	b.waitTimers(t, 1)
	require.False(t, b.IsLeader())
	b.clock.Step(epoch.Add(lease).Sub(b.clock.Now()) - time.Millisecond)
	b.waitTimers(t, 1)
	require.False(t, b.IsLeader(), "just before the lease ends")
	b.clock.Step(time.Millisecond)
	waitFor(t, b.IsLeader, "b leads when the lease ends")
	assert.Equal(t, epoch.Add(lease), b.clock.Now())
}

// TestValidSeesTheDeadlineOnTheClock: after a freeze longer than the renew
// deadline, Valid fails at once, whatever the order in which the timers
// then run.
func TestValidSeesTheDeadlineOnTheClock(t *testing.T) {
	noLeaks(t)
	lock := &testLock{Lock: freeLock(t)}
	workCtx := make(chan context.Context, 1)
	a := newCandidate(t, lock, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			workCtx <- ctx
			<-ctx.Done()
		}
	})
	a.run(t)
	ctx := <-workCtx
	require.NoError(t, Valid(ctx))
	lock.hangUpdates.Store(true) // the process is frozen: nothing answers
	a.clock.Step(deadline)
	err := Valid(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNotLeader) || errors.Is(err, context.Canceled), "%v", err)
	require.ErrorIs(t, Valid(context.Background()), ErrNotLeader, "no term in the context")
	lock.hangUpdates.Store(false)
}

// TestUnreachableLockIsRetriedWithBackoff: once the observed lease has
// expired, failing attempts are not retried at once (a busy loop against
// a down API server) but after RetryPeriod, doubling per failure up to
// MaxErrorBackoff RetryPeriods or the lease; a success resets it.
func TestUnreachableLockIsRetriedWithBackoff(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	b := newCandidate(t, mem, "b", epoch)
	require.True(t, b.try(t))
	lock := &testLock{Lock: mem}
	a := newCandidate(t, lock, "a", epoch)
	require.False(t, a.try(t))
	a.clock.Step(lease) // b's lease has expired on a's clock
	lock.failUpdates.Store(true)
	a.run(t)

	waitFor(t, func() bool { return lock.updates.Load() == 1 }, "the first take-over fails")
	maxBackoff := min(maxErrorBackoff*retry, lease)
	for i, wait := range []time.Duration{retry, 2 * retry, 4 * retry, maxBackoff, maxBackoff} {
		a.waitTimers(t, 1)
		a.clock.Step(wait - time.Millisecond)
		a.waitTimers(t, 1)
		require.Equal(t, int32(i+1), lock.updates.Load(), "no attempt before the backoff of %v", wait)
		a.clock.Step(time.Millisecond)
		waitFor(t, func() bool { return lock.updates.Load() == int32(i+2) }, "the next attempt after the backoff")
	}
	lock.failUpdates.Store(false)
	a.waitTimers(t, 1)
	a.clock.Step(maxBackoff)
	waitFor(t, a.IsLeader, "a leads once the lock answers")
}

// TestOwnIdentityIsReportedOnlyForAnotherCandidate: a record under this
// candidate's identity is reported when another process wrote it, not
// when it is this process's own record: re-read by a release after a
// conflict, or left by its last term that ended without a release.
func TestOwnIdentityIsReportedOnlyForAnotherCandidate(t *testing.T) {
	const warning = "another candidate has the same identity"
	withLog := func(buf *bytes.Buffer) option {
		return func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
	}
	mem := freeLock(t)
	var log1, log2 bytes.Buffer
	a1 := newCandidate(t, mem, "a", epoch, withLog(&log1))
	a2 := newCandidate(t, mem, "a", epoch, withLog(&log2))
	require.True(t, a1.try(t))
	require.False(t, a2.try(t))
	assert.Contains(t, log2.String(), warning, "a twin is reported")

	// The term ends (as at its renew deadline); somebody rewrites the
	// record unchanged, so that the release conflicts and re-reads it.
	a1.mu.Lock()
	a1.holding = false
	a1.mu.Unlock()
	require.False(t, a1.try(t), "its own last term's record is waited out like any other")
	obs, err := mem.Get(context.Background())
	require.NoError(t, err)
	_, err = mem.Update(context.Background(), obs.Version, obs.Record)
	require.NoError(t, err)
	release(t, a1.Election)
	assert.Empty(t, holderOf(t, mem).HolderIdentity, "released after re-reading")
	assert.NotContains(t, log1.String(), warning)
}
