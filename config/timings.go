package config

import (
	"context"
	"errors"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
)

// checkTimings checks the timings of s by the rules of election.New, which
// alone states them, on a lock of s's kind, and words a broken rule with
// the YAML keys. New makes no request and starts no goroutine, so a
// stand-in for the lock is enough. s.Lock must be a valid kind.
func checkTimings(s components.Settings) error {
	_, err := election.New(election.Config{
		Lock:           probeLock{kind: s.Lock},
		Name:           "config",
		Identity:       "config",
		LeaseDuration:  s.LeaseDuration,
		RenewDeadline:  s.RenewDeadline,
		RetryPeriod:    s.RetryPeriod,
		RenewInterval:  s.RenewInterval,
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
	})
	var te *election.TimingError
	if errors.As(err, &te) {
		return timingError{te}
	}
	return err
}

// timingError is an election.TimingError worded with the YAML keys; it
// unwraps to the TimingError.
type timingError struct{ *election.TimingError }

func (e timingError) Error() string { return e.Message(yamlKey) }
func (e timingError) Unwrap() error { return e.TimingError }

// yamlKey is the YAML key of an election.Config timing field.
func yamlKey(field string) string {
	switch field {
	case "LeaseDuration":
		return "lease_duration"
	case "RenewDeadline":
		return "renew_deadline"
	case "RetryPeriod":
		return "retry_period"
	case "RenewInterval":
		return "renew_interval"
	}
	return field
}

// timeResolutions are how finely each kind of lock stores times, as the
// locks themselves say, for the election's rule on coarse locks. The
// methods read no field, so zero locks answer.
var timeResolutions = map[locks.Kind]time.Duration{
	locks.KindLease:     new(locks.LeaseLock).TimeResolution(),
	locks.KindConfigMap: new(locks.ConfigMapLock).TimeResolution(),
	locks.KindMemory:    new(locks.MemoryLock).TimeResolution(),
}

// probeLock stands in for a lock of a kind when election.New checks
// timings; it is never read or written.
type probeLock struct{ kind locks.Kind }

var errProbe = errors.New("config: a probe lock is not for use")

func (probeLock) Get(context.Context) (locks.Observed, error) { return locks.Observed{}, errProbe }
func (probeLock) Create(context.Context, locks.Record) (locks.Observed, error) {
	return locks.Observed{}, errProbe
}
func (probeLock) Update(context.Context, string, locks.Record) (locks.Observed, error) {
	return locks.Observed{}, errProbe
}

// Describe names the kind, as the key "lock" does.
func (l probeLock) Describe() string { return string(l.kind) }

// TimeResolution is that of the real locks of the kind.
func (l probeLock) TimeResolution() time.Duration { return timeResolutions[l.kind] }
