package config_test

import (
	"os"
	"testing"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
)

// FuzzLoad: any YAML loads to a configuration whose timings an election
// accepts, or to an error, never a panic.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		"lease_duration: 5x\n",
		"components:\n  billing:\n    lease_duration: 8s\n    renew_deadline: 6s\n    retry_period: 1s\n",
		"components:\n  billing:\n", "tracing:\n  sample_ratio: 2\n", "- a\n", "{", "kube_burst: 1.5\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Load(config.YAML("fuzz", data))
		if err != nil {
			return
		}
		d := cfg.Defaults
		if err := election.CheckTimings(d.LeaseDuration, d.RenewDeadline, d.RetryPeriod, election.GoNames); err != nil {
			t.Fatalf("loaded defaults an election refuses: %v", err)
		}
		for _, name := range cfg.Names() {
			e, err := cfg.Election(name, components.Election{})
			if err != nil {
				continue // reported when the component registers
			}
			if err := election.CheckTimings(e.LeaseDuration, e.RenewDeadline, e.RetryPeriod, election.GoNames); err != nil {
				t.Fatalf("components.%s: accepted timings an election refuses: %v", name, err)
			}
		}
	})
}
