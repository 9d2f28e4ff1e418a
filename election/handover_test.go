package election

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tenure/tenure/locks"
)

// ask writes a move request for to on l, as a coordinator or an operator
// does: conditional on the version read, retried on conflict.
func ask(t *testing.T, l *locks.MemoryLock, to string) {
	t.Helper()
	for range 10 {
		obs, err := l.Get(context.Background())
		require.NoError(t, err)
		_, err = l.Annotate(context.Background(), obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to})
		if err == nil {
			return
		}
		require.ErrorIs(t, err, locks.ErrConflict)
	}
	t.Fatal("the lock kept changing")
}

// ledger records the leader work of several candidates, to check that
// no two ran at once.
type ledger struct {
	mu      sync.Mutex
	running string
	overlap []string
	terms   []string
}

func (l *ledger) work(id string, finish <-chan struct{}, cancelled chan<- struct{}) func(context.Context) {
	return func(ctx context.Context) {
		l.mu.Lock()
		if l.running != "" {
			l.overlap = append(l.overlap, l.running+" and "+id)
		}
		l.running = id
		l.terms = append(l.terms, id)
		l.mu.Unlock()
		<-ctx.Done()
		if cancelled != nil {
			close(cancelled)
		}
		if finish != nil {
			<-finish // winding down
		}
		l.mu.Lock()
		l.running = ""
		l.mu.Unlock()
	}
}

func (l *ledger) check(t *testing.T, terms ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Empty(t, l.overlap, "two leaders at once")
	assert.Equal(t, terms, l.terms)
}

// TestHandOverMovesTheLockToTheCandidateAskedFor: asked to move, the
// leader renews while its work winds down, then writes the lock over; the
// candidate asked for leads at once, with the next token, and the request
// is gone. No clock moves: nothing waits out a lease.
func TestHandOverMovesTheLockToTheCandidateAskedFor(t *testing.T) {
	noLeaks(t)
	lock := freeLock(t)
	var led ledger
	finish, cancelled := make(chan struct{}), make(chan struct{})
	a := newCandidate(t, lock, "a", epoch, func(c *Config) { c.OnStartedLeading = led.work("a", finish, cancelled) })
	b := newCandidate(t, lock, "b", epoch, func(c *Config) { c.OnStartedLeading = led.work("b", nil, nil) })
	c := newCandidate(t, lock, "c", epoch, func(c *Config) { c.OnStartedLeading = led.work("c", nil, nil) })
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	b.run(t)
	c.run(t)
	waitFor(t, func() bool { return b.Leader() == "a" && c.Leader() == "a" }, "b and c follow a")

	assert.Empty(t, a.HandOverTo())
	ask(t, lock, "b")
	<-cancelled
	assert.True(t, a.IsLeader(), "a leads while its work winds down")
	assert.Equal(t, "b", a.HandOverTo(), "a says whom it hands over to")
	assert.Empty(t, c.HandOverTo(), "a follower hands nothing over")
	assert.Equal(t, "a", holderOf(t, lock).HolderIdentity)
	assert.False(t, b.IsLeader())

	close(finish)
	waitFor(t, b.IsLeader, "b leads without any clock moving")
	waitFor(t, func() bool { return len(spansNamed(a, spanMove)) == 1 }, "a's move span ends")
	waitFor(t, func() bool { led.mu.Lock(); defer led.mu.Unlock(); return len(led.terms) == 2 }, "b's work starts")
	obs, err := lock.Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "b", obs.Record.HolderIdentity)
	assert.Equal(t, int32(2), obs.Record.LeaderTransitions, "fencing token +1")
	assert.Empty(t, obs.Annotations, "the taking write clears the request and the mark")
	assert.False(t, a.IsLeader())
	assert.Empty(t, a.HandOverTo(), "handed over")
	assert.False(t, c.IsLeader())
	waitFor(t, func() bool { return a.Leader() == "b" && c.Leader() == "b" }, "a and c see b")
	led.check(t, "a", "b")

	moved := spansNamed(a, spanMove)
	require.Len(t, moved, 1)
	attrs := attribute.NewSet(moved[0].Attributes()...)
	for k, want := range map[attribute.Key]string{attrMoveFrom: "a", attrMoveTo: "b", attrMoveReason: moveAnnotation, attrOutcome: outcomeHandedOver} {
		v, _ := attrs.Value(k)
		assert.Equal(t, want, v.AsString(), string(k))
	}
}

// TestLeaseHandedToAnotherIsNotSnatched: a record handed to a candidate
// that does not take it is a held lease to everyone else, taken over only
// once it expires; that take-over clears the mark.
func TestLeaseHandedToAnotherIsNotSnatched(t *testing.T) {
	noLeaks(t)
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	ask(t, lock, "gone")
	waitFor(t, func() bool { return holderOf(t, lock).HolderIdentity == "gone" }, "a hands over to gone")
	obs, err := lock.Get(context.Background())
	require.NoError(t, err)
	require.Contains(t, obs.Annotations, locks.HandOverAnnotation)
	assert.Equal(t, lease, obs.Record.LeaseDuration, "a full lease")

	c := newCandidate(t, lock, "c", epoch)
	assert.False(t, c.try(t), "c must not take a lock handed to another")
	c.clock.Step(lease - time.Second)
	assert.False(t, c.try(t), "nor before the lease expires")
	c.clock.Step(time.Second)
	require.True(t, c.try(t), "c takes it over once it expires, as after a crash")
	obs, err = lock.Get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "c", obs.Record.HolderIdentity)
	assert.Equal(t, int32(2), obs.Record.LeaderTransitions)
	assert.Empty(t, obs.Annotations)
	a.waitTimers(t, 1) // a's pause before it campaigns again
	a.clock.Step(retry)
	waitFor(t, func() bool { return a.Leader() == "c" }, "a follows c")
	assert.False(t, a.IsLeader(), "a does not take back its own hand-over")
}

// TestHandOverMarkIsOnlyForTheRecordItWasWrittenWith: a record handed to
// b and renewed since (by a client-go candidate named b, which adopts it on
// its own), or taken by another b that cleared the mark, is not taken by a
// tenure candidate named b at once.
func TestHandOverMarkIsOnlyForTheRecordItWasWrittenWith(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	ask(t, lock, "b")
	require.True(t, a.try(t), "a renews and sees the request")
	a.mu.Lock()
	a.holding = false // its work has returned
	a.mu.Unlock()
	release(t, a.Election)
	handed, err := lock.Get(context.Background())
	require.NoError(t, err)
	require.True(t, handedTo(handed, "b"))
	assert.False(t, handedTo(handed, "c"))

	// client-go's b renews: same holder and token, a later renew time.
	renewed := handed.Record
	renewed.RenewTime = renewed.RenewTime.Add(2 * time.Second)
	written, err := lock.Update(context.Background(), handed.Version, renewed)
	require.NoError(t, err)
	require.Contains(t, written.Annotations, locks.HandOverAnnotation, "client-go leaves annotations alone")
	b := newCandidate(t, lock, "b", epoch)
	assert.False(t, b.try(t), "a renewed record is no longer the hand-over")

	// Two tenure candidates named b: the first takes the lock, the second
	// then finds no mark.
	lock2 := freeLock(t)
	a2 := newCandidate(t, lock2, "a", epoch)
	require.True(t, a2.try(t))
	ask(t, lock2, "b")
	require.True(t, a2.try(t))
	a2.mu.Lock()
	a2.holding = false
	a2.mu.Unlock()
	release(t, a2.Election)
	b1, b2 := newCandidate(t, lock2, "b", epoch), newCandidate(t, lock2, "b", epoch)
	require.True(t, b1.try(t))
	assert.False(t, b2.try(t), "the mark was cleared by the first")
}

// TestSpecPreferredHolderIsHonouredOnce: spec.preferredHolder, as
// Kubernetes' coordinated election writes it (here bypassing the lock, so
// that the leader's renewal conflicts and re-reads), moves the lock; a
// candidate that then let the lock handed to it expire is not handed it
// again by the one that took over.
func TestSpecPreferredHolderIsHonouredOnce(t *testing.T) {
	noLeaks(t)
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	obs, err := lock.Get(context.Background())
	require.NoError(t, err)
	r := obs.Record
	r.Strategy, r.PreferredHolder = "OldestEmulationVersion", "b"
	raw, err := r.Encode()
	require.NoError(t, err)
	lock.Put(raw) // a's watch shows it at once
	waitFor(t, func() bool { return holderOf(t, lock).HolderIdentity == "b" }, "a hands over to b")
	// A Lease keeps spec.strategy and spec.preferredHolder through
	// tenure's writes (locks' tests check it); a MemoryLock, like a
	// ConfigMap, keeps the record whole: put them back as a Lease would.
	handed, err := lock.Get(context.Background())
	require.NoError(t, err)
	r = handed.Record
	r.Strategy, r.PreferredHolder = "OldestEmulationVersion", "b"
	raw, err = r.Encode()
	require.NoError(t, err)
	lock.Put(raw)

	c := newCandidate(t, lock, "c", epoch)
	c.clock.Step(lease)
	require.False(t, c.try(t))
	c.clock.Step(lease)
	require.True(t, c.try(t), "b never took it: c takes over after a lease")
	taken, err := lock.Get(context.Background())
	require.NoError(t, err)
	r = taken.Record
	r.Strategy, r.PreferredHolder = "OldestEmulationVersion", "b"
	raw, err = r.Encode()
	require.NoError(t, err)
	lock.Put(raw) // as a Lease keeps them
	// What c's watch, or its next renewal's answer, shows it:
	c.noteRead(mustGet(t, lock), c.notesSoFar())
	assert.Equal(t, move{}, c.requested(), "c does not hand over to b again")

	r.PreferredHolder = "d"
	raw, err = r.Encode()
	require.NoError(t, err)
	lock.Put(raw)
	c.noteRead(mustGet(t, lock), c.notesSoFar())
	assert.Equal(t, move{to: "d", reason: moveSpec}, c.requested(), "a new spec.preferredHolder is honoured")
}

// TestHandOverMarkDecoding: a mark that is malformed, or names another
// term, is no hand-over.
func TestHandOverMarkDecoding(t *testing.T) {
	renew := epoch.Add(time.Second)
	obs := func(mark string) locks.Observed {
		return locks.Observed{
			Record:      locks.Record{HolderIdentity: "b", LeaseDuration: lease, RenewTime: renew, LeaderTransitions: 3},
			Annotations: map[string]string{locks.HandOverAnnotation: mark},
		}
	}
	good, err := json.Marshal(handOverMark{To: "b", Term: 3, Renew: renew})
	require.NoError(t, err)
	assert.True(t, handedTo(obs(string(good)), "b"))
	for _, bad := range []string{"", "{", `{"to":"b","term":2,"renewTime":"2026-11-24T12:00:01Z"}`, `{"to":"c","term":3,"renewTime":"2026-11-24T12:00:01Z"}`, `{"to":"b","term":3}`} {
		assert.False(t, handedTo(obs(bad), "b"), bad)
	}
}

func mustGet(t *testing.T, l locks.Lock) locks.Observed {
	t.Helper()
	obs, err := l.Get(context.Background())
	require.NoError(t, err)
	return obs
}

// unwatched is a lock that keeps annotations but has no watch.
type unwatched struct {
	locks.Lock
	a annotator
}

func (u unwatched) Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	return u.a.Annotate(ctx, version, r, set)
}

// TestMoveIsSeenByARenewalWithoutAWatch: on a lock without a watch, the
// leader sees a move request at its next renewal, which conflicts with the
// request's write and re-reads.
func TestMoveIsSeenByARenewalWithoutAWatch(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	lock := unwatched{Lock: mem, a: mem}
	a := newCandidate(t, lock, "a", epoch)
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	a.waitTimers(t, 2) // renew and deadline timers
	ask(t, mem, "b")
	b := newCandidate(t, lock, "b", epoch)
	assert.False(t, b.try(t), "held by a")
	assert.Equal(t, "a", holderOf(t, mem).HolderIdentity, "no move before a renews")
	a.clock.Step(retry)
	waitFor(t, func() bool { return holderOf(t, mem).HolderIdentity == "b" }, "a hands over to b at its renewal")
	require.True(t, b.try(t), "b takes the lock handed to it")
	assert.Equal(t, int32(2), holderOf(t, mem).LeaderTransitions)
}

// TestAnnotationsAreTheLastSeen: Annotations is tenure's annotations on
// the lock as the candidate last read or wrote it, leader or not.
func TestAnnotationsAreTheLastSeen(t *testing.T) {
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	b := newCandidate(t, mem, "b", epoch)
	require.True(t, a.try(t))
	assert.Empty(t, a.Annotations())
	obs, err := mem.Get(context.Background())
	require.NoError(t, err)
	_, err = mem.Annotate(context.Background(), obs.Version, nil, map[string]string{locks.AnnotationPrefix + "placement-paused": "true"})
	require.NoError(t, err)
	require.False(t, b.try(t))
	assert.Equal(t, "true", b.Annotations()[locks.AnnotationPrefix+"placement-paused"], "a follower's read")
	a.clock.Step(time.Second)
	require.True(t, a.try(t))
	assert.Equal(t, "true", a.Annotations()[locks.AnnotationPrefix+"placement-paused"], "the leader's renewal")
}
