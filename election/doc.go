// Package election runs one leader election on a locks.Lock: a candidate
// campaigns for the lock, runs its leader work while it holds it, renews
// it, and releases it once the work has returned.
//
// # Where to start
//
// Make a lock (locks.NewLeaseLock for a Kubernetes Lease, or any
// locks.Lock), describe the election in a Config and pass it to New, then
// call Run:
//
//	e, err := election.New(election.Config{
//		Lock:             lock,
//		LeaseDuration:    15 * time.Second,
//		RenewDeadline:    10 * time.Second,
//		RetryPeriod:      2 * time.Second,
//		OnStartedLeading: reconcile, // the leader work
//	})
//	if err != nil {
//		return err // a timing that breaks a rule is a *TimingError
//	}
//	return e.Run(ctx) // campaigns, leads, campaigns again, until ctx is done
//
// New only checks the Config and fills its defaults: it makes no request
// and starts no goroutine. Run campaigns until it holds the lock, runs
// OnStartedLeading for the term, and campaigns again after each term,
// until its context is done or Stop is called.
//
// # The leader work
//
// OnStartedLeading runs in its own goroutine for each term, with a context
// that is cancelled when the term ends; it should run until then. The
// context carries the term: TermFromContext returns its identity and
// fencing token. Call Valid(ctx) right before each action taken as leader:
// it fails as soon as the term's renew deadline has passed, even in a
// process that was frozen and has not yet run the timer that cancels the
// context. When the work returns (or panics, which is recovered and
// logged), the term ends: the lock is released and the candidate
// campaigns again.
//
// # Callbacks and where to call what
//
// OnStartedLeading is the leader work, as above. OnStoppedLeading is
// called after a term's work has returned and the lock was released.
// OnNewLeader is called with each new holder this candidate observes; under
// Run, in order from a goroutine of the election, so a slow callback never
// delays a renewal. Without Run it is called by the attempt that saw the
// change, before the attempt returns, and must not start another attempt.
//
// Every method of an Election is safe for concurrent use. IsLeader,
// Leader, Term, Record and Check only read what the candidate last saw and
// may be called from anywhere, the callbacks included; serve Check as a
// liveness probe. Run runs once at a time. Acquire, RenewLoop and
// TryAcquireOrRenew drive an election step by step instead of Run, as
// client-go's tryAcquireOrRenew does; they run no leader work.
//
// # Stopping
//
// Cancel Run's context, or call Stop: the leader work's context is
// cancelled, the leader keeps renewing while the work winds down, then it
// releases the lock so that a standby takes over at once, and Run returns.
// Stop waits for all that; give its context a deadline (a shutdown
// timeout) to bound the wait: past it Stop returns an error, and the term
// goes on until the work returns (renewed, then released), as a term lasts
// until its work has returned; exit the process to end it sooner. Called
// from a callback, Stop does not wait: Run itself waits for that callback.
//
// # Safety
//
// As in client-go, another holder's lease expires on the local clock, a
// lease after this candidate saw the record change. It is safer than
// client-go's tools/leaderelection in these ways:
//   - A term lasts until its leader work has returned: when Run's context
//     is done or Stop is called, the work is cancelled and the leader keeps
//     renewing while it winds down, then releases the lock.
//   - The leader work's context is cancelled once RenewDeadline has passed
//     since the start of the last successful write, by a timer that does
//     not wait for a request in flight; no other candidate can consider
//     the lease expired before LeaseDuration has passed since it saw that
//     write. A renewal that leaves the record's bytes as they were (two
//     renewals of a ConfigMap within one second store the same bytes) does
//     not count, since no other candidate can tell it from the last. A
//     term's renew times only grow, even when the wall clock steps back
//     (they then step by the lock's resolution, no faster than time
//     passes, until the wall clock catches up), so a term never stores
//     the same bytes twice: a renewal that changes the record from the
//     last one changes it from whatever state another candidate last saw.
//   - IsLeader, Term, TryAcquireOrRenew and Valid report a term only while
//     its last successful write was sent less than RenewDeadline ago.
//   - The lock is released only after the leader work has returned.
//   - A record held under this candidate's identity is not taken as its own
//     unless this process acquired it: a duplicate identity or a restart
//     waits for the lease to expire.
//   - An unreadable record is reported and taken over only after it stayed
//     unchanged for a whole lease. A deleted lock makes its leader step
//     down, and a missing lock is created only after it stayed missing for
//     a whole lease, since it may have just been deleted under a leader
//     that has not noticed yet. (So the very first election on a new lock
//     takes one LeaseDuration.) The leader that finds its lock deleted, at
//     a renewal or its release, makes it again at once, held under its own
//     name with its term's token for a full lease: a deletion takes the
//     lock's history with it, and a candidate that did not read the lock
//     during that term would otherwise start the next term with the same
//     token.
//   - OnStoppedLeading is called only after a term this candidate led.
//
// Deleting a held lock object is outside the protocol, in tenure as in
// client-go: a candidate whose reads both found the lock missing cannot
// know that it was created and deleted in between, and may create it
// while the deleted lock's leader still works; that leader stops at its
// next renewal, within RenewInterval. A lock deleted while nobody holds it
// (released, or handed to a candidate that has not taken it yet) is made
// again by the first candidate to wait out its lease, with one more than
// the greatest token that candidate has seen. Do not delete locks that are
// in use.
//
// # Telemetry
//
// The tracer and meter come from Config.TracerProvider and
// Config.MeterProvider (the global providers by default), with the
// instrumentation scope ScopeName. Every attempt is a span: "acquire
// lease", "renew lease" or "release lease"; each term is a span "lead
// <election>" that the leader work's context carries, so that the work's
// own spans nest under it. Spans carry the attributes
// tenure.election.name, tenure.election.identity, tenure.lock.name,
// tenure.lock.kind, k8s.namespace.name (for a namespaced lock),
// tenure.outcome (acquired, renewed, unchanged, released, held by other,
// missing, conflict, lost or error), tenure.lease.holder and
// tenure.lease.transitions; a failed attempt sets error.type, and a term's
// span tenure.term.end_reason.
//
// The metrics, with the names a Prometheus exporter gives them:
//   - tenure.election.leader (tenure_election_leader): 1 while this
//     candidate leads, else 0.
//   - tenure.election.leader_transitions
//     (tenure_election_leader_transitions): the record's leader
//     transitions, as last observed.
//   - tenure.election.attempts (tenure_election_attempts_total): attempts,
//     by tenure.operation (acquire, renew, release) and tenure.outcome.
//   - tenure.election.renew.duration
//     (tenure_election_renew_duration_seconds): latency of renewals.
//   - tenure.election.time_to_first_leadership
//     (tenure_election_time_to_first_leadership_seconds): from the start of
//     Run to this candidate's first term.
//   - tenure.election.since_last_renewal
//     (tenure_election_since_last_renewal_seconds): time since the leader's
//     last successful renewal, only while it leads.
//
// Every metric is labelled with the election's name
// (tenure.election.name), so cardinality stays bounded.
package election
