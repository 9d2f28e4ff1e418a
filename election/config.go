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

// JitterFactor is how much longer than RetryPeriod a wait between two
// attempts may be, at most, so that candidates do not retry in lock-step:
// each wait is RetryPeriod × (1 + a random fraction of JitterFactor − 1).
// RenewDeadline must exceed RetryPeriod × JitterFactor so that a leader
// makes at least one more attempt after a success before its deadline.
const JitterFactor = 1.2

// MaxErrorBackoff is how many RetryPeriods a candidate waits at most
// between attempts to acquire that fail in a row (the API server down or
// refusing), never more than LeaseDuration: the wait doubles from
// RetryPeriod with each failure.
const MaxErrorBackoff = 8

// MaxIdentityLength is the longest identity an election accepts, in
// bytes: room for any pod name with a suffix, and far below what the API
// server takes in a lock object, which it would write at every renewal.
const MaxIdentityLength = 1024

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
	// RetryPeriod is the wait between two attempts to acquire, and
	// between a failed renewal and the next.
	RetryPeriod time.Duration
	// RenewInterval is the wait between a successful renewal and the
	// next. Default: RetryPeriod. A longer one makes fewer requests and
	// leaves less time for retries before RenewDeadline; it must stay below
	// RenewDeadline / JitterFactor.
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
	// real clock.
	Clock clock.WithTicker
	// TracerProvider makes the tracer that traces every acquire, renew and
	// release. Default: the global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the meter of the election's metrics (see
	// MetricLeader and the other Metric names). Default: the global
	// provider.
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
	if len(cfg.Identity) > MaxIdentityLength {
		return cfg, fmt.Errorf("election %s: Identity is %d bytes long, more than the maximum %d (it is written to the lock at every renewal; a ConfigMap's annotations hold 256 KiB at most)",
			cfg.Name, len(cfg.Identity), MaxIdentityLength)
	}
	if err := CheckTimings(cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod, GoNames); err != nil {
		return cfg, fmt.Errorf("election %s: %w", cfg.Name, err)
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.RetryPeriod
	}
	if err := CheckTimings(cfg.LeaseDuration, cfg.RenewDeadline, cfg.RenewInterval, TimingNames{"LeaseDuration", "RenewDeadline", "RenewInterval"}); err != nil {
		return cfg, fmt.Errorf("election %s: %w", cfg.Name, err)
	}
	if res, ok := resolutionOf(cfg.Lock); ok {
		// Renewals within one tick of the lock's clock store the same
		// record and do not count (see renew): the leader renews again
		// right after the tick, and needs a RetryPeriod more to retry.
		if limit := res + time.Duration(JitterFactor*float64(cfg.RetryPeriod)); cfg.RenewDeadline <= limit {
			return cfg, fmt.Errorf("election %s: RenewDeadline %v must exceed %v: the lock %s stores times to %v, renewals within one %v do not renew the term, and the leader needs RetryPeriod %v × %v more to retry",
				cfg.Name, cfg.RenewDeadline, limit, cfg.Lock.Describe(), res, res, cfg.RetryPeriod, JitterFactor)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// TimingNames are the names CheckTimings gives the three timings in its
// errors, so that each caller's errors name its own fields.
type TimingNames struct{ LeaseDuration, RenewDeadline, RetryPeriod string }

// GoNames names the timings as Config's fields.
var GoNames = TimingNames{"LeaseDuration", "RenewDeadline", "RetryPeriod"}

// CheckTimings checks what New requires of the timings: all positive,
// LeaseDuration > RenewDeadline > RetryPeriod × JitterFactor, and
// LeaseDuration at most locks.MaxLeaseDuration. Its errors name the
// offending fields, as names gives them, and their values.
func CheckTimings(leaseDuration, renewDeadline, retryPeriod time.Duration, names TimingNames) error {
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{names.LeaseDuration, leaseDuration}, {names.RenewDeadline, renewDeadline}, {names.RetryPeriod, retryPeriod}} {
		if d.value <= 0 {
			return fmt.Errorf("%s %v must be positive", d.name, d.value)
		}
	}
	if leaseDuration <= renewDeadline {
		return fmt.Errorf("%s %v must exceed %s %v", names.LeaseDuration, leaseDuration, names.RenewDeadline, renewDeadline)
	}
	if leaseDuration > locks.MaxLeaseDuration {
		return fmt.Errorf("%s %v exceeds the maximum %v", names.LeaseDuration, leaseDuration, locks.MaxLeaseDuration)
	}
	if limit := time.Duration(JitterFactor * float64(retryPeriod)); renewDeadline <= limit {
		return fmt.Errorf("%s %v must exceed %s %v × %v = %v", names.RenewDeadline, renewDeadline, names.RetryPeriod, retryPeriod, JitterFactor, limit)
	}
	return nil
}
