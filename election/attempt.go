package election

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenure/tenure/locks"
)

// observation is what this candidate last saw of the record, and when it
// first saw it that way on its own clock. Expiry is judged from at, never
// from the record's timestamps.
type observation struct {
	seen   bool // anything observed yet
	exists bool // the record exists
	raw    []byte
	valid  bool // raw decoded into record
	record locks.Record
	at     time.Time
}

// observed is the observation of obs, seen at at.
func observed(obs locks.Observed, valid bool, at time.Time) observation {
	return observation{seen: true, exists: true, raw: obs.Raw, valid: valid, record: obs.Record, at: at}
}

// changed says whether obs differs from what o saw. Only the record's
// bytes count, as in client-go: a write of the lock object that leaves the
// record alone (a ConfigMap's data, a Lease's labels) is no renewal, and
// counting it would keep a crashed leader's lease alive for as long as such
// writes go on. A renewal that stores the same bytes (two renewals of a
// ConfigMap within one second) is invisible here; the leader does not count
// it either (see renew).
func (o observation) changed(obs locks.Observed) bool {
	return !o.seen || !o.exists || !bytes.Equal(obs.Raw, o.raw)
}

// triedWrite is an acquiring write whose answer was lost: it may have
// landed, and a later read that finds exactly it is this candidate's own.
type triedWrite struct {
	token int32
	start time.Time // when it was sent; zero if none
}

// matches says whether r is exactly what the write stored, and was not
// renewed since: this identity, its token, and its acquire and renew times
// to the microsecond, as a Lease keeps them. Another candidate that shares
// this identity (a misconfiguration, reported) and wrote the same term
// could not be told apart if it sent its write in the same microsecond. A
// lock that keeps whole seconds (a ConfigMap) cannot tell writes of one
// second apart: a time on a whole second is never taken as proof, so there
// the record is waited out as any other.
func (w triedWrite) matches(r locks.Record, identity string) bool {
	sent := w.start.Truncate(time.Microsecond)
	return !w.start.IsZero() && sent.Nanosecond() != 0 && r.HolderIdentity == identity && r.LeaderTransitions == w.token &&
		r.AcquireTime.Equal(sent) && r.RenewTime.Equal(sent)
}

// holder is the observed holder, "" for none or unknown.
func (o observation) holder() string {
	if o.exists && o.valid {
		return o.record.HolderIdentity
	}
	return ""
}

// attemptResult is what one attempt to acquire or renew came to.
type attemptResult struct {
	// holding: this candidate holds the lock in a term after the attempt.
	holding bool
	// wroteAt: when the write that acquired or renewed the lock was sent;
	// zero if nothing was written.
	wroteAt time.Time
	outcome string
}

// TryAcquireOrRenew makes one attempt: as a follower, to acquire the lock
// if it is free or its holder's lease has expired; as the leader, to renew
// it. It reports whether this candidate holds the lock afterwards. An
// error says why the attempt failed; a lock held by another candidate is
// not an error.
func (e *Election) TryAcquireOrRenew(ctx context.Context) (bool, error) {
	res, err := e.attempt(ctx)
	e.remakeDeleted(ctx)
	return res.holding, err
}

func (e *Election) attempt(ctx context.Context) (res attemptResult, err error) {
	e.attemptMu.Lock()
	defer e.attemptMu.Unlock()

	holding, expired := e.checkDeadline()
	if expired {
		return attemptResult{outcome: outcomeError}, fmt.Errorf("%w: no successful renewal for the renew deadline %v", ErrNotLeader, e.cfg.RenewDeadline)
	}
	name, op := spanAcquire, operationAcquire
	if holding {
		name, op = spanRenew, operationRenew
	}
	ctx, sp := e.startSpan(ctx, name, op)
	defer func() {
		e.mu.Lock()
		if err == nil {
			e.lastOK, e.lostContact = e.cfg.Clock.Now(), false
		}
		holder, transitions := e.obs.holder(), e.obs.record.LeaderTransitions
		announce := e.pendingLeader
		e.pendingLeader = ""
		e.mu.Unlock()
		sp.end(res.outcome, holder, transitions, err)
		if announce != "" {
			e.announce(announce)
		}
	}()
	if holding {
		return e.renew(ctx)
	}
	return e.acquire(ctx)
}

// checkDeadline says whether this candidate is in a term; a term whose
// renew deadline has passed on the clock ends now (expired), whether or
// not a timer of Run has noticed.
func (e *Election) checkDeadline() (holding, expired bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.holding && !e.leading() {
		e.lostContact = true
		e.endTermLocked(e.cfg.Clock.Now())
		e.log.Warn("the term ended: no successful renewal for the renew deadline", "renew_deadline", e.cfg.RenewDeadline, "term", e.term.FencingToken)
		return false, true
	}
	return e.holding, false
}

// record is the record this candidate writes for a term with token,
// acquired at acquired, renewed now.
func (e *Election) record(acquired, now time.Time, token int32) locks.Record {
	return locks.Record{
		HolderIdentity:    e.cfg.Identity,
		LeaseDuration:     e.cfg.LeaseDuration,
		AcquireTime:       acquired,
		RenewTime:         now,
		LeaderTransitions: token,
	}
}

func (e *Election) acquire(ctx context.Context) (attemptResult, error) {
	obs, err := e.read(ctx)
	now := e.cfg.Clock.Now() // after the read: expiry judged late, never early
	switch {
	case errors.Is(err, locks.ErrNotFound):
		if e.observeMissing(now) {
			return attemptResult{outcome: outcomeMissing}, nil
		}
		start, token := e.cfg.Clock.Now(), e.nextToken(-1)
		created, err := e.cfg.Lock.Create(ctx, e.record(start, start, token))
		if errors.Is(err, locks.ErrConflict) {
			return attemptResult{outcome: outcomeConflict}, nil
		}
		if err != nil {
			e.triedAndLost(token, start)
			return attemptResult{outcome: outcomeError}, err
		}
		e.startTerm(created, start)
		return attemptResult{holding: true, wroteAt: start, outcome: outcomeAcquired}, nil

	case errors.Is(err, locks.ErrInvalidRecord):
		// An unreadable record has an unknown holder: take it over only
		// once it has stayed unchanged for a whole lease of our own.
		if !e.observe(obs, false, now, e.cfg.LeaseDuration) {
			return attemptResult{outcome: outcomeHeld}, err
		}
		e.log.Warn("replacing an invalid leader election record that has not changed for a lease duration", "lock", e.cfg.Lock.Describe(), "err", err)
		return e.takeOver(ctx, obs, e.nextToken(-1))

	case err != nil:
		return attemptResult{outcome: outcomeError}, err
	}

	if res, ok := e.recogniseOwnWrite(obs, now); ok {
		return res, nil
	}
	if handedTo(obs, e.cfg.Identity) {
		// Its last holder's work has returned and it wrote the lock over
		// to this candidate; nobody has written since (see handover.go).
		e.observe(obs, true, now, obs.Record.LeaseDuration)
		e.log.Info("the lock was handed over to this candidate: taking it", "lock", e.cfg.Lock.Describe(), "term", obs.Record.LeaderTransitions)
		return e.takeOver(ctx, obs, e.nextToken(obs.Record.LeaderTransitions))
	}
	if m, ok := e.takeBackDue(obs, now); ok {
		e.log.Warn("the candidate the lock was handed to did not take it: taking it back", "lock", e.cfg.Lock.Describe(), "to", m.to, "term", obs.Record.LeaderTransitions)
		e.observe(obs, true, now, obs.Record.LeaseDuration)
		return e.takeOver(ctx, obs, e.nextToken(obs.Record.LeaderTransitions))
	}
	if !e.observe(obs, true, now, obs.Record.LeaseDuration) {
		e.warnIfOwnIdentity()
		return attemptResult{outcome: outcomeHeld}, nil
	}
	e.mu.Lock()
	e.noteTakeOverLocked(obs)
	e.mu.Unlock()
	return e.takeOver(ctx, obs, e.nextToken(obs.Record.LeaderTransitions))
}

// takeOver writes a new term over obs, the record read at its version.
func (e *Election) takeOver(ctx context.Context, obs locks.Observed, token int32) (attemptResult, error) {
	start := e.cfg.Clock.Now()
	written, err := e.writeTerm(ctx, obs, e.record(start, start, token))
	switch {
	case errors.Is(err, locks.ErrConflict), errors.Is(err, locks.ErrNotFound):
		return attemptResult{outcome: outcomeConflict}, nil // another candidate was faster
	case err != nil:
		e.triedAndLost(token, start)
		return attemptResult{outcome: outcomeError}, err
	}
	e.startTerm(written, start)
	return attemptResult{holding: true, wroteAt: start, outcome: outcomeAcquired}, nil
}

// triedAndLost remembers an acquiring write sent at start with token whose
// answer was an error other than a conflict: it may have landed.
func (e *Election) triedAndLost(token int32, start time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tried = triedWrite{token: token, start: start}
}

// recogniseOwnWrite starts the term of an acquiring write whose answer was
// lost, if obs, read at now, is what it stored and its renew deadline,
// counted from when it was sent, has not passed: no other candidate can
// have seen that write before it was sent, so the term is as safe as if
// the answer had arrived.
func (e *Election) recogniseOwnWrite(obs locks.Observed, now time.Time) (attemptResult, bool) {
	e.mu.Lock()
	w := e.tried
	e.mu.Unlock()
	if _, marked := obs.Annotations[locks.HandOverAnnotation]; marked {
		// An acquiring write clears the mark it finds: a record that
		// carries one was handed over, whatever its times.
		return attemptResult{}, false
	}
	if !w.matches(obs.Record, e.cfg.Identity) || now.Sub(w.start) >= e.cfg.RenewDeadline {
		return attemptResult{}, false
	}
	e.log.Info("the lock holds this candidate's acquiring write whose answer was lost: leading", "lock", e.cfg.Lock.Describe(), "term", w.token)
	e.startTerm(obs, w.start)
	return attemptResult{holding: true, wroteAt: w.start, outcome: outcomeAcquired}, true
}

// nextToken is the fencing token of a new term over a record whose
// transitions are current (-1 if unknown): one more than the greatest this
// candidate has seen.
func (e *Election) nextToken(current int32) int32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if current > e.maxToken {
		e.maxToken = current
	}
	if current < 0 && !e.sawToken {
		return 0
	}
	return e.maxToken + 1
}

func (e *Election) renew(ctx context.Context) (attemptResult, error) {
	e.mu.Lock()
	version, term := e.version, e.term
	e.mu.Unlock()

	for range 2 {
		start := e.cfg.Clock.Now()
		written, err := e.cfg.Lock.Update(ctx, version, e.record(term.Started, e.renewTime(start), term.FencingToken))
		if err == nil {
			if !e.wrote(written, start) {
				// The record's bytes did not change: the lock keeps
				// whole seconds and this renewal fell in the second of
				// the last one (the API server even skips such a write),
				// or the wall clock is behind the last renew time (see
				// renewTime). No other candidate can tell it from the
				// last one, so the deadline stays where that one put it.
				return attemptResult{holding: e.IsLeader(), outcome: outcomeUnchanged}, nil
			}
			return attemptResult{holding: true, wroteAt: start, outcome: outcomeRenewed}, nil
		}
		if errors.Is(err, locks.ErrNotFound) {
			e.loseToDeletion(e.cfg.Clock.Now())
			return attemptResult{outcome: outcomeLost}, err
		}
		if !errors.Is(err, locks.ErrConflict) {
			return attemptResult{holding: e.IsLeader(), outcome: outcomeError}, err
		}
		// Somebody wrote since our last write. It is still our term only
		// if the record still names us with our token: our own write
		// whose answer was lost, or an edit of other fields.
		obs, gerr := e.cfg.Lock.Get(ctx)
		now := e.cfg.Clock.Now()
		if gerr != nil && !errors.Is(gerr, locks.ErrInvalidRecord) {
			if errors.Is(gerr, locks.ErrNotFound) {
				e.loseToDeletion(now)
				return attemptResult{outcome: outcomeLost}, gerr
			}
			return attemptResult{holding: e.IsLeader(), outcome: outcomeError}, gerr
		}
		e.observe(obs, gerr == nil, now, e.cfg.LeaseDuration)
		if gerr != nil || obs.Record.HolderIdentity != e.cfg.Identity || obs.Record.LeaderTransitions != term.FencingToken {
			e.lose(now, "another writer replaced the record")
			return attemptResult{outcome: outcomeLost}, gerr
		}
		version = obs.Version
	}
	// Our record kept changing under us: it is still ours, the next
	// renewal may get through.
	return attemptResult{holding: e.IsLeader(), outcome: outcomeConflict},
		fmt.Errorf("renew %s: the record changed again while it was re-read: %w", e.cfg.Lock.Describe(), locks.ErrConflict)
}

// observe records what Get returned at now and reports whether the
// record's holder may be replaced: nobody holds it, or it has not changed
// for lease since this candidate first saw it as it is. A record held under
// this candidate's identity outside a term of this process is treated like
// anyone else's (see Election).
func (e *Election) observe(obs locks.Observed, valid bool, now time.Time, lease time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if valid {
		e.noteLocked(obs)
		e.forgetIgnoredLocked(obs)
	}
	if e.obs.changed(obs) {
		e.obs = observed(obs, valid, now)
		if valid {
			e.sawToken = true
			if obs.Record.LeaderTransitions > e.maxToken {
				e.maxToken = obs.Record.LeaderTransitions
			}
		}
	}
	holder := e.obs.holder()
	if holder != e.leader {
		e.leader = holder
		if holder != "" {
			e.pendingLeader = holder
		}
	}
	if valid && holder == "" {
		return true
	}
	return !now.Before(e.obs.at.Add(lease))
}

// warnIfOwnIdentity reports, once per term, a record held under this
// candidate's identity that this process did not acquire, as a campaign
// finds it: another candidate has the same identity, or this one
// restarted. A record of this process's own last term, left behind when
// the term ended without a release, is not that.
func (e *Election) warnIfOwnIdentity() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.obs.holder() != e.cfg.Identity || e.holding || e.warnedOwnIdentity {
		return
	}
	if !e.term.Started.IsZero() && e.obs.record.LeaderTransitions == e.term.FencingToken {
		return
	}
	if e.tried.matches(e.obs.record, e.cfg.Identity) {
		return // its own write, recognised too late to lead on
	}
	e.warnedOwnIdentity = true
	e.log.Warn("the lock names this candidate's identity but this process holds no term: another candidate has the same identity, or this one restarted; waiting for the lease to expire",
		"lock", e.cfg.Lock.Describe())
}

// observeMissing records that the record is missing at now and reports
// whether this candidate must still wait before creating it. A lock must
// have been missing for a whole lease first: it may have just been
// deleted under a leader that has not noticed yet, and a candidate cannot
// know whether it was.
func (e *Election) observeMissing(now time.Time) (wait bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.obs.seen || e.obs.exists {
		e.obs = observation{seen: true, at: now}
		e.leader = ""
	}
	return now.Before(e.obs.at.Add(e.cfg.LeaseDuration))
}

// startTerm makes this candidate the leader after the write that sent at
// start stored obs.
func (e *Election) startTerm(obs locks.Observed, start time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.holding = true
	e.warnedOwnIdentity = false
	e.tried = triedWrite{}
	e.version = obs.Version
	e.lastWrite = start
	e.term = Term{Election: e.cfg.Name, Identity: e.cfg.Identity, FencingToken: obs.Record.LeaderTransitions, Started: start}
	e.obs = observed(obs, true, start)
	e.sawToken = true
	if obs.Record.LeaderTransitions > e.maxToken {
		e.maxToken = obs.Record.LeaderTransitions
	}
	e.leader = e.cfg.Identity
	e.pendingLeader = e.cfg.Identity
	if e.firstLeadership.IsZero() {
		e.firstLeadership = start
	}
	e.moveTo = move{}
	e.handed = handOver{}
	e.noteLocked(obs)
}

// renewTime is the renew time of a renewal sent at now (a reading of the
// election's clock): now on the wall clock, unless that is not past the
// renew time of the term's last record, which happens when the wall clock
// stepped back (an NTP step, a VM restored from a snapshot). Then it is
// one step of the lock's resolution past the last renew time, once that
// long has passed on the monotonic clock since the last write; until then
// the last renew time itself, a write that changes nothing and counts as
// no renewal.
//
// So a term's renew times only grow, and a term never stores the same
// bytes twice: a renewal that changes the record from the leader's last
// write (see wrote) changes it from every state a standby may have seen,
// and the standby restarts its expiry clock. A renew time that went
// backwards could store again, byte for byte, a record a standby saw
// before it was cut off, and that standby, seeing no change since, would
// take over under a leader inside its renew deadline. Stepping by the
// lock's resolution no more often than the monotonic clock does, the
// renew time is never further ahead of the wall clock than the step back
// was (plus a step for each write whose answer was lost but which
// landed), and the wall clock catches up. tenure and client-go judge
// expiry from when they saw the record change, never from a renew time;
// Kubernetes' coordinated leader election judges a Lease by its renew time
// plus its lease, which a renew time ahead only makes later. The premise is
// that no other writer lowers the renew time of a record that names this
// term (restoring an old copy of it is outside the protocol: it can itself
// bring back bytes a standby saw).
//
// Both times are compared as wall-clock readings (Round(0)): a lock that
// answered with the Record it was given, not one decoded from what it
// stored, would hand back a time with a monotonic reading, and comparing
// two of those would ignore the wall clock's step (eighth review,
// TestWallStepBackWithMonotonicReadings).
func (e *Election) renewTime(now time.Time) time.Time {
	wall := e.wall(now).Round(0)
	e.mu.Lock()
	last, lastWrite := e.obs.record.RenewTime.Round(0), e.lastWrite
	e.mu.Unlock()
	if wall.After(last) {
		return wall
	}
	res := e.resolution()
	if now.Sub(lastWrite) >= res {
		return last.Add(res)
	}
	return last
}

// wrote records a successful renewal sent at start and reports whether it
// renewed the term: whether it changed the record's bytes, which is what
// other candidates count as a renewal (see observation.changed). Since a
// term's renew times only grow (see renewTime), a write that changed the
// bytes from the last one changed them from every earlier state of the
// term too, whichever a standby saw last.
func (e *Election) wrote(obs locks.Observed, start time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.version = obs.Version
	e.noteLocked(obs)
	if !e.obs.changed(obs) {
		return false
	}
	e.lastWrite = start
	e.obs = observed(obs, true, start)
	return true
}

// endTermLocked ends this candidate's term at now: it no longer leads,
// and Check times work that outlives the term from now. e.mu must be
// held.
func (e *Election) endTermLocked(now time.Time) {
	e.holding = false
	e.termEnded = now
}

// lose ends this candidate's hold on the lock because the record is no
// longer its own; there is nothing to release.
func (e *Election) lose(now time.Time, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loseLocked(now, why)
}

// loseLocked is lose with e.mu held; it reports whether a term ended.
func (e *Election) loseLocked(now time.Time, why string) bool {
	if !e.holding {
		return false
	}
	e.endTermLocked(now)
	e.version = ""
	e.log.Warn("lost leadership", "reason", why, "term", e.term.FencingToken)
	return true
}

// loseToDeletion ends the term because its lock was deleted: the lock is
// made again (see remakeDeleted) once the work has been cancelled.
func (e *Election) loseToDeletion(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loseLocked(now, "the lock was deleted") {
		e.obs = observation{seen: true, at: now}
		e.leader = ""
		e.deleted = true
	}
}

// remakeDeleted makes the lock again if a term of this candidate ended
// because its lock was deleted (see remake); Run calls it once the work
// has been cancelled, TryAcquireOrRenew after the attempt.
func (e *Election) remakeDeleted(ctx context.Context) {
	e.mu.Lock()
	deleted, token := e.deleted, e.term.FencingToken
	e.deleted = false
	e.mu.Unlock()
	if deleted {
		e.remake(ctx, token)
	}
}

// remake makes the lock again after this candidate found it deleted at
// the end of its term with token: held under its own identity, with that
// token, for a full lease, as a lock any candidate would find.
//
// A deletion takes the lock's history with it: a candidate that did not
// read the lock during the deleted term (it polls every RetryPeriod, and a
// hand-over starts a term within milliseconds) would make it with that
// term's token, and a late write of the deleted term would pass a fence.
// The leader knows its token. The record it makes is fresh: nobody takes it
// for a lease after first seeing it, as nobody makes a missing lock for a
// lease after first finding it missing, so this only delays other
// candidates; and the write is a create, which fails if anyone made the
// lock meanwhile. The record is never released early: a lock deleted
// twice may have been made and held by another candidate in between.
func (e *Election) remake(ctx context.Context, token int32) {
	now := e.cfg.Clock.Now()
	created, err := e.cfg.Lock.Create(ctx, e.record(now, now, token))
	if err != nil {
		e.log.Warn("the lock was deleted and cannot be made again with this candidate's last fencing token; the next term's token is what its maker has seen",
			"lock", e.cfg.Lock.Describe(), "term", token, "err", err)
		return
	}
	e.mu.Lock()
	e.obs = observed(created, true, now)
	e.leader = e.cfg.Identity
	e.mu.Unlock()
	e.log.Warn("the lock was deleted: made it again, held for a lease under this candidate's last term, so that the next term's fencing token is greater",
		"lock", e.cfg.Lock.Describe(), "term", token)
}

// release clears the record if it is still this candidate's, as client-go
// does (no holder, a one-second lease), so that a standby takes over at
// once; or, if a move was asked of the term (see handover.go), writes it
// over to the candidate asked for. A conflict is resolved by re-reading: a
// record that names another holder or term is left alone, and the move
// asked in the record re-read is the one made.
//
// It reports whether it handed the lock over.
func (e *Election) release(ctx context.Context) (handedOver bool, err error) {
	e.mu.Lock()
	version, token := e.version, e.term.FencingToken
	e.mu.Unlock()
	if version == "" {
		return false, nil // never wrote, or the record is no longer ours
	}
	m := e.requested()
	name := spanRelease
	if m.to != "" {
		name = spanMove
	}
	ctx, sp := e.startSpan(ctx, name, operationRelease)
	outcome := outcomeReleased
	defer func() {
		e.mu.Lock()
		if err == nil {
			e.lastOK, e.lostContact = e.cfg.Clock.Now(), false
		}
		holder, transitions := e.obs.holder(), e.obs.record.LeaderTransitions
		e.version = ""
		e.moveTo = move{}
		e.mu.Unlock()
		if m.to != "" {
			sp.SetAttributes(attrMoveFrom.String(e.cfg.Identity), attrMoveTo.String(m.to), attrMoveReason.String(m.reason))
		}
		sp.end(outcome, holder, transitions, err)
	}()
	for range 3 {
		now := e.cfg.Clock.Now()
		var written locks.Observed
		var err error
		if a, ok := e.cfg.Lock.(annotator); ok && m.to != "" {
			r, set := e.handOverRecord(m.to, token, now)
			written, err = a.Annotate(ctx, version, &r, set)
		} else {
			written, err = e.cfg.Lock.Update(ctx, version, locks.Record{
				LeaseDuration: time.Second, AcquireTime: now, RenewTime: now, LeaderTransitions: token,
			})
		}
		if err == nil {
			e.mu.Lock()
			e.obs = observed(written, true, now)
			e.leader = written.Record.HolderIdentity
			if m.to != "" {
				e.handed = handOver{move: m, version: written.Version, raw: written.Raw, at: now}
			}
			e.mu.Unlock()
			if m.to != "" {
				outcome = outcomeHandedOver
				e.log.Info("handed the lock over", "lock", e.cfg.Lock.Describe(), "to", m.to, "reason", m.reason, "term", token)
			}
			return m.to != "", nil
		}
		if errors.Is(err, locks.ErrNotFound) {
			outcome = outcomeLost
			e.remake(ctx, token)
			return false, nil
		}
		if !errors.Is(err, locks.ErrConflict) {
			outcome = outcomeError
			return false, err
		}
		obs, err := e.cfg.Lock.Get(ctx)
		if err != nil {
			if errors.Is(err, locks.ErrNotFound) {
				outcome = outcomeLost
				e.remake(ctx, token)
				return false, nil
			}
			if !errors.Is(err, locks.ErrInvalidRecord) {
				outcome = outcomeError
				return false, err
			}
		}
		e.observe(obs, err == nil, e.cfg.Clock.Now(), e.cfg.LeaseDuration)
		if err != nil || obs.Record.HolderIdentity != e.cfg.Identity || obs.Record.LeaderTransitions != token {
			outcome = outcomeHeld
			return false, nil
		}
		version = obs.Version
		e.mu.Lock()
		m = e.requestIn(obs)
		e.mu.Unlock()
	}
	outcome = outcomeConflict
	return false, fmt.Errorf("release %s: the record kept changing: %w", e.cfg.Lock.Describe(), locks.ErrConflict)
}
