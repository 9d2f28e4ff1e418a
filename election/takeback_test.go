package election

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// handedToGone has a lead term 1, asks it to move to "gone" (a candidate
// that never takes it), and hands over as Run does once the work has
// returned.
func handedToGone(t *testing.T, lock *locks.MemoryLock) *candidate {
	t.Helper()
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	ask(t, lock, "gone")
	require.True(t, a.try(t), "a renews and sees the request")
	a.mu.Lock()
	a.holding = false // its work has returned
	a.mu.Unlock()
	require.True(t, release(t, a.Election))
	require.True(t, handedTo(mustGet(t, lock), "gone"))
	return a
}

// TestHandOverToADeadTargetIsTakenBack: a target that never takes the
// lock costs its last holder takeBackAfter, not a lease: the holder, still
// campaigning, takes it back with the next token once it stayed exactly as
// handed; everyone else waits for the handed lease.
func TestHandOverToADeadTargetIsTakenBack(t *testing.T) {
	lock := freeLock(t)
	a := handedToGone(t, lock)
	c := newCandidate(t, lock, "c", epoch)
	require.False(t, c.try(t), "c sees a lease held by gone")

	a.clock.Step(a.takeBackAfter() - time.Millisecond)
	require.False(t, a.try(t), "gone may still take it")
	a.clock.Step(time.Millisecond)
	require.True(t, a.try(t), "a takes it back")
	term, _ := a.Term()
	assert.Equal(t, int32(2), term.FencingToken)
	after := mustGet(t, lock)
	assert.NotContains(t, after.Annotations, locks.HandOverAnnotation, "the take-back clears the mark")
	assert.NotContains(t, after.Annotations, locks.PreferredHolderAnnotation)
	c.clock.Step(a.takeBackAfter())
	assert.False(t, c.try(t), "c still waits: the record changed")
}

// TestHandOverTakenLateIsNotTakenBack: the target takes the lock just
// before the take-back is due; the last holder sees a changed record and
// does not take it back, ever.
func TestHandOverTakenLateIsNotTakenBack(t *testing.T) {
	lock := freeLock(t)
	a := handedToGone(t, lock)
	gone := newCandidate(t, lock, "gone", epoch)
	require.True(t, gone.try(t), "the target takes the lock handed to it")
	a.clock.Step(a.takeBackAfter())
	assert.False(t, a.try(t), "taken: a waits like anyone")
	assert.True(t, gone.IsLeader())
}

// TestHandOverAdoptedIsNotTakenBack: a client-go candidate of the
// target's identity adopts the handed record by renewing it (same holder
// and token, its own renew time): the record changed, so it is not taken
// back.
func TestHandOverAdoptedIsNotTakenBack(t *testing.T) {
	lock := freeLock(t)
	a := handedToGone(t, lock)
	obs := mustGet(t, lock)
	r := obs.Record
	r.RenewTime = epoch.Add(time.Second) // within the second of the hand-over, on a lock of whole seconds
	_, err := lock.Update(context.Background(), obs.Version, r)
	require.NoError(t, err)
	a.clock.Step(a.takeBackAfter())
	assert.False(t, a.try(t), "adopted by gone: not taken back")
}

// TestHandOverTakenBackAfterASpecRequestIgnoresIt: a move asked by
// spec.preferredHolder whose target never came is taken back, and that
// name is not honoured again (it would cost a take-back each time).
func TestHandOverTakenBackAfterASpecRequestIgnoresIt(t *testing.T) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	require.True(t, a.try(t))
	// A MemoryLock, like a ConfigMap, keeps the record whole and drops
	// spec fields at the next write; a Lease keeps them. Put them as a
	// Lease shows them, at each step.
	withSpec := func() {
		obs := mustGet(t, lock)
		r := obs.Record
		r.Strategy, r.PreferredHolder = "OldestEmulationVersion", "gone"
		raw, err := r.Encode()
		require.NoError(t, err)
		lock.Put(raw)
		a.noteRead(mustGet(t, lock), a.notesSoFar())
	}
	withSpec()
	require.Equal(t, move{to: "gone", reason: moveSpec}, a.requested())
	a.mu.Lock()
	a.holding = false // its work has returned
	a.mu.Unlock()
	require.True(t, release(t, a.Election))
	a.clock.Step(a.takeBackAfter())
	require.True(t, a.try(t), "taken back")
	withSpec()
	assert.Equal(t, move{}, a.requested(), "spec.preferredHolder still names gone, and is ignored")
}
