package election

import (
	"fmt"
	"time"

	"github.com/tenure/tenure/locks"
)

// TimingError reports a timing of a Config that breaks one of the rules
// New enforces:
//   - LeaseDuration, RenewDeadline, RetryPeriod and RenewInterval are
//     positive (RenewInterval may be left zero for its default);
//   - LeaseDuration exceeds RenewDeadline and is at most
//     locks.MaxLeaseDuration;
//   - RenewDeadline exceeds RetryPeriod × 1.2 and RenewInterval × 1.2,
//     the longest a jittered wait between two attempts lasts, so that a
//     leader makes at least one more attempt before its deadline;
//   - on a lock that stores times coarsely (a ConfigMap or a memory lock
//     keep whole seconds, see locks' TimeResolution methods),
//     RenewDeadline exceeds that resolution + RetryPeriod × 1.2: renewals
//     within one tick of the lock's clock store the same record and do
//     not renew the term, and the leader needs a retry after the tick.
//
// New returns it wrapped with the election's name; find it with
// errors.As. Error words it with Config's field names; Message words it
// with a caller's own, as package config does with its YAML keys.
type TimingError struct {
	// Field is the Config field whose value breaks the rule:
	// "LeaseDuration", "RenewDeadline", "RetryPeriod" or "RenewInterval".
	Field string
	// Value is Field's value.
	Value time.Duration
	// Limit is the bound that Value breaks. Value must exceed it (0 for a
	// timing that must be positive), except where Field is LeaseDuration
	// and Limit is locks.MaxLeaseDuration, which Value must not exceed.
	Limit time.Duration
	// LimitField is the Config field that Limit is computed from, as
	// RenewDeadline's limit is from RetryPeriod; "" where Limit is fixed.
	LimitField string

	rule       timingRule
	limitValue time.Duration // LimitField's value
	resolution time.Duration // the lock's, for ruleResolution
	lock       string        // the lock's description, for ruleResolution
}

// timingRule is which of New's rules a TimingError reports.
type timingRule int

const (
	rulePositive   timingRule = iota // Value > 0
	ruleMaximum                      // Value ≤ Limit
	ruleAbove                        // Value > LimitField's value
	ruleJitter                       // Value > LimitField's value × jitterFactor
	ruleResolution                   // Value > resolution + LimitField's value × jitterFactor
)

// Error says which rule the timing breaks, naming Config's fields.
func (e *TimingError) Error() string { return e.Message(nil) }

// Message says which rule the timing breaks, as Error does, with each
// Config field named by name(field) instead: a caller that fills Config
// from its own keys, such as a YAML file's, names them in its errors.
// A nil name keeps Config's names.
func (e *TimingError) Message(name func(field string) string) string {
	if name == nil {
		name = func(field string) string { return field }
	}
	field, limitField := name(e.Field), ""
	if e.LimitField != "" {
		limitField = name(e.LimitField)
	}
	switch e.rule {
	case rulePositive:
		return fmt.Sprintf("%s %v must be positive", field, e.Value)
	case ruleMaximum:
		return fmt.Sprintf("%s %v exceeds the maximum %v", field, e.Value, e.Limit)
	case ruleAbove:
		return fmt.Sprintf("%s %v must exceed %s %v", field, e.Value, limitField, e.limitValue)
	case ruleJitter:
		return fmt.Sprintf("%s %v must exceed %s %v × %v = %v", field, e.Value, limitField, e.limitValue, jitterFactor, e.Limit)
	default: // ruleResolution
		return fmt.Sprintf("%s %v must exceed %v: the lock %s stores times to %v, renewals within one %v do not renew the term, and the leader needs %s %v × %v more to retry",
			field, e.Value, e.Limit, e.lock, e.resolution, e.resolution, limitField, e.limitValue, jitterFactor)
	}
}

// checkTimings checks cfg's timings by the rules TimingError lists, in
// that order, and reports the first one broken. cfg.RenewInterval must
// have its default already.
func checkTimings(cfg Config) *TimingError {
	for _, t := range []struct {
		field string
		value time.Duration
	}{
		{"LeaseDuration", cfg.LeaseDuration},
		{"RenewDeadline", cfg.RenewDeadline},
		{"RetryPeriod", cfg.RetryPeriod},
		{"RenewInterval", cfg.RenewInterval},
	} {
		if t.value <= 0 {
			return &TimingError{Field: t.field, Value: t.value, rule: rulePositive}
		}
	}
	if cfg.LeaseDuration <= cfg.RenewDeadline {
		return &TimingError{Field: "LeaseDuration", Value: cfg.LeaseDuration, Limit: cfg.RenewDeadline,
			LimitField: "RenewDeadline", limitValue: cfg.RenewDeadline, rule: ruleAbove}
	}
	if cfg.LeaseDuration > locks.MaxLeaseDuration {
		return &TimingError{Field: "LeaseDuration", Value: cfg.LeaseDuration, Limit: locks.MaxLeaseDuration, rule: ruleMaximum}
	}
	for _, wait := range []struct {
		field string
		value time.Duration
	}{{"RetryPeriod", cfg.RetryPeriod}, {"RenewInterval", cfg.RenewInterval}} {
		if limit := jittered(wait.value); cfg.RenewDeadline <= limit {
			return &TimingError{Field: "RenewDeadline", Value: cfg.RenewDeadline, Limit: limit,
				LimitField: wait.field, limitValue: wait.value, rule: ruleJitter}
		}
	}
	if res, ok := resolutionOf(cfg.Lock); ok {
		// Renewals within one tick of the lock's clock store the same
		// record and do not count (see renew): the leader renews again
		// right after the tick, and needs a RetryPeriod more to retry.
		if limit := res + jittered(cfg.RetryPeriod); cfg.RenewDeadline <= limit {
			return &TimingError{Field: "RenewDeadline", Value: cfg.RenewDeadline, Limit: limit,
				LimitField: "RetryPeriod", limitValue: cfg.RetryPeriod, rule: ruleResolution,
				resolution: res, lock: cfg.Lock.Describe()}
		}
	}
	return nil
}

// jittered is the longest that a wait of d lasts once jittered.
func jittered(d time.Duration) time.Duration {
	return time.Duration(jitterFactor * float64(d))
}
