package election

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A lock deleted under its leader loses its history: the next term's
// fencing token is one more than the greatest its creator has seen. A
// candidate that did not read the lock during the deleted leader's term
// (it polls every RetryPeriod; hand-overs start terms within
// milliseconds) would make a term with the deleted leader's token, and a
// late write of the deleted term would pass a fence. The chaos suite
// found it (TestElectionsUnderFaults, "delete every Lease": c1.4/11 acted
// after c3.4/11). The leader that finds its lock deleted makes it again,
// held under its own name with its token for a full lease, so that every
// later term's token is greater.
//
// In both tests, c last saw token 1, b leads with token 2, and c never
// reads the lock during b's term.
func deletedUnderB(t *testing.T) (lockDeleter, *candidate, *candidate) {
	lock := freeLock(t)
	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	c := newCandidate(t, lock, "c", epoch)
	require.True(t, a.try(t))
	require.False(t, c.try(t), "c sees a's term")
	require.False(t, release(t, a.Election))
	require.True(t, b.try(t), "b takes the released lock")
	term, _ := b.Term()
	require.Equal(t, int32(2), term.FencingToken)
	lock.Delete()
	return lock, b, c
}

type lockDeleter interface{ Delete() }

// cTakesOverAfterALease has c campaign until it leads, a lease after it
// first finds the lock as b left it, and checks its token.
func cTakesOverAfterALease(t *testing.T, c *candidate) {
	t.Helper()
	require.False(t, c.try(t), "c waits a lease before making or taking the lock")
	c.clock.Step(lease)
	require.True(t, c.try(t))
	term, _ := c.Term()
	assert.Greater(t, term.FencingToken, int32(2), "c's term follows b's: its fencing token is greater")
}

// TestTokenGrowsAcrossALockDeletedUnderItsLeader: b's renewal finds the
// lock gone.
func TestTokenGrowsAcrossALockDeletedUnderItsLeader(t *testing.T) {
	_, b, c := deletedUnderB(t)
	b.clock.Step(retry)
	require.False(t, b.try(t), "b's renewal finds the lock deleted: b steps down")
	assert.False(t, b.IsLeader())
	cTakesOverAfterALease(t, c)
}

// TestTokenGrowsAcrossALockDeletedBeforeItsRelease: b's release, after
// its work returned, finds the lock gone.
func TestTokenGrowsAcrossALockDeletedBeforeItsRelease(t *testing.T) {
	_, b, c := deletedUnderB(t)
	b.mu.Lock()
	b.holding = false // the term is over, as lead ends it before releasing
	b.mu.Unlock()
	assert.False(t, release(t, b.Election))
	cTakesOverAfterALease(t, c)
}
