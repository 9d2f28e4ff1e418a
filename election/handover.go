package election

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/tenure/tenure/locks"
)

// A planned hand-over moves a lock from its leader A to a chosen
// candidate B without a leaderless lease in between, and without anyone
// else taking it:
//
//  1. Somebody asks: locks.PreferredHolderAnnotation on the lock names B
//     (or the Lease's spec.preferredHolder, as Kubernetes' coordinated
//     leader election writes it). A sees the request in the answer to a
//     renewal, or at once through the lock's watch.
//  2. A drains: its work's context is cancelled and A renews as it does
//     during a graceful stop, until the work has returned. The term ends
//     there.
//  3. A writes the record over to B: holder B, a full lease, A's token,
//     with locks.HandOverAnnotation naming B, the token and the renew
//     time, in one write conditional on the version A last wrote. To
//     every other candidate (tenure's or client-go's) that is a fresh
//     record held by B: they wait for it to expire.
//  4. B, seeing a record handed to it that nobody renewed since, takes it
//     at once with its own conditional write, token + 1, which clears the
//     request and the mark.
//
// Only conditional writes change the record, so a request that is stale,
// doubled or raced by a take-over can only cause a poor move, never two
// leaders. If B does not take the lock (B is gone, frozen or cut off), A,
// campaigning again, takes it back once it has stayed exactly as A wrote
// it (same version, same bytes) for takeBackAfter, with its own
// conditional write: B's late take-over, conditional on the same version,
// then fails. Everyone else waits for the handed lease to expire, as after
// a crash. RELIABILITY.md lists the interleavings and the tests that reach
// them.

// annotator is a lock that keeps tenure's annotations, such as a
// LeaseLock (see locks.Lock): without it, an election hands over by
// releasing.
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

// handOverMark is the value of locks.HandOverAnnotation: the record was
// handed to To at the end of term Term, and renewed at Renew (as stored);
// a record renewed since (by a client-go candidate of To's identity,
// which adopts it on its own) is no longer the hand-over.
type handOverMark struct {
	To    string    `json:"to"`
	Term  int32     `json:"term"`
	Renew time.Time `json:"renewTime"`
}

// handedTo says whether obs is a record handed over to identity that
// nobody has written since.
func handedTo(obs locks.Observed, identity string) bool {
	return identity != "" && HandedOverTo(obs) == identity
}

// HandedOverTo is the candidate that obs, a record as read, was handed
// over to by its last holder (a planned hand-over, see the package
// documentation), while that candidate has not taken it and nobody has
// written it since; "" if it is no such record. A tool that reads locks
// sees the leadership under way to that candidate: no other candidate may
// take it before its lease has passed.
func HandedOverTo(obs locks.Observed) string {
	value, ok := obs.Annotations[locks.HandOverAnnotation]
	if !ok {
		return ""
	}
	var m handOverMark
	if json.Unmarshal([]byte(value), &m) != nil {
		return ""
	}
	r := obs.Record
	if m.To == "" || r.HolderIdentity != m.To || r.LeaderTransitions != m.Term || !r.RenewTime.Equal(m.Renew) {
		return ""
	}
	return m.To
}

// requestClears is what an acquiring write over obs sets to clear the
// move request and hand-over mark it finds: they were meant for the term
// that ends, and must not move the new one.
func requestClears(obs locks.Observed) map[string]string {
	var set map[string]string
	for _, k := range []string{locks.PreferredHolderAnnotation, locks.HandOverAnnotation} {
		if _, ok := obs.Annotations[k]; ok {
			if set == nil {
				set = map[string]string{}
			}
			set[k] = ""
		}
	}
	return set
}

// move is a request to hand the lock over: to whom, and who asked.
type move struct {
	to     string
	reason string
}

// Reasons for a move, the value of attrMoveReason.
const (
	moveAnnotation = "preferred holder annotation"
	moveSpec       = "spec.preferredHolder"
)

// requestIn is the move that obs, a record of this candidate's current
// term, asks for; e.mu must be held. The annotation wins over the spec
// field; a spec.preferredHolder that left a lock handed to it to expire
// is not honoured again (see noteTakeOver), and neither is one naming this
// candidate.
func (e *Election) requestIn(obs locks.Observed) move {
	if to := obs.Annotations[locks.PreferredHolderAnnotation]; to != "" && to != e.cfg.Identity {
		return move{to: to, reason: moveAnnotation}
	}
	if to := obs.Record.PreferredHolder; to != "" && to != e.cfg.Identity && to != e.ignoredPreferred {
		return move{to: to, reason: moveSpec}
	}
	return move{}
}

// noteLocked records the move that obs asks for if it is a record of this
// candidate's term; e.mu must be held. Every call counts (see noteRead),
// whether or not obs is of the term.
func (e *Election) noteLocked(obs locks.Observed) {
	e.notes++
	e.annotations = obs.Annotations
	if !e.holding || obs.Record.HolderIdentity != e.cfg.Identity || obs.Record.LeaderTransitions != e.term.FencingToken {
		return
	}
	e.moveTo = e.requestIn(obs)
}

// notesSoFar is the count of observations noted so far, for noteRead.
func (e *Election) notesSoFar() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.notes
}

// noteRead records the move that obs, read by the leader's hold loop,
// asks for, unless an observation was noted after the read began (as
// notesSoFar said): a renewal's answer, or its re-read after a conflict,
// may be newer than what a slow read returns, and a request withdrawn
// there must not come back from the slow read.
func (e *Election) noteRead(obs locks.Observed, since uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.notes != since {
		return
	}
	e.noteLocked(obs)
}

// requested is the move asked of the current term, if any, and if the
// lock can hand over.
func (e *Election) requested() move {
	if _, ok := e.cfg.Lock.(annotator); !ok {
		return move{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.moveTo
}

// noteTakeOverLocked remembers, when this candidate takes over obs after it
// expired, a spec.preferredHolder that was handed the lock and let it
// expire untaken: handing it the lock again would cost a lease each time.
// A candidate that took the lock and led it is not that; a new name there
// is honoured. e.mu must be held.
func (e *Election) noteTakeOverLocked(obs locks.Observed) {
	if r := obs.Record; r.PreferredHolder != "" && r.PreferredHolder == r.HolderIdentity && r.HolderIdentity != e.cfg.Identity && handedTo(obs, r.HolderIdentity) {
		e.ignoredPreferred = r.PreferredHolder
	}
}

// forgetIgnoredLocked forgets the ignored spec.preferredHolder once obs, a
// record of a term that the ignored candidate took itself, shows it alive.
// e.mu must be held.
func (e *Election) forgetIgnoredLocked(obs locks.Observed) {
	if e.ignoredPreferred != "" && obs.Record.HolderIdentity == e.ignoredPreferred && !handedTo(obs, e.ignoredPreferred) {
		e.ignoredPreferred = ""
	}
}

// handOver is a hand-over this candidate made, as the lock stored it.
type handOver struct {
	move
	version string
	raw     []byte
	at      time.Time // when it was written, on this candidate's clock
}

// takeBackAfter is how long a lock handed over may stay untaken before its
// last holder takes it back: a target that follows the lock takes it within
// milliseconds, one that polls within a RetryPeriod (jittered).
func (e *Election) takeBackAfter() time.Duration {
	return 2*e.cfg.RetryPeriod + e.cfg.RetryPeriod/2
}

// takeBackDue says whether obs, read at now, is this candidate's last
// hand-over, untaken for takeBackAfter: nobody wrote the lock since, not
// even a write that stored the same bytes (a ConfigMap's version moves
// with every write that changes it, a Lease's with every write). A record
// that changed forgets the hand-over. A take-back of a spec.preferredHolder
// move ignores that name from then on, as a lock left to expire would
// (see noteTakeOverLocked).
func (e *Election) takeBackDue(obs locks.Observed, now time.Time) (move, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.handed
	if h.to == "" {
		return move{}, false
	}
	if obs.Version != h.version || !bytes.Equal(obs.Raw, h.raw) || !handedTo(obs, h.to) {
		e.handed = handOver{}
		return move{}, false
	}
	if now.Sub(h.at) < e.takeBackAfter() {
		return move{}, false
	}
	e.handed = handOver{}
	if h.reason == moveSpec {
		e.ignoredPreferred = h.to
	}
	return h.move, true
}

// handOverRecord is the record and annotations that hand the term with
// token over to to, written at now: a full lease held by to, its renew
// time as the lock stores it, so that to can tell that nobody renewed it
// since.
func (e *Election) handOverRecord(to string, token int32, now time.Time) (locks.Record, map[string]string) {
	res := e.resolution()
	at := now.Truncate(res)
	if res > time.Microsecond {
		// A lock of whole seconds keeps the same bytes when a client-go
		// candidate of to's identity adopts the record within the second
		// (it renews with its own now, as stored); a renew time one step
		// in the past makes that adoption a change that the mark no longer
		// matches, up to a clock skew of one step.
		at = at.Add(-res)
	}
	// A mark always encodes.
	mark, _ := json.Marshal(handOverMark{To: to, Term: token, Renew: at.UTC()})
	return locks.Record{
			HolderIdentity:    to,
			LeaseDuration:     e.cfg.LeaseDuration,
			AcquireTime:       at,
			RenewTime:         at,
			LeaderTransitions: token,
		}, map[string]string{
			locks.HandOverAnnotation:        string(mark),
			locks.PreferredHolderAnnotation: "",
		}
}

// writeTerm writes r, a new term, over obs: with the lock's annotations
// cleared of a move request and a hand-over mark if obs has them.
func (e *Election) writeTerm(ctx context.Context, obs locks.Observed, r locks.Record) (locks.Observed, error) {
	if clear := requestClears(obs); clear != nil {
		if a, ok := e.cfg.Lock.(annotator); ok {
			return a.Annotate(ctx, obs.Version, &r, clear)
		}
	}
	return e.cfg.Lock.Update(ctx, obs.Version, r)
}
