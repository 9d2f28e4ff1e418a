package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenure/tenure/internal/backoff"
	"github.com/tenure/tenure/locks"
)

// ErrStopped is returned by Run after Stop.
var ErrStopped = errors.New("election: stopped")

// Election is one candidate in one election. Create it with New, then call
// Run; or drive it step by step with Acquire, RenewLoop and
// TryAcquireOrRenew. Its methods are safe for concurrent use.
type Election struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	ins    instruments
	attrs  []attribute.KeyValue

	// attemptMu makes attempts one at a time.
	attemptMu sync.Mutex

	mu                sync.Mutex
	obs               observation
	holding           bool      // in a term; see leading for whether it is still valid
	version           string    // version of our last write, while it may still be ours
	lastWrite         time.Time // when the last successful write of the term was sent
	term              Term
	leader            string // last observed holder
	pendingLeader     string // a new holder to announce when the attempt ends
	maxToken          int32
	sawToken          bool
	warnedOwnIdentity bool
	firstLeadership   time.Time         // when this candidate first led, zero before
	lastOK            time.Time         // when an attempt last succeeded
	lostContact       bool              // a term ended at its renew deadline, and no attempt succeeded since
	tried             triedWrite        // the last acquiring write whose answer was lost
	working           bool              // the leader work runs
	termEnded         time.Time         // when the last term ended before its work returned (lost, or past its deadline)
	moveTo            move              // the move asked of the current term, last seen (see handover.go)
	ignoredPreferred  string            // a spec.preferredHolder that let a lock handed to it expire
	notes             uint64            // observations noted (see noteRead)
	annotations       map[string]string // tenure's annotations on the lock, as last noted
	handed            handOver          // the last hand-over, until the lock changes (see takeBackDue)
	deleted           bool              // a term ended because its lock was deleted, and the lock is not made again yet (see remakeDeleted)

	// jitter lengthens a wait; tests replace it to get exact schedules.
	jitter func(time.Duration) time.Duration
	// wall is the wall-clock reading of a reading of cfg.Clock, which
	// stands for both clocks (a real time.Time carries both); tests of a
	// wall clock that steps replace it. Only renew times are read from it.
	wall func(time.Time) time.Time

	notifyMu sync.Mutex
	notifier *notifier // set while Run runs

	followMu sync.Mutex
	changes  <-chan struct{} // while Run or Acquire follows the lock (see follow)

	runMu     sync.Mutex
	running   bool
	stopped   bool
	cancel    context.CancelFunc
	done      chan struct{}
	callbacks callbackGoroutines
}

// New validates cfg, fills its defaults and returns an election that has
// not started.
func New(cfg Config) (*Election, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	ins, err := newInstruments(mp)
	if err != nil {
		return nil, fmt.Errorf("election %s: metrics: %w", cfg.Name, err)
	}
	return &Election{
		cfg:    cfg,
		log:    cfg.Logger.With("election", cfg.Name, "identity", cfg.Identity),
		tracer: tp.Tracer(ScopeName),
		ins:    ins,
		attrs:  staticAttributes(cfg),
		jitter: jitter,
		wall:   func(t time.Time) time.Time { return t },
	}, nil
}

// IsLeader reports whether this candidate is in a leadership term whose
// last successful write was sent less than RenewDeadline ago.
func (e *Election) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading()
}

// leading says whether this candidate is in a term and within its renew
// deadline on the clock, whether or not a timer has ended the term yet;
// e.mu must be held.
func (e *Election) leading() bool {
	return e.holding && e.cfg.Clock.Since(e.lastWrite) < e.cfg.RenewDeadline
}

// Leader returns the holder this candidate last observed, "" if none.
func (e *Election) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Term returns the current term, if this candidate leads (see IsLeader).
func (e *Election) Term() (Term, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term, e.leading()
}

// Run campaigns, leads and campaigns again after each term until ctx is
// done or Stop is called. During a term it runs OnStartedLeading; when the
// term ends it cancels the leader work, waits for it to return, releases
// the lock (unless KeepLeaseOnStop and stopping) and calls
// OnStoppedLeading. It returns nil when stopped, ErrStopped if Stop was
// called before, and an error if it is already running.
//
// When ctx is done (or Stop is called) during a term, the term goes on
// until the leader work has returned: the work's context is cancelled,
// and the leader keeps renewing under the usual rules while the work
// winds down, so that no other candidate takes over while it is still
// flushing or committing. If renewals fail meanwhile, the term ends at the
// renew deadline as always, and Valid says so. Run returns once the work
// has returned and the lock is released; see Stop to bound the wait.
func (e *Election) Run(ctx context.Context) error {
	ctx, finish, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer finish()
	defer e.follow()()
	unobserve, err := e.observeGauges(e.cfg.Clock.Now())
	if err != nil {
		e.log.Warn("cannot report the election's gauges", "err", err)
	}
	defer unobserve()
	if e.cfg.OnNewLeader != nil {
		n := newNotifier(func(identity string) {
			e.callback("OnNewLeader", func() { e.cfg.OnNewLeader(identity) })
		})
		e.setNotifier(n)
		defer func() {
			e.setNotifier(nil)
			n.close()
		}()
	}
	for {
		if ok, _ := e.Acquire(ctx); !ok {
			return nil // ctx done
		}
		handedOver := e.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// The term ended early (lost, or the work returned): let the other
		// candidates have a go before campaigning again. A lock handed
		// over is held by another: campaign at once, so that a lock
		// handed back is taken at once too.
		if !handedOver && !e.sleep(ctx, e.jitter(e.cfg.RetryPeriod)) {
			return nil
		}
	}
}

func (e *Election) begin(ctx context.Context) (context.Context, func(), error) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.stopped {
		return nil, nil, ErrStopped
	}
	if e.running {
		return nil, nil, fmt.Errorf("election %s: Run is already running", e.cfg.Name)
	}
	ctx, cancel := context.WithCancel(ctx)
	e.running, e.cancel, e.done = true, cancel, make(chan struct{})
	done := e.done
	return ctx, func() {
		cancel()
		e.runMu.Lock()
		e.running = false
		e.runMu.Unlock()
		close(done)
	}, nil
}

// Stop ends Run: it cancels the leader work, waits for it to return (the
// leader renewing meanwhile), releases the lock as configured, and returns
// once Run has returned. Later calls to Run return ErrStopped. Stop may be
// called more than once, and before Run.
//
// If ctx ends before Run has returned, Stop stops waiting and returns an
// error saying why. Run goes on all the same, since a term lasts until its
// work has returned: the leader keeps renewing while the work runs on
// (Valid holds), releases the lock once it returns, and Run returns then.
// If renewals fail meanwhile, the term ends at the renew deadline as
// always; work that outlives it (or a request that ignores its
// cancellation) holds up Run, not Stop. A process that cannot wait for
// its work should exit: its lease then expires on its own, with the work
// gone.
//
// Called from one of the election's own callbacks (the leader work,
// OnNewLeader, OnStoppedLeading), Stop cannot wait for Run, which waits
// for that callback: it cancels and returns nil at once, and Run ends as
// above once the callback has returned.
func (e *Election) Stop(ctx context.Context) error {
	e.runMu.Lock()
	e.stopped = true
	cancel, done, running := e.cancel, e.done, e.running
	e.runMu.Unlock()
	if !running {
		return nil
	}
	cancel()
	if e.callbacks.current() {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	held := e.holding
	e.mu.Unlock()
	if !held {
		return fmt.Errorf("election %s: %w before Run returned", e.cfg.Name, context.Cause(ctx))
	}
	return fmt.Errorf("election %s: %w before the leader work returned: its term, on %s, is renewed until it returns", e.cfg.Name, context.Cause(ctx), e.cfg.Lock.Describe())
}

// Acquire campaigns until this candidate holds the lock (true) or ctx is
// done (false and ctx's error). Attempts are retried every RetryPeriod,
// jittered; after failed attempts (the lock unreachable, a request
// refused) the wait doubles with each failure in a row, up to 8
// RetryPeriods and never more than LeaseDuration. Errors are logged when
// they change.
func (e *Election) Acquire(ctx context.Context) (bool, error) {
	defer e.follow()()
	var lastErr string
	failures := 0
	for {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		// An attempt, once begun, is not cut short by ctx: a write cut off
		// in flight may have taken the lock without this candidate knowing,
		// and then nobody would release it before it expires.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RenewDeadline)
		res, err := e.attempt(actx)
		cancel()
		if res.holding {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil && err.Error() != lastErr {
			e.log.Warn("cannot acquire the lock", "lock", e.cfg.Lock.Describe(), "err", err, "failures", failures+1)
		}
		if err != nil {
			lastErr, failures = err.Error(), failures+1
		} else {
			lastErr, failures = "", 0
		}
		if !e.waitToCampaign(ctx, failures) {
			return false, ctx.Err()
		}
	}
}

// errorBackoff is the wait before the next attempt after failures failed
// attempts in a row: RetryPeriod doubled per failure after the first, at
// most maxErrorBackoff RetryPeriods and never more than LeaseDuration, so
// that a candidate tries again within a lease of the lock becoming
// reachable.
func (e *Election) errorBackoff(failures int) time.Duration {
	limit := max(min(maxErrorBackoff*e.cfg.RetryPeriod, e.cfg.LeaseDuration), e.cfg.RetryPeriod)
	return backoff.Doubling(e.cfg.RetryPeriod, limit, failures)
}

// follower is a lock that can follow its record's changes, such as a
// LeaseLock (see locks.LeaseLock.Watch): a candidate waits on its channel
// instead of its next poll. Run follows the lock for as long as it runs,
// so that the watch is not restarted between terms; Acquire, when it is
// called on its own.
type follower interface {
	Watch() (changes <-chan struct{}, stop func())
}

// follow makes the election follow its lock, if the lock can and the
// election does not already, and returns the function that ends it.
func (e *Election) follow() (end func()) {
	f, ok := e.cfg.Lock.(follower)
	if !ok {
		return func() {}
	}
	e.followMu.Lock()
	defer e.followMu.Unlock()
	if e.changes != nil {
		return func() {}
	}
	changes, stop := f.Watch()
	if changes == nil {
		stop()
		return func() {}
	}
	e.changes = changes
	return func() {
		e.followMu.Lock()
		e.changes = nil
		e.followMu.Unlock()
		stop()
	}
}

// following returns the lock's change channel while the election follows
// it, else nil.
func (e *Election) following() <-chan struct{} {
	e.followMu.Lock()
	defer e.followMu.Unlock()
	return e.changes
}

// waitToCampaign waits for the next attempt to acquire: RetryPeriod
// (jittered), or less if the lease this candidate observes expires
// sooner, or until the lock reports a change. After failed attempts it
// waits the error backoff instead and does not shorten it for an expired
// lease: an unreachable lock is not retried in a busy loop. It returns
// false if ctx is done first.
func (e *Election) waitToCampaign(ctx context.Context, failures int) bool {
	d := e.jitter(e.cfg.RetryPeriod)
	if failures > 0 {
		d = e.jitter(e.errorBackoff(failures))
	} else if until, ok := e.untilExpiry(); ok && until < d {
		d = max(until, 0)
	}
	if until, ok := e.untilSilent(); ok && until > 0 && until < d {
		d = until // then read past the cache
	}
	changes := e.following()
	t := e.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	case <-changes:
		return true
	}
}

// serverReader is a lock that may answer reads from a cache, such as a
// LeaseLock while it follows its Lease, and can read past it.
type serverReader interface {
	GetFromServer(ctx context.Context) (locks.Observed, error)
}

// read reads the record for an attempt to acquire: past the lock's cache
// once the holder this candidate observes has been silent for longer than
// its renewals take (see untilSilent). A watch can be established and yet
// deliver nothing (a half-open connection); then the cache looks quiet,
// and without this a graceful hand-over would wait out a whole lease and a
// crash take-over about two.
func (e *Election) read(ctx context.Context) (locks.Observed, error) {
	if until, ok := e.untilSilent(); ok && until <= 0 {
		return e.cfg.Lock.(serverReader).GetFromServer(ctx)
	}
	return e.cfg.Lock.Get(ctx)
}

// untilSilent is how long until the holder of a lock with a cache has gone
// without a renewal this candidate could see for longer than renewals
// take: RenewInterval (this candidate's own, which the replicas of one
// program share) jittered, plus half a RetryPeriod for the write and the
// watch to deliver it. It is false when the lock has no cache or no
// renewals are expected: no holder, or this candidate leads.
func (e *Election) untilSilent() (time.Duration, bool) {
	if _, ok := e.cfg.Lock.(serverReader); !ok {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.obs
	if !o.seen || !o.exists || !o.valid || o.record.HolderIdentity == "" || e.holding {
		return 0, false
	}
	limit := jittered(e.cfg.RenewInterval) + e.cfg.RetryPeriod/2
	return o.at.Add(limit).Sub(e.cfg.Clock.Now()), true
}

// untilExpiry is how long until the record this candidate observes may be
// taken over, judged as the attempts judge it: from when it was seen to
// change, plus its lease (this candidate's own for a missing or unreadable
// record). It is false when there is nothing to wait for.
func (e *Election) untilExpiry() (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.obs
	if !o.seen || e.holding {
		return 0, false
	}
	lease := e.cfg.LeaseDuration
	if o.exists && o.valid {
		if o.record.HolderIdentity == "" {
			return 0, false
		}
		lease = o.record.LeaseDuration
	}
	return o.at.Add(lease).Sub(e.cfg.Clock.Now()), true
}

// RenewLoop renews the lock every RenewInterval while this candidate leads
// and returns when the term is over: a write replaced or deleted the
// record, or RenewDeadline passed since the start of the last successful
// write. It also returns when ctx is done (Stop, which ends Run, does
// not end it); it never releases the lock.
func (e *Election) RenewLoop(ctx context.Context) {
	e.hold(ctx, nil, nil)
}

// lead runs one term: the leader work, renewals, and the end of the term.
// It reports whether the term ended handing the lock over to another
// candidate.
func (e *Election) lead(ctx context.Context) (handedOver bool) {
	term, ok := e.Term()
	if !ok {
		return false
	}
	e.log.Info("started leading", "lock", e.cfg.Lock.Describe(), "term", term.FencingToken)
	// The term's span: the work's context carries it, so that the work's
	// own spans nest under it.
	spanCtx, termSpan := e.tracer.Start(ctx, spanLeadPrefix+e.cfg.Name,
		trace.WithAttributes(append(e.attrs, attrTransitions.Int(int(term.FencingToken)))...))
	defer termSpan.End()
	workCtx, cancelWork := context.WithCancel(withTerm(spanCtx, e, term))
	defer cancelWork()
	workDone := make(chan struct{})
	e.mu.Lock()
	e.working = true
	e.mu.Unlock()
	go func() {
		defer close(workDone)
		defer func() {
			e.mu.Lock()
			e.working = false
			e.mu.Unlock()
		}()
		e.runWork(workCtx)
	}()

	// hold returns when the term is over, the work cancelled.
	reason := e.hold(ctx, workDone, cancelWork)
	termSpan.SetAttributes(attrEndReason.String(reason))
	// The term is over, and the work cancelled: wait for it. Work that
	// outlives a term that ended at its deadline holds up Run, not Stop.
	<-workDone
	cancelWork() // whatever the work left running stops before the release
	e.mu.Lock()
	e.holding = false
	e.mu.Unlock()
	e.log.Info("stopped leading", "reason", reason, "term", term.FencingToken)
	if ctx.Err() == nil || !e.cfg.KeepLeaseOnStop {
		handedOver = e.releaseDetached(spanCtx)
	}
	if e.cfg.OnStoppedLeading != nil {
		e.callback("OnStoppedLeading", e.cfg.OnStoppedLeading)
	}
	return handedOver
}

// releaseDetached releases the lock with a context that ctx's
// cancellation does not reach, bounded by RenewDeadline, logs a failure,
// and reports whether the release handed the lock over.
func (e *Election) releaseDetached(ctx context.Context) (handedOver bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RenewDeadline)
	defer cancel()
	handedOver, err := e.release(rctx)
	if err != nil {
		e.log.Warn("cannot release the lock; other candidates take over when the lease expires", "lock", e.cfg.Lock.Describe(), "err", err)
	}
	return handedOver
}

// hold renews the lock until the term is over and says why it ended. With
// leader work (workDone and cancelWork set, as Run leads), the term is
// over when the work has returned, the record was lost, or the renew
// deadline passed; ctx done and Stop only cancel the work, which winds
// down while renewals go on. hold cancels
// the work itself the moment the term ends, before anything else (such as
// a request in flight) can delay it, and marks the candidate as no longer
// leading first, so that Valid fails before the work's context is done.
// Without work (RenewLoop), ctx done ends it.
func (e *Election) hold(ctx context.Context, workDone <-chan struct{}, cancelWork context.CancelFunc) (reason string) {
	if cancelWork == nil {
		cancelWork = func() {}
	}
	e.mu.Lock()
	lastWrite := e.lastWrite
	e.mu.Unlock()
	deadline := lastWrite.Add(e.cfg.RenewDeadline)
	clk := e.cfg.Clock
	deadlineTimer := clk.NewTimer(deadline.Sub(clk.Now()))
	defer deadlineTimer.Stop()
	// Timed from the last write's start, as every later renewal is: an
	// acquisition answered slowly (or recognised after its answer was
	// lost) leaves that much less until the deadline.
	renewTimer := clk.NewTimer(max(e.jitter(e.cfg.RenewInterval)-clk.Since(lastWrite), 0))
	defer renewTimer.Stop()

	// Renewals go on while the work winds down: ctx does not cut them.
	attemptCtx, cancelAttempts := context.WithCancel(context.WithoutCancel(ctx))
	var inflight sync.WaitGroup
	defer func() {
		cancelAttempts()
		// A request that ignores its cancellation is waited for here,
		// after the work was cancelled.
		inflight.Wait()
	}()
	type result struct {
		res attemptResult
		err error
	}
	results := make(chan result, 1)
	stop := ctx.Done()
	stopping := false
	// A leader reads the lock when its watch reports a change, so that a
	// move asked of it is seen at once rather than at the next renewal; a
	// read from the watch's cache costs no request. One read at a time.
	changes := e.following()
	reads := make(chan struct{}, 1)
	reading, readAgain := false, false
	read := func() {
		reading, readAgain = true, false
		since := e.notesSoFar()
		inflight.Go(func() {
			rctx, cancel := context.WithTimeout(attemptCtx, e.cfg.RetryPeriod)
			defer cancel()
			if obs, err := e.cfg.Lock.Get(rctx); err == nil {
				e.noteRead(obs, since)
			}
			reads <- struct{}{}
		})
	}
	var moving move
	moveIfAsked := func() {
		if workDone == nil || moving.to != "" {
			return
		}
		if moving = e.requested(); moving.to != "" {
			e.log.Info("handing the lock over: the leader work winds down, the lock is renewed until it returns",
				"lock", e.cfg.Lock.Describe(), "to", moving.to, "reason", moving.reason)
			cancelWork()
		}
	}
	moveIfAsked()
	end := func(why string) string {
		e.mu.Lock()
		e.endTermLocked(clk.Now())
		e.mu.Unlock()
		cancelWork()
		return why
	}
	// endCutOff ends a term whose renew deadline passed with no
	// successful renewal: the candidate is cut off from its lock.
	endCutOff := func(detail string) string {
		e.mu.Lock()
		e.lostContact = true
		e.mu.Unlock()
		return end(fmt.Sprintf("no successful renewal for the renew deadline %v%s", e.cfg.RenewDeadline, detail))
	}
	for {
		select {
		case <-stop:
			if workDone == nil {
				return "stopped"
			}
			stop, stopping = nil, true
			e.log.Info("stopping: the leader work winds down, the lock is renewed until it returns", "lock", e.cfg.Lock.Describe())
			cancelWork()
		case <-workDone:
			if stopping || ctx.Err() != nil { // the work may see ctx first
				return "stopped"
			}
			if moving.to != "" {
				return "handing over to " + moving.to
			}
			return "the leader work returned"
		case <-changes:
			if reading {
				readAgain = true // the read in flight may predate this change
				continue
			}
			read()
		case <-reads:
			reading = false
			moveIfAsked()
			if readAgain {
				read()
			}
		case <-deadlineTimer.C():
			return endCutOff("")
		case <-renewTimer.C():
			// An attempt may take until the deadline: a slow API server
			// still renews, and the deadline timer ends the term on time
			// whatever the attempt does.
			timeout := max(deadline.Sub(clk.Now()), e.cfg.RetryPeriod)
			inflight.Go(func() {
				actx, cancel := context.WithTimeout(attemptCtx, timeout)
				defer cancel()
				res, err := e.attempt(actx)
				results <- result{res, err}
			})
		case r := <-results:
			moveIfAsked()
			switch {
			case !r.res.wroteAt.IsZero():
				deadline = r.res.wroteAt.Add(e.cfg.RenewDeadline)
				deadlineTimer.Reset(deadline.Sub(clk.Now()))
				// Timed from the write's start, as the deadline is: a slow
				// answer does not push the next renewal towards it.
				renewTimer.Reset(max(e.jitter(e.cfg.RenewInterval)-clk.Since(r.res.wroteAt), 0))
				continue
			case !r.res.holding && r.res.outcome != outcomeLost:
				// The renewal failed after the deadline had passed.
				return endCutOff(": " + errString(r.err))
			case !r.res.holding:
				why := end("the lock was lost: " + errString(r.err))
				e.remakeDeleted(attemptCtx) // after the work was cancelled
				return why
			case r.res.outcome == outcomeUnchanged:
				// Stored, but no other candidate can tell it from the last
				// renewal: the deadline stays. Renew again after a
				// RetryPeriod, or as soon as the lock's clock has ticked.
				renewTimer.Reset(min(e.jitter(e.cfg.RetryPeriod), e.untilNextTick()))
				continue
			default:
				e.log.Warn("cannot renew the lock", "lock", e.cfg.Lock.Describe(), "outcome", r.res.outcome, "err", r.err, "deadline_in", deadline.Sub(clk.Now()))
			}
			renewTimer.Reset(e.jitter(failedRenewalRetry(e.cfg.RetryPeriod)))
		}
	}
}

// timeResolution is a lock that says how finely it stores a record's
// times, such as a ConfigMap (whole seconds) or a Lease (microseconds).
type timeResolution interface {
	TimeResolution() time.Duration
}

// resolutionOf is how finely l stores times, if it says.
func resolutionOf(l locks.Lock) (time.Duration, bool) {
	if r, ok := l.(timeResolution); ok && r.TimeResolution() > 0 {
		return r.TimeResolution(), true
	}
	return 0, false
}

// resolution is how finely the lock stores times: as it says, else whole
// seconds, the coarsest of client-go's formats.
func (e *Election) resolution() time.Duration {
	if res, ok := resolutionOf(e.cfg.Lock); ok {
		return res
	}
	return time.Second
}

// untilNextTick is how long until the lock's clock ticks (a renewal stores
// a new renew time), and a little more (see resolution).
func (e *Election) untilNextTick() time.Duration {
	res := e.resolution()
	now := e.cfg.Clock.Now()
	return res - now.Sub(now.Truncate(res)) + 10*time.Millisecond
}

func errString(err error) string {
	if err == nil {
		return "replaced by another writer"
	}
	return err.Error()
}

// runWork runs the leader work, turning a panic into a log line.
func (e *Election) runWork(ctx context.Context) {
	if e.cfg.OnStartedLeading == nil {
		<-ctx.Done()
		return
	}
	e.callback("OnStartedLeading", func() { e.cfg.OnStartedLeading(ctx) })
}

// callback runs a user callback; a panic is logged with its stack and
// does not take the election down.
func (e *Election) callback(name string, fn func()) {
	defer e.callbacks.enter()()
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("callback panicked", "callback", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// sleep waits d on the election's clock and reports whether ctx is still
// live.
func (e *Election) sleep(ctx context.Context, d time.Duration) bool {
	t := e.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// jitter returns d lengthened by a random fraction of up to
// (jitterFactor − 1) × d.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Float64()*(jitterFactor-1)*float64(d))
}

func (e *Election) setNotifier(n *notifier) {
	e.notifyMu.Lock()
	defer e.notifyMu.Unlock()
	e.notifier = n
}

// announce reports a new leader to OnNewLeader: through Run's notifier
// goroutine while Run runs, else directly.
func (e *Election) announce(identity string) {
	if e.cfg.OnNewLeader == nil {
		return
	}
	e.notifyMu.Lock()
	n := e.notifier
	e.notifyMu.Unlock()
	if n != nil {
		n.push(identity)
		return
	}
	e.callback("OnNewLeader", func() { e.cfg.OnNewLeader(identity) })
}

// validTerm checks that t is the current term and within its renew
// deadline (see Valid).
func (e *Election) validTerm(t Term) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.holding || e.term.FencingToken != t.FencingToken || !e.term.Started.Equal(t.Started) {
		return fmt.Errorf("%w of %s: term %d is over", ErrNotLeader, e.cfg.Name, t.FencingToken)
	}
	if since := e.cfg.Clock.Since(e.lastWrite); since >= e.cfg.RenewDeadline {
		return fmt.Errorf("%w of %s: no renewal for %v, the renew deadline %v has passed", ErrNotLeader, e.cfg.Name, since, e.cfg.RenewDeadline)
	}
	return nil
}

// HandOverTo is the candidate this leader was asked to hand the lock over
// to (see the package documentation: a planned hand-over), "" if none or
// if this candidate does not lead.
func (e *Election) HandOverTo() string {
	if !e.IsLeader() {
		return ""
	}
	return e.requested().to
}

// Annotations returns tenure's annotations on the lock object (see
// locks.Observed.Annotations), as this candidate last read or wrote it:
// such as a move asked of the leader (locks.PreferredHolderAnnotation) or
// an operator's mark. The map must not be modified.
func (e *Election) Annotations() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.annotations
}

// Record returns the record as this candidate last read or wrote it, and
// false if it has seen no valid record yet.
func (e *Election) Record() (locks.Record, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.obs.record, e.obs.seen && e.obs.exists && e.obs.valid
}

// Check reports whether this candidate is cut off from its lock while it
// leads, or since it lost a term for want of renewals: it fails once no
// attempt has succeeded for RenewDeadline + margin, and passes again after
// one does. It also fails while leader work runs on for longer than margin
// after its term ended (lost, or cut off), ignoring its cancellation. A
// follower that cannot reach the lock is not at fault and passes. Serve it
// as a liveness probe (as client-go's HealthzAdaptor), so that a leader
// cut off from the API server, or whose work outlives its term, is
// restarted.
func (e *Election) Check(margin time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.working && !e.holding {
		if since := e.cfg.Clock.Since(e.termEnded); since > margin {
			return fmt.Errorf("election %s: the leader work of term %d runs on %v after its term ended", e.cfg.Name, e.term.FencingToken, since.Truncate(time.Millisecond))
		}
	}
	if !e.holding && !e.lostContact {
		return nil
	}
	if since := e.cfg.Clock.Since(e.lastOK); since > e.cfg.RenewDeadline+margin {
		return fmt.Errorf("election %s: no successful call to %s for %v (renew deadline %v)",
			e.cfg.Name, e.cfg.Lock.Describe(), since.Truncate(time.Millisecond), e.cfg.RenewDeadline)
	}
	return nil
}
