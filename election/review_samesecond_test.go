package election

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHandOverIsNotTakenAfterASameSecondAdoption: RELIABILITY.md says of
// two candidates named B, one of them client-go's: "A client-go candidate
// named B takes the record by renewing it, which moves its renew time: the
// mark no longer matches, so a tenure B does not take it too". On a lock
// that keeps whole seconds (a ConfigMap, as client-go < v0.24 and the
// Python clients use it; the MemoryLock; a custom lock of unknown
// resolution, for which handOverRecord truncates to a second) the renew
// time does not move when the adoption falls in the second of the
// hand-over, and the adopted record is byte for byte the handed one.
//
// Interleaving (one lock, whole seconds, all at 12:00:00.x):
//
//  1. a leads term 1; a request asks it to move to b; a's work returns.
//  2. a writes the hand-over at 12:00:00.300: holder b, token 1,
//     acquire = renew = 12:00:00, mark {b, 1, 12:00:00}.
//  3. client-go's b (identity b) polls at 12:00:00.700, sees a record
//     naming itself, and "renews" it as client-go does: same acquire
//     time, same leaderTransitions, renew time now = 12:00:00 as stored.
//     It now leads (OnStartedLeading runs).
//  4. tenure's b reads at 12:00:00.800: holder b, token 1, renew time
//     12:00:00 = the mark's: handedTo says nobody wrote since, and it
//     takes the lock with token 2 while client-go's b leads.
//  5. From then on both lead: client-go's b renews any record naming b
//     (it keeps token 2), and tenure's b treats its renewal conflicts as
//     edits of its own record (same holder, same token).
//
// Without the hand-over, tenure's b would see a record naming b that it
// did not write and wait for it to expire, which never happens while
// client-go's b renews: one leader. The mark turns that misconfiguration
// into two leaders. Neither the record nor (on a real ConfigMap, where
// the API server skips a write that changes nothing) even the
// resourceVersion changes, so no mark over the stored state can tell. A
// minimal fix: on a lock coarser than a microsecond, write the hand-over's
// renew time one resolution step in the past (at - res, in the mark too):
// an adopter renews with its own now, which then always differs (up to a
// clock skew of one step); and say in RELIABILITY.md that the guard is
// only that good.
func TestHandOverIsNotTakenAfterASameSecondAdoption(t *testing.T) {
	lock := freeLock(t)
	at := epoch.Add(300 * time.Millisecond)
	a := newCandidate(t, lock, "a", at)
	require.True(t, a.try(t))
	ask(t, lock, "b")
	require.True(t, a.try(t), "a renews and sees the request")
	a.mu.Lock()
	a.holding = false // its work has returned
	a.mu.Unlock()
	require.True(t, release(t, a.Election), "a hands over")
	handed := mustGet(t, lock)
	require.True(t, handedTo(handed, "b"))

	// client-go's b, 0.4 s later: LeaderTransitions and AcquireTime kept
	// (it sees itself as the holder), RenewTime now, its own lease.
	adopted := handed.Record
	adopted.RenewTime = at.Add(400 * time.Millisecond)
	adopted.LeaseDuration = lease
	written, err := lock.Update(context.Background(), handed.Version, adopted)
	require.NoError(t, err, "client-go's b leads from here on")
	assert.NotEqual(t, string(handed.Raw), string(written.Raw), "the adoption within the second is a change: the hand-over's renew time is one step in the past")

	b := newCandidate(t, lock, "b", at.Add(500*time.Millisecond))
	took := b.try(t)
	assert.False(t, took, "a record adopted (renewed) by client-go's b is no longer the hand-over: tenure's b must not take it while client-go's b leads")
	if !took {
		return
	}
	// Both lead from now on: client-go's b renews the record naming it
	// (keeping tenure's token), and tenure's b renews over that.
	obs := mustGet(t, lock)
	r := obs.Record
	r.RenewTime = at.Add(2 * time.Second)
	_, err = lock.Update(context.Background(), obs.Version, r)
	require.NoError(t, err, "client-go's b renews")
	b.clock.Step(retry)
	assert.True(t, b.try(t), "and tenure's b still renews: two leaders for as long as both run")
	tm, ok := b.Term()
	t.Logf("tenure's b leads term %d (%v) while client-go's b leads too", tm.FencingToken, ok)
}
