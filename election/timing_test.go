package election

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// resolutionLock is a lock that says how finely it stores times.
type resolutionLock struct {
	*locks.MemoryLock
	res time.Duration
}

func (l resolutionLock) TimeResolution() time.Duration { return l.res }

// TestEveryTimingRuleIsATimingError: each rule New enforces on the
// timings fails with a *TimingError (found through New's wrapping) that
// names the field, its value, the limit and where the limit comes from,
// and reads in Config's names.
func TestEveryTimingRuleIsATimingError(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name                             string
		lock                             locks.Lock
		lease, deadline, retry, interval time.Duration
		field                            string
		value, limit                     time.Duration
		limitField                       string
		message                          string
	}{
		{name: "lease positive", lease: 0, deadline: 10 * s, retry: 2 * s,
			field: "LeaseDuration", value: 0, limit: 0,
			message: "LeaseDuration 0s must be positive"},
		{name: "deadline positive", lease: 15 * s, deadline: -s, retry: 2 * s,
			field: "RenewDeadline", value: -s, limit: 0,
			message: "RenewDeadline -1s must be positive"},
		{name: "retry positive", lease: 15 * s, deadline: 10 * s, retry: 0,
			field: "RetryPeriod", value: 0, limit: 0,
			message: "RetryPeriod 0s must be positive"},
		{name: "interval positive", lease: 15 * s, deadline: 10 * s, retry: 2 * s, interval: -s,
			field: "RenewInterval", value: -s, limit: 0,
			message: "RenewInterval -1s must be positive"},
		{name: "lease above deadline", lease: 5 * s, deadline: 10 * s, retry: 2 * s,
			field: "LeaseDuration", value: 5 * s, limit: 10 * s, limitField: "RenewDeadline",
			message: "LeaseDuration 5s must exceed RenewDeadline 10s"},
		{name: "lease at most the maximum", lease: locks.MaxLeaseDuration + s, deadline: 10 * s, retry: 2 * s,
			field: "LeaseDuration", value: locks.MaxLeaseDuration + s, limit: locks.MaxLeaseDuration,
			message: "LeaseDuration 596523h14m8s exceeds the maximum 596523h14m7s"},
		{name: "deadline above jittered retry", lease: 15 * s, deadline: 10 * s, retry: 9 * s,
			field: "RenewDeadline", value: 10 * s, limit: 10800 * time.Millisecond, limitField: "RetryPeriod",
			message: "RenewDeadline 10s must exceed RetryPeriod 9s × 1.2 = 10.8s"},
		{name: "deadline above jittered interval", lease: 15 * s, deadline: 10 * s, retry: 2 * s, interval: 9 * s,
			field: "RenewDeadline", value: 10 * s, limit: 10800 * time.Millisecond, limitField: "RenewInterval",
			message: "RenewDeadline 10s must exceed RenewInterval 9s × 1.2 = 10.8s"},
		{name: "deadline above the lock's resolution and a retry", lock: locks.NewMemoryLock("l"),
			lease: 2 * s, deadline: s, retry: 100 * time.Millisecond,
			field: "RenewDeadline", value: s, limit: 1120 * time.Millisecond, limitField: "RetryPeriod",
			message: "RenewDeadline 1s must exceed 1.12s: the lock memory/l stores times to 1s, renewals within one 1s do not renew the term, and the leader needs RetryPeriod 100ms × 1.2 more to retry"},
		{name: "a finer resolution, a lower limit", lock: resolutionLock{locks.NewMemoryLock("l"), 100 * time.Millisecond},
			lease: 2 * s, deadline: 300 * time.Millisecond, retry: 200 * time.Millisecond,
			field: "RenewDeadline", value: 300 * time.Millisecond, limit: 340 * time.Millisecond, limitField: "RetryPeriod",
			message: "RenewDeadline 300ms must exceed 340ms: the lock memory/l stores times to 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lock := tc.lock
			if lock == nil {
				lock = resolutionLock{locks.NewMemoryLock("l"), 0} // says nothing of its resolution
			}
			_, err := New(Config{Lock: lock, Identity: "a", LeaseDuration: tc.lease, RenewDeadline: tc.deadline,
				RetryPeriod: tc.retry, RenewInterval: tc.interval})
			require.Error(t, err)
			var te *TimingError
			require.True(t, errors.As(err, &te), "%v is a *TimingError", err)
			assert.Equal(t, tc.field, te.Field)
			assert.Equal(t, tc.value, te.Value)
			assert.Equal(t, tc.limit, te.Limit)
			assert.Equal(t, tc.limitField, te.LimitField)
			assert.Contains(t, te.Error(), tc.message)
			assert.True(t, strings.HasPrefix(err.Error(), "election l: "+te.Error()), "New names the election: %v", err)
		})
	}
}

// TestTimingErrorMessageUsesTheCallersNames: Message words the error as
// Error does, with every Config field renamed, the limit's field included.
func TestTimingErrorMessageUsesTheCallersNames(t *testing.T) {
	yaml := func(field string) string {
		return map[string]string{"LeaseDuration": "lease_duration", "RenewDeadline": "renew_deadline",
			"RetryPeriod": "retry_period", "RenewInterval": "renew_interval"}[field]
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{LeaseDuration: 5 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second},
			"lease_duration 5s must exceed renew_deadline 10s"},
		{Config{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second, RenewInterval: 9 * time.Second},
			"renew_deadline 10s must exceed renew_interval 9s × 1.2 = 10.8s"},
		{Config{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 0},
			"retry_period 0s must be positive"},
		{Config{LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond},
			"renew_deadline 1s must exceed 1.12s: the lock memory/l stores times to 1s, renewals within one 1s do not renew the term, and the leader needs retry_period 100ms × 1.2 more to retry"},
	} {
		tc.cfg.Lock, tc.cfg.Identity = locks.NewMemoryLock("l"), "a"
		_, err := New(tc.cfg)
		var te *TimingError
		require.True(t, errors.As(err, &te), "%v is a *TimingError", err)
		assert.Equal(t, tc.want, te.Message(yaml))
		assert.Equal(t, te.Error(), te.Message(nil), "nil keeps Config's names")
	}
}

// TestOtherConfigErrorsAreNotTimingErrors: only the timing rules make a
// TimingError, so a caller that renders one does not mistake another.
func TestOtherConfigErrorsAreNotTimingErrors(t *testing.T) {
	for _, cfg := range []Config{
		{LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry},
		{Lock: locks.NewMemoryLock("l"), LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry},
		{Lock: locks.NewMemoryLock("l"), Identity: strings.Repeat("x", maxIdentityLength+1), LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry},
	} {
		_, err := New(cfg)
		require.Error(t, err)
		var te *TimingError
		assert.False(t, errors.As(err, &te), "%v", err)
	}
}

// untouchableLock fails the test if New calls anything but Describe: a
// caller may check a Config with New (as package config does) without a
// reachable lock.
type untouchableLock struct{ t *testing.T }

func (l untouchableLock) Get(context.Context) (locks.Observed, error) {
	l.t.Error("New read the lock")
	return locks.Observed{}, errInjected
}

func (l untouchableLock) Create(context.Context, locks.Record) (locks.Observed, error) {
	l.t.Error("New created the lock")
	return locks.Observed{}, errInjected
}

func (l untouchableLock) Update(context.Context, string, locks.Record) (locks.Observed, error) {
	l.t.Error("New wrote the lock")
	return locks.Observed{}, errInjected
}

func (untouchableLock) Describe() string              { return "untouchable" }
func (untouchableLock) TimeResolution() time.Duration { return time.Second }

func TestNewMakesNoRequestAndStartsNoGoroutine(t *testing.T) {
	noLeaks(t)
	for _, d := range []time.Duration{deadline, 1100 * time.Millisecond} { // valid, then a TimingError
		_, err := New(Config{Lock: untouchableLock{t}, Identity: "a", LeaseDuration: lease, RenewDeadline: d, RetryPeriod: 100 * time.Millisecond})
		if d == deadline {
			require.NoError(t, err)
		} else {
			var te *TimingError
			require.ErrorAs(t, err, &te)
		}
	}
}

// TestDefaultRenewInterval: the longest wait leaving the renewal and three
// retries before the deadline, at most half of it, at least RetryPeriod;
// and every default passes the timing rules.
func TestDefaultRenewInterval(t *testing.T) {
	for _, tc := range []struct {
		deadline, retry, want time.Duration
	}{
		{10 * time.Second, 2 * time.Second, 4500 * time.Millisecond}, // client-go's timings
		{4 * time.Second, time.Second, 1416 * time.Millisecond},
		{20 * time.Second, 5 * time.Second, 7083 * time.Millisecond},
		{1500 * time.Millisecond, 100 * time.Millisecond, 750 * time.Millisecond}, // half the deadline
		{3500 * time.Millisecond, 2 * time.Second, 2 * time.Second},               // RetryPeriod
	} {
		got := defaultRenewInterval(tc.deadline, tc.retry)
		assert.Equal(t, tc.want, got, "renew deadline %v, retry period %v", tc.deadline, tc.retry)
		cfg, err := Config{Lock: locks.NewMemorySpace().Lock("l"), Identity: "a",
			LeaseDuration: 2 * tc.deadline, RenewDeadline: tc.deadline, RetryPeriod: tc.retry}.resolve()
		require.NoError(t, err)
		assert.Equal(t, got, cfg.RenewInterval, "the default fills an empty RenewInterval")
	}
}
