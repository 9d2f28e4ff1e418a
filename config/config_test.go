package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/locks"
)

func load(t *testing.T, yaml string, environ ...string) (*config.Config, error) {
	t.Helper()
	return config.Load(config.YAML("test.yaml", []byte(yaml)), config.Env(append([]string{}, environ...)))
}

func TestDefaultsWithoutAnySource(t *testing.T) {
	cfg, err := config.Load()
	require.NoError(t, err)
	assert.Equal(t, config.Default(), cfg)
	assert.Equal(t, components.Settings{Lock: locks.KindLease, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, cfg.Defaults)
}

func TestExampleFileCoversEveryKey(t *testing.T) {
	cfg, err := config.Load(config.File("example.yaml"))
	require.NoError(t, err)
	want := config.Default()
	want.Components["billing"] = config.Entry{Enabled: true, Settings: components.Settings{
		LockName: "billing", Lock: locks.KindLease, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
	}, Weight: 1}
	assert.Equal(t, want, cfg, "the example states the defaults")
}

func TestFileAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenure.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
namespace: apps
lock: configmap
lease_duration: 30s
renew_deadline: 20s
retry_period: 4s
on_failure: exit
tracing:
  enabled: true
  sample_ratio: 0.25
components:
  billing:
    lease_duration: 8s
    renew_deadline: 6s
    retry_period: 1s
  reports: {}
  mailer:
  audit:
    enabled: false
`), 0o600))
	cfg, err := config.Load(config.File(path), config.Env([]string{
		"TENURE_COMPONENTS__BILLING__LOCK=memory",
		"TENURE_RETRY_PERIOD=3s",
		"TENURE_TRACING__ENABLED=false",
		"TENURE_CACHE_DIR=/somewhere", // not a configuration key
		"OTHER=x",
	}))
	require.NoError(t, err)
	assert.Equal(t, "apps", cfg.Namespace)
	assert.Equal(t, config.FailureExit, cfg.OnFailure)
	assert.Equal(t, 3*time.Second, cfg.Defaults.RetryPeriod, "the environment overrides the file")
	assert.False(t, cfg.Tracing.Enabled)
	assert.Equal(t, 0.25, cfg.Tracing.SampleRatio)
	assert.Equal(t, []string{"audit", "billing", "mailer", "reports"}, cfg.Names())
	assert.False(t, cfg.Enabled("audit"))
	assert.True(t, cfg.Enabled("mailer"))
	assert.True(t, cfg.Enabled("unlisted"))

	billing, err := cfg.Settings("billing", components.Settings{Namespace: "from-code", RetryPeriod: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, components.Settings{
		LockName: "billing", Namespace: "from-code", Lock: locks.KindMemory,
		LeaseDuration: 8 * time.Second, RenewDeadline: 6 * time.Second, RetryPeriod: time.Second,
	}, billing, "entry over code over defaults")
	reports, err := cfg.Settings("reports", components.Settings{})
	require.NoError(t, err)
	assert.Equal(t, components.Settings{
		LockName: "reports", Namespace: "apps", Lock: locks.KindConfigMap,
		LeaseDuration: 30 * time.Second, RenewDeadline: 20 * time.Second, RetryPeriod: 3 * time.Second,
	}, reports)
}

func TestBadInputIsAClearError(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml    string
		environ []string
		want    []string
	}{
		"bad duration": {
			yaml: "components:\n  billing:\n    lease_duration: 5x\n",
			want: []string{`config test.yaml: components.billing.lease_duration: "5x" is not a duration`},
		},
		"duration without unit": {
			yaml: "lease_duration: 15\n",
			want: []string{`lease_duration: 15 is not a duration (write it with a unit, such as "15s")`},
		},
		"negative duration": {
			yaml: "shutdown_timeout: -1s\n",
			want: []string{`shutdown_timeout: "-1s" must be positive`},
		},
		"bad placement": {
			yaml: "placement: spread\n",
			want: []string{`placement: "spread" must be one of balanced, none`},
		},
		"bad weight": {
			yaml: "components:\n  billing:\n    weight: 1.5\n",
			want: []string{`components.billing.weight: 1.5 is not a whole number from 1 to 1000`},
		},
		"bad placement group": {
			yaml: "placement_group: billing/v2\n",
			want: []string{`placement_group: placement group "billing/v2": a valid label must be`},
		},
		"zero weight": {
			yaml: "components:\n  billing:\n    weight: 0\n",
			want: []string{`components.billing.weight: 0 must be positive`},
		},
		"unknown key": {
			yaml: "lease_duraton: 15s\n",
			want: []string{"lease_duraton: unknown key"},
		},
		"unknown component key": {
			yaml: "components:\n  billing:\n    leaseDuration: 15s\n",
			want: []string{"components.billing.leaseDuration: unknown key"},
		},
		"unknown nested key": {
			yaml: "tracing:\n  sampler:\n    ratio: 1\n",
			want: []string{"tracing.sampler.ratio: unknown key"},
		},
		"every error at once": {
			yaml: "lock: etcd\nretry_period: soon\n",
			want: []string{`lock: "etcd" must be one of lease, configmap, memory`, `retry_period: "soon" is not a duration`},
		},
		"wrong timing order": {
			yaml: "lease_duration: 5s\n",
			want: []string{"config: lease_duration 5s must exceed renew_deadline 10s"},
		},
		"retry too close to deadline": {
			yaml: "retry_period: 9s\n",
			want: []string{"renew_deadline 10s must exceed retry_period 9s × 1.2 = 10.8s"},
		},
		"malformed yaml": {
			yaml: "components:\n  billing:\n   lock: lease\n  - x\n",
			want: []string{"config test.yaml: yaml: line"},
		},
		"not a map": {
			yaml: "- a\n- b\n",
			want: []string{"config test.yaml:"},
		},
		"entry not a map": {
			yaml: "components:\n  billing: yes\n",
			want: []string{`components.billing: "yes": a component entry must be a map`},
		},
		"bad boolean": {
			yaml: "components:\n  billing:\n    enabled: maybe\n",
			want: []string{`components.billing.enabled: "maybe" is not true or false`},
		},
		"ratio out of range": {
			yaml: "tracing:\n  sample_ratio: 2\n",
			want: []string{"tracing.sample_ratio: 2 must be between 0 and 1"},
		},
		"string expected": {
			yaml: "namespace: [a]\n",
			want: []string{"namespace: [a] is not a string"},
		},
		"bad environment value": {
			environ: []string{"TENURE_COMPONENTS__BILLING__RETRY_PERIOD=2"},
			want:    []string{`config environment: TENURE_COMPONENTS__BILLING__RETRY_PERIOD (components.billing.retry_period): "2" is not a duration`},
		},
		"unknown environment key": {
			environ: []string{"TENURE_LEASE_DURATON=15s"},
			want:    []string{"TENURE_LEASE_DURATON (lease_duraton): unknown key"},
		},
		"backoff bounds": {
			yaml: "failure_backoff: 2m\n",
			want: []string{"failure_backoff_max 1m0s must be at least failure_backoff 2m0s"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := load(t, tc.yaml, tc.environ...)
			require.Error(t, err)
			assert.Nil(t, cfg)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := config.Load(config.File("/nonexistent/tenure.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "/nonexistent/tenure.yaml")
}

func TestComponentTimingsAreCheckedAfterMerging(t *testing.T) {
	cfg, err := load(t, "components:\n  billing:\n    lease_duration: 5s\n")
	require.NoError(t, err, "an entry's timings are checked with the defaults they merge with")
	_, err = cfg.Settings("billing", components.Settings{})
	require.EqualError(t, err, "components.billing: lease_duration 5s must exceed renew_deadline 10s")
	_, err = cfg.Settings("billing", components.Settings{RenewDeadline: 4 * time.Second, RetryPeriod: time.Second})
	require.NoError(t, err, "the component's own timings fit the entry")
}

func TestAComponentsUnknownLockKindIsAClearError(t *testing.T) {
	cfg, err := load(t, "")
	require.NoError(t, err)
	_, err = cfg.Settings("billing", components.Settings{Lock: "etcd"})
	require.EqualError(t, err, `components.billing: lock "etcd" must be one of lease, configmap, memory`)
}

func TestZeroSettingsTakeTheNextLayer(t *testing.T) {
	cfg, err := load(t, "namespace: apps\ncomponents:\n  billing:\n    lock_name: ledger\n    renew_deadline: 8s\n")
	require.NoError(t, err)
	s, err := cfg.Settings("billing", components.Settings{LockName: "from-code", Lock: locks.KindConfigMap, RenewInterval: 3 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, components.Settings{
		LockName: "ledger", Namespace: "apps", Lock: locks.KindConfigMap,
		LeaseDuration: 15 * time.Second, RenewDeadline: 8 * time.Second, RetryPeriod: 2 * time.Second, RenewInterval: 3 * time.Second,
	}, s, "each field from the first layer that sets it: entry, code, defaults")
}

func TestCheckComponents(t *testing.T) {
	cfg, err := load(t, "components:\n  billing: {}\n  biling: {}\n  x: {}\n")
	require.NoError(t, err)
	err = cfg.CheckComponents([]string{"reports", "billing"})
	require.EqualError(t, err, "components.biling, components.x: no component of that name is registered (registered: billing, reports)")
	require.NoError(t, cfg.CheckComponents([]string{"billing", "biling", "x", "more"}))
}

func TestValuesOverrideEarlierLayers(t *testing.T) {
	cfg, err := config.Load(config.YAML("file", []byte("kubeconfig: a\n")), config.Values("flags", map[string]any{"kubeconfig": "b", "components.x.lock": "memory"}))
	require.NoError(t, err)
	assert.Equal(t, "b", cfg.Kubeconfig)
	assert.Equal(t, locks.KindMemory, cfg.Components["x"].Settings.Lock)
	_, err = config.Load(config.Values("flags", map[string]any{"lease_duration": "x"}))
	require.ErrorContains(t, err, `config flags: lease_duration: "x" is not a duration`)
}

func TestClientRateLimits(t *testing.T) {
	cfg, err := load(t, "kube_qps: 20.5\nkube_burst: 40\n")
	require.NoError(t, err)
	assert.Equal(t, 20.5, cfg.KubeQPS)
	assert.Equal(t, 40, cfg.KubeBurst)
	_, err = load(t, "kube_burst: 1.5\n")
	require.ErrorContains(t, err, "kube_burst: 1.5 is not a whole number")
	_, err = load(t, "kube_qps: 0\n")
	require.ErrorContains(t, err, "kube_qps: 0 must be positive")
}

// TestLongDocumentsLoad: the fuzzer stops at maxFuzzInput bytes (see
// fuzz_test.go), so long documents are checked here. A megabyte of
// comments, of a value or of a bare scalar loads or fails at once (a path
// quadratic in the length would run into the test timeout), and the error
// does not repeat the megabyte.
func TestLongDocumentsLoad(t *testing.T) {
	long := strings.Repeat("n", 1<<20)
	cfg, err := load(t, strings.Repeat("# comment\n", 1<<17)+"namespace: "+long+"\n")
	require.NoError(t, err)
	assert.Equal(t, long, cfg.Namespace)

	_, err = load(t, strings.Repeat("C", 1<<20))
	require.ErrorContains(t, err, "config test.yaml: yaml: unmarshal errors")
	assert.Less(t, len(err.Error()), 200)
}

func TestPlacementKeys(t *testing.T) {
	cfg, err := load(t, "placement: balanced\nplacement_group: billing-v2\nnever_lead: true\nrevision: 7d9f\nzone: z1\ncomponents:\n  billing:\n    placement: none\n    weight: 3\n  reports: {}\n")
	require.NoError(t, err)
	assert.Equal(t, config.PlacementNone, cfg.PlacementOf("billing"))
	assert.Equal(t, config.PlacementBalanced, cfg.PlacementOf("reports"))
	assert.Equal(t, 3, cfg.Components["billing"].Weight)
	assert.True(t, cfg.NeverLead)
	assert.Equal(t, "7d9f", cfg.Revision)
	assert.Equal(t, "z1", cfg.Zone)
	assert.Equal(t, "billing-v2", cfg.PlacementGroup)
	def, err := load(t, "")
	require.NoError(t, err)
	assert.Equal(t, config.PlacementBalanced, def.PlacementOf("billing"), "on unless turned off")
}
