package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
)

// maxFuzzInput bounds the YAML the fuzzer passes to Load. Go's fuzzer
// minimizes every input that finds new coverage before it fuzzes on, with
// a number of runs quadratic in the input's length, for up to
// -fuzzminimizetime (60s by default) and with no execs reported meanwhile:
// a mutant of the 3.5 KB example.yaml kept both workers minimizing for
// the whole run, at 0 execs/s. Which of Load's paths a document takes
// depends on its keys and values, not its length, so short inputs reach
// them all; TestLongDocumentsLoad covers the long ones.
const maxFuzzInput = 512

// FuzzLoad: any YAML loads to a configuration whose timings an election
// on a real lock of the configured kind accepts, or to an error, never a
// panic.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds := append(exampleSections(string(example)),
		"lease_duration: 5x\n",
		"components:\n  billing:\n    lease_duration: 8s\n    renew_deadline: 6s\n    retry_period: 1s\n",
		"components:\n  billing:\n", "tracing:\n  sample_ratio: 2\n", "- a\n", "{", "kube_burst: 1.5\n",
	)
	for _, seed := range seeds {
		if len(seed) > maxFuzzInput {
			f.Fatalf("seed of %d bytes is longer than maxFuzzInput %d: %q", len(seed), maxFuzzInput, seed)
		}
		f.Add([]byte(seed))
	}
	accepts := electionAccepts(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Truncated rather than skipped: a skip would be a branch, new
		// coverage the first time, and its minimization runs Load on every
		// shorter candidate.
		data = data[:min(len(data), maxFuzzInput)]
		cfg, err := config.Load(config.YAML("fuzz", data))
		if err != nil {
			return
		}
		if err := accepts(cfg.Defaults); err != nil {
			t.Fatalf("loaded defaults an election refuses: %v", err)
		}
		for _, name := range cfg.Names() {
			e, err := cfg.Settings(name, components.Settings{})
			if err != nil {
				continue // reported when the component registers
			}
			if err := accepts(e); err != nil {
				t.Fatalf("components.%s: accepted timings an election refuses: %v", name, err)
			}
		}
	})
}

// exampleSections returns the paragraphs of example.yaml (split at blank
// lines) without their comments: every documented key is in a seed, and
// each seed is short enough for the fuzzer (see maxFuzzInput).
func exampleSections(example string) []string {
	var sections []string
	for _, paragraph := range strings.Split(example, "\n\n") {
		var b strings.Builder
		for _, line := range strings.Split(paragraph, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if line = strings.TrimRight(line, " "); line != "" {
				b.WriteString(line + "\n")
			}
		}
		if b.Len() > 0 {
			sections = append(sections, b.String())
		}
	}
	return sections
}

// electionAccepts returns a check that election.New accepts settings on a
// real lock of their kind (which New neither reads nor writes).
func electionAccepts(tb testing.TB) func(components.Settings) error {
	cs := fake.NewClientset()
	lease, err := locks.NewLeaseLock(cs.CoordinationV1(), "default", "fuzz")
	require.NoError(tb, err)
	configMap, err := locks.NewConfigMapLock(cs.CoreV1(), "default", "fuzz")
	require.NoError(tb, err)
	byKind := map[locks.Kind]locks.Lock{locks.KindLease: lease, locks.KindConfigMap: configMap, locks.KindMemory: locks.NewMemoryLock("fuzz")}
	return func(s components.Settings) error {
		lock, ok := byKind[s.Lock]
		if !ok {
			return fmt.Errorf("lock %q is no kind of lock", s.Lock)
		}
		_, err := election.New(election.Config{
			Lock: lock, Identity: "fuzz",
			LeaseDuration: s.LeaseDuration, RenewDeadline: s.RenewDeadline, RetryPeriod: s.RetryPeriod, RenewInterval: s.RenewInterval,
			TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
		})
		return err
	}
}
