package election

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// annotatedMicroLock is a lock that keeps times to the microsecond, as a Lease
// does, and tenure's annotations; failNext makes the next write fail
// before it reaches the lock (a request lost on its way: nothing stored).
type annotatedMicroLock struct {
	mu       sync.Mutex
	exists   bool
	rec      locks.Record
	notes    map[string]string
	version  int
	failNext bool
}

func (l *annotatedMicroLock) Describe() string              { return "micro/l" }
func (l *annotatedMicroLock) TimeResolution() time.Duration { return time.Microsecond }

func (l *annotatedMicroLock) observe() locks.Observed {
	raw, _ := json.Marshal(struct {
		H    string
		D    time.Duration
		A, R string
		T    int32
	}{l.rec.HolderIdentity, l.rec.LeaseDuration, l.rec.AcquireTime.UTC().Format(time.RFC3339Nano), l.rec.RenewTime.UTC().Format(time.RFC3339Nano), l.rec.LeaderTransitions})
	return locks.Observed{Record: l.rec, Raw: raw, Version: strconv.Itoa(l.version), Annotations: maps.Clone(l.notes)}
}

func (l *annotatedMicroLock) Get(context.Context) (locks.Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.exists {
		return locks.Observed{}, locks.ErrNotFound
	}
	return l.observe(), nil
}

func (l *annotatedMicroLock) Create(_ context.Context, r locks.Record) (locks.Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exists {
		return locks.Observed{}, locks.ErrConflict
	}
	l.exists = true
	l.store(r)
	return l.observe(), nil
}

func (l *annotatedMicroLock) store(r locks.Record) {
	r.AcquireTime = r.AcquireTime.Truncate(time.Microsecond)
	r.RenewTime = r.RenewTime.Truncate(time.Microsecond)
	l.rec = r
	l.version++
}

func (l *annotatedMicroLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	return l.Annotate(ctx, version, &r, nil)
}

func (l *annotatedMicroLock) Annotate(_ context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failNext {
		l.failNext = false
		return locks.Observed{}, fmt.Errorf("write: %w", errInjected)
	}
	if !l.exists {
		return locks.Observed{}, locks.ErrNotFound
	}
	if version != strconv.Itoa(l.version) {
		return locks.Observed{}, locks.ErrConflict
	}
	for k, v := range set {
		if v == "" {
			delete(l.notes, k)
		} else {
			if l.notes == nil {
				l.notes = map[string]string{}
			}
			l.notes[k] = v
		}
	}
	rec := l.rec
	if r != nil {
		rec = *r
	}
	l.store(rec)
	return l.observe(), nil
}

// TestHandedRecordIsNotTakenForOwnLostWrite: acquire checks
// recogniseOwnWrite before handedTo, and triedWrite.matches looks only at
// holder, token and times. A record handed to b carries holder b, the
// handing term's token, and acquire = renew = the hand-over's time: if b's
// last acquiring write, one that never landed, had that token and was
// sent at that time, b adopts the handed record as its own write and
// leads with the handing term's token, without writing (the mark stays).
//
// Interleaving (a lock with microsecond times, as a Lease):
//
//  1. x held the lock with token 4 and went silent; a and b both see it
//     expire.
//  2. b tries to take it over at T1 = 12:00:15.000123 on b's clock with
//     token 5; the request is lost before it reaches the API server (an
//     error, not a conflict): b remembers tried = {5, T1}.
//  3. a takes it over with token 5 and leads; it is asked to move to b;
//     its work returns; at T1 on a's clock it hands the lock to b: holder
//     b, token 5, acquire = renew = T1, mark {b, 5, T1}.
//  4. b, 1 s later on its clock (within its renew deadline of T1), reads
//     it: recogniseOwnWrite matches, so b "recognises its own write" and
//     leads term 5, the token of a's term, instead of taking it with 6.
//
// The coincidence (a's hand-over time equal, to the microsecond, to the
// send time of b's lost write on b's clock) is all but impossible between
// real clocks, so this is a latent hole, not a likely one; fake clocks
// and clocks shared by candidates in one process reach it. Minimal fix: in
// acquire, check handedTo before recogniseOwnWrite, or have
// recogniseOwnWrite refuse a record that carries a HandOverAnnotation (an
// acquiring write always clears the mark it finds, so its own record
// never carries one).
func TestHandedRecordIsNotTakenForOwnLostWrite(t *testing.T) {
	lock := &annotatedMicroLock{}
	_, err := lock.Create(context.Background(), locks.Record{HolderIdentity: "x", LeaseDuration: lease, AcquireTime: epoch, RenewTime: epoch, LeaderTransitions: 4})
	require.NoError(t, err)
	t1 := epoch.Add(lease + 123*time.Microsecond)

	a := newCandidate(t, lock, "a", epoch)
	b := newCandidate(t, lock, "b", epoch)
	require.False(t, a.try(t))
	require.False(t, b.try(t))

	// 2. b's take-over is lost on its way.
	b.clock.SetTime(t1)
	lock.failNext = true
	ok, err := b.TryAcquireOrRenew(context.Background())
	require.False(t, ok)
	require.ErrorIs(t, err, errInjected)

	// 3. a takes over, is asked to move to b, its work returns, it hands
	// over at T1 on its clock.
	a.clock.SetTime(epoch.Add(lease))
	require.True(t, a.try(t))
	aTerm, _ := a.Term()
	require.Equal(t, int32(5), aTerm.FencingToken)
	obs := mustGet(t, lock)
	_, err = lock.Annotate(context.Background(), obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: "b"})
	require.NoError(t, err)
	a.clock.SetTime(t1)
	require.True(t, a.try(t), "a renews and sees the request")
	a.mu.Lock()
	a.holding = false // its work has returned
	a.mu.Unlock()
	require.True(t, release(t, a.Election), "a hands over to b")
	handed := mustGet(t, lock)
	require.True(t, handedTo(handed, "b"))

	// 4. b reads the handed record.
	b.clock.Step(time.Second)
	require.True(t, b.try(t), "b leads")
	bTerm, _ := b.Term()
	assert.Greater(t, bTerm.FencingToken, aTerm.FencingToken, "b's term follows a's: its fencing token must be greater")
	after := mustGet(t, lock)
	assert.NotContains(t, after.Annotations, locks.HandOverAnnotation, "b's term began with its own write, which clears the mark")
}
