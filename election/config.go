package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/tenure/tenure/locks"
)

// jitterFactor is how much longer than RetryPeriod a wait between two
// attempts may be, at most, so that candidates do not retry in lock-step:
// each wait is RetryPeriod × (1 + a random fraction of jitterFactor − 1).
// RenewDeadline must exceed RetryPeriod × jitterFactor so that a leader
// makes at least one more attempt after a success before its deadline.
const jitterFactor = 1.2

// maxErrorBackoff is how many RetryPeriods a candidate waits at most
// between attempts to acquire that fail in a row (the API server down or
// refusing), never more than LeaseDuration: the wait doubles from
// RetryPeriod with each failure.
const maxErrorBackoff = 8

// maxIdentityLength is the longest identity an election accepts, in
// bytes: room for any pod name with a suffix, and far below what the API
// server takes in a lock object, which it would write at every renewal.
const maxIdentityLength = 1024

// Config describes one election. LeaseDuration, RenewDeadline and
// RetryPeriod have no defaults: the right values depend on how long a
// component may go without a leader. client-go's usual values are 15s,
// 10s and 2s.
type Config struct {
	// Lock is where the leadership record lives. Required.
	Lock locks.Lock
	// Name names the election in logs, traces and the leader work's Term.
	// It defaults to the lock's Name() if it has one, else to Describe().
	Name string
	// Identity is this candidate's identity, unique among the candidates.
	// It defaults to the lock's Identity() if it has one.
	Identity string

	// LeaseDuration is how long other candidates wait, after they last saw
	// the record change, before they take over from a silent leader. It is
	// written to the record in whole seconds, rounded up.
	LeaseDuration time.Duration
	// RenewDeadline is how long a leader keeps its term without a
	// successful renewal: the leader work's context is cancelled once this
	// long has passed since the start of the last successful write, which
	// is before any other candidate can see the lease as expired.
	RenewDeadline time.Duration
	// RetryPeriod is the wait between two attempts to acquire. A failed
	// renewal is retried after half of it, so that a leader that renews
	// seldom still has several attempts before RenewDeadline.
	RetryPeriod time.Duration
	// RenewInterval is the time from the start of a successful write (the
	// acquisition or a renewal) to the next renewal, so that a slow
	// answer does not push renewals towards RenewDeadline. Default: the longest that leaves the renewal and three
	// retries, each wait at its longest jitter, before RenewDeadline, the
	// last half a RetryPeriod before it, and at most half of
	// RenewDeadline, but never under RetryPeriod (see
	// defaultRenewInterval). At client-go's
	// 15s/10s/2s it is 4.5s: a renewal about every 5s, where client-go
	// renews every 2s and its standbys poll as often. A shorter one makes
	// more requests and leaves longer for retries (an API outage that
	// fails every attempt before the deadline ends the term: with the
	// default, one of 3.6s at the worst moment, of 9s at the best), and
	// standbys behind a silent watch notice a release sooner (they read
	// past their cache once a renewal is overdue); RenewDeadline must
	// exceed RenewInterval × 1.2 (see TimingError).
	RenewInterval time.Duration

	// OnStartedLeading is the leader work. It runs in its own goroutine
	// when this candidate becomes leader, with a context that carries the
	// Term and is cancelled when the term ends: leadership lost, or Stop.
	// It should run until that context is done: when it returns (or
	// panics, which is recovered and logged) the term ends, the lock is
	// released, and the candidate campaigns again.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading is called after a term's leader work has returned
	// and the lock was released, only if this candidate led.
	OnStoppedLeading func()
	// OnNewLeader is called with the identity of each new holder this
	// candidate observes, including itself, once per change; not for a
	// released lock. Calls are made in order from a goroutine of the
	// election, so a slow callback delays later calls but never renewal.
	OnNewLeader func(identity string)

	// KeepLeaseOnStop keeps the lock held when Run ends. By default Run
	// releases it after the leader work has returned, so that another
	// candidate takes over at once instead of after LeaseDuration.
	KeepLeaseOnStop bool

	// Clock is the time source; tests inject a fake one. Default: the
	// real clock. Its readings must never go back: the real clock's carry
	// a monotonic reading, which no step of the wall clock moves, and a
	// fake clock must only be stepped forward. Deadlines and expiry are
	// judged on it.
	Clock clock.WithTicker
	// TracerProvider makes the tracer that traces every acquire, renew and
	// release, and each term (see Telemetry in the package documentation
	// for the span names). Default: the global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the meter of the election's metrics, such as
	// tenure.election.leader (see Telemetry in the package documentation
	// for all of them). Default: the global provider.
	MeterProvider metric.MeterProvider
	// Logger receives the election's logs. Default: slog.Default().
	Logger *slog.Logger
}

// Optional methods a Lock may have, used for defaults and attributes.
type (
	namedLock     interface{ Name() string }
	namespaced    interface{ Namespace() string }
	identityOwner interface{ Identity() string }
)

// resolve checks cfg and fills its defaults. Every error names the field
// and its value.
func (cfg Config) resolve() (Config, error) {
	if cfg.Lock == nil {
		return cfg, errors.New("election: Lock is required")
	}
	if cfg.Name == "" {
		if n, ok := cfg.Lock.(namedLock); ok {
			cfg.Name = n.Name()
		} else {
			cfg.Name = cfg.Lock.Describe()
		}
	}
	if cfg.Identity == "" {
		if o, ok := cfg.Lock.(identityOwner); ok {
			cfg.Identity = o.Identity()
		}
	}
	if cfg.Identity == "" {
		return cfg, fmt.Errorf("election %s: Identity is empty and the lock %s has none", cfg.Name, cfg.Lock.Describe())
	}
	if len(cfg.Identity) > maxIdentityLength {
		return cfg, fmt.Errorf("election %s: Identity is %d bytes long, more than the maximum %d (it is written to the lock at every renewal; a ConfigMap's annotations hold 256 KiB at most)",
			cfg.Name, len(cfg.Identity), maxIdentityLength)
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = defaultRenewInterval(cfg.RenewDeadline, cfg.RetryPeriod)
	}
	if err := checkTimings(cfg); err != nil {
		return cfg, fmt.Errorf("election %s: %w", cfg.Name, err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// defaultRenewInterval is Config.RenewInterval's default for renewDeadline
// and retryPeriod: the longest wait after a successful renewal that leaves
// the renewal and three retries half a retryPeriod apart, every wait at
// its longest jitter, before renewDeadline, with half a retryPeriod left
// for the last one's answer; at most half of renewDeadline, but never
// under retryPeriod, in whole milliseconds. At 10s/2s it is 4.5s: attempts by
// 5.4s, 6.6s, 7.8s and 9s.
//
// It is what meets tenure's request budget: a leader renewing every
// retryPeriod, as client-go does, makes most of a watching election's
// requests (see BENCHMARKS.md).
func defaultRenewInterval(renewDeadline, retryPeriod time.Duration) time.Duration {
	retries := 3 * jittered(failedRenewalRetry(retryPeriod))
	d := time.Duration(float64(renewDeadline-retries-retryPeriod/2) / jitterFactor)
	d = min(d, renewDeadline/2)
	return max(d.Truncate(time.Millisecond), retryPeriod)
}

// failedRenewalRetry is the wait, before jitter, between a failed renewal
// and the next attempt: half of retryPeriod.
func failedRenewalRetry(retryPeriod time.Duration) time.Duration {
	return retryPeriod / 2
}
