package election

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// TestPreferredHolderThatLedAndCrashedIsHonoured:
// noteTakeOverLocked means to remember a spec.preferredHolder "that held
// it and let it expire: the candidate that spec names did not take a lock
// handed to it". Its test is only r.PreferredHolder == r.HolderIdentity,
// which also holds when that candidate took the lock, led it for a long
// time and then crashed (Kubernetes' coordinated election leaves
// spec.preferredHolder naming it). The candidate that takes over then
// ignores that name for the rest of its life: when b comes back and the
// coordinator still (or again) names b, c never moves.
//
// Interleaving (a Lease's fields, written here as the MemoryLock keeps
// them):
//
//  1. spec.preferredHolder = b; b holds the lock in term 3 and renews it
//     (it had taken it, the mark is long gone), then crashes.
//  2. c sees the record stop changing, waits a lease, takes it over with
//     token 4: ignoredPreferred = b.
//  3. b restarts and campaigns; spec.preferredHolder still names b.
//  4. c, reading its record, asks for no move; and never will, since
//     ignoredPreferred is never reset.
//
// Severity: only a move that is never made (coordinated election's
// choice ignored by this leader). Minimal fix: remember the name only if
// the expired record was a hand-over nobody took (handedTo(obs,
// r.HolderIdentity)), and forget it when a record of a later term names
// that holder.
func TestPreferredHolderThatLedAndCrashedIsHonoured(t *testing.T) {
	lock := freeLock(t)
	start := epoch.Add(-time.Hour)
	led := func(renew time.Time) {
		raw, err := (recordOf("b", start, renew, 3, "b")).Encode()
		require.NoError(t, err)
		lock.Put(raw)
	}
	led(epoch)
	c := newCandidate(t, lock, "c", epoch)
	require.False(t, c.try(t))
	c.clock.Step(lease)
	require.True(t, c.try(t), "b crashed: c takes over after a lease")
	term, _ := c.Term()

	// The Lease keeps spec.preferredHolder through c's writes.
	taken := mustGet(t, lock).Record
	taken.Strategy, taken.PreferredHolder = "OldestEmulationVersion", "b"
	raw, err := taken.Encode()
	require.NoError(t, err)
	lock.Put(raw)
	c.noteRead(mustGet(t, lock), c.notesSoFar())
	assert.Equal(t, move{to: "b", reason: moveSpec}, c.requested(),
		"b led term 3 and crashed; it did not let a lock handed to it expire: the coordinator's choice of b is honoured (term %d)", term.FencingToken)
}

func recordOf(holder string, acquired, renewed time.Time, token int32, preferred string) locks.Record {
	return locks.Record{
		HolderIdentity: holder, LeaseDuration: lease, AcquireTime: acquired, RenewTime: renewed,
		LeaderTransitions: token, Strategy: "OldestEmulationVersion", PreferredHolder: preferred,
	}
}
