package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
)

// TestTimingErrorsNameTheYAMLKeys: every timing rule of election.New is
// checked when a component's settings are merged, and its error names the YAML keys and
// values; election.TimingError is still found in it.
func TestTimingErrorsNameTheYAMLKeys(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml  string
		code  components.Settings
		want  string
		field string
	}{
		"retry_period positive": { // YAML refuses it, but a component's code may set it
			code:  components.Settings{RetryPeriod: -time.Second},
			want:  "components.billing: retry_period -1s must be positive",
			field: "RetryPeriod",
		},
		"lease_duration over renew_deadline": {
			yaml:  "components:\n  billing:\n    lease_duration: 5s\n",
			want:  "components.billing: lease_duration 5s must exceed renew_deadline 10s",
			field: "LeaseDuration",
		},
		"lease_duration maximum": {
			yaml:  "components:\n  billing:\n    lease_duration: 600000h\n",
			want:  "components.billing: lease_duration 600000h0m0s exceeds the maximum 596523h14m7s",
			field: "LeaseDuration",
		},
		"renew_deadline over retry_period": {
			yaml:  "components:\n  billing:\n    retry_period: 9s\n",
			want:  "components.billing: renew_deadline 10s must exceed retry_period 9s × 1.2 = 10.8s",
			field: "RenewDeadline",
		},
		"renew_deadline over renew_interval": {
			yaml:  "components:\n  billing:\n    renew_interval: 9s\n",
			want:  "components.billing: renew_deadline 10s must exceed renew_interval 9s × 1.2 = 10.8s",
			field: "RenewDeadline",
		},
		"configmap keeps whole seconds": {
			yaml: "components:\n  billing:\n    lock: configmap\n    lease_duration: 2s\n    renew_deadline: 1100ms\n    retry_period: 100ms\n",
			want: "components.billing: renew_deadline 1.1s must exceed 1.12s: the lock configmap stores times to 1s, " +
				"renewals within one 1s do not renew the term, and the leader needs retry_period 100ms × 1.2 more to retry",
			field: "RenewDeadline",
		},
		"memory keeps whole seconds": {
			yaml:  "components:\n  billing:\n    lock: memory\n    lease_duration: 2s\n    renew_deadline: 1100ms\n    retry_period: 100ms\n",
			want:  "components.billing: renew_deadline 1.1s must exceed 1.12s: the lock memory stores times to 1s",
			field: "RenewDeadline",
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := load(t, tc.yaml)
			require.NoError(t, err, "an entry's timings are checked with the defaults they merge with")
			_, err = cfg.Settings("billing", tc.code)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var te *election.TimingError
			require.True(t, errors.As(err, &te), "%v wraps an election.TimingError", err)
			assert.Equal(t, tc.field, te.Field)
		})
	}
}

// TestDefaultTimingsAreCheckedOnTheirLock: the top-level timings are
// checked when the configuration loads, against the top-level lock kind.
func TestDefaultTimingsAreCheckedOnTheirLock(t *testing.T) {
	timings := "lease_duration: 2s\nrenew_deadline: 1100ms\nretry_period: 100ms\n"
	_, err := load(t, "lock: configmap\n"+timings)
	require.ErrorContains(t, err, "config: renew_deadline 1.1s must exceed 1.12s: the lock configmap stores times to 1s")
	var te *election.TimingError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 1120*time.Millisecond, te.Limit)

	_, err = load(t, "lock: lease\n"+timings)
	require.NoError(t, err, "a Lease keeps microseconds")

	_, err = load(t, "renew_interval: 9s\n")
	require.ErrorContains(t, err, "config: renew_deadline 10s must exceed renew_interval 9s × 1.2 = 10.8s")
}

// TestLeaseAllowsTimingsThatConfigMapsDoNot: the same timings are fine on
// a Lease, which keeps microseconds, and refused on a ConfigMap, which
// keeps whole seconds.
func TestLeaseAllowsTimingsThatConfigMapsDoNot(t *testing.T) {
	cfg, err := load(t, "lock: lease\nlease_duration: 2s\nrenew_deadline: 1100ms\nretry_period: 100ms\n")
	require.NoError(t, err)
	_, err = cfg.Settings("billing", components.Settings{})
	require.NoError(t, err)
	_, err = cfg.Settings("billing", components.Settings{Lock: "configmap"})
	require.ErrorContains(t, err, "components.billing: renew_deadline 1.1s must exceed 1.12s: the lock configmap stores times to 1s")
}
