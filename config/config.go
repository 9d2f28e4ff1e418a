// Package config loads a tenure program's configuration: global election
// defaults, shutdown and failure policy, tracing, and one entry per
// component, from YAML and TENURE_ environment variables over defaults.
//
// The fx module (package framework) loads it for you, from
// framework.ConfigFile or framework.ConfigYAML and the environment. Call
// Load yourself to use it without fx: it takes sources (File, YAML,
// Values, Env), each over the ones before, over Default. Then
// Config.Settings resolves a component's election settings: its Entry
// over the component's own components.Settings over Config.Defaults.
//
// Every key is checked: an unknown key, a malformed duration or a wrong
// timing order is an error that names the key, its source and its value.
// See example.yaml in this directory for every key.
//
// Environment variables override the file: TENURE_ followed by the key
// path in upper case with "__" between levels, such as
// TENURE_LEASE_DURATION=20s or TENURE_COMPONENTS__BILLING__LOCK=configmap.
package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
)

// Failure policies: what a program does when a component's leader work
// fails (returns early or panics).
const (
	// FailureRecampaign releases the component's lock and campaigns again
	// after a backoff; other components carry on.
	FailureRecampaign = "recampaign"
	// FailureExit shuts the whole program down gracefully, with exit
	// code 1, so that its supervisor restarts it.
	FailureExit = "exit"
)

// Placement policies: whether leaderships are spread over the replicas
// (see package placement).
const (
	// PlacementBalanced spreads the leaderships over the replicas and moves
	// them, by hand-over, as replicas join, leave and shut down.
	PlacementBalanced = "balanced"
	// PlacementNone leaves each leadership with whoever wins it.
	PlacementNone = "none"
)

// Config is a tenure program's configuration.
type Config struct {
	// Identity of this replica in every election. Default: $POD_NAME or
	// the host name, plus a suffix unique to the process.
	Identity string
	// Namespace of the locks. Default: the pod's namespace in a cluster,
	// else "default".
	Namespace string
	// Kubeconfig is the path of a kubeconfig file. Default: $KUBECONFIG,
	// else ~/.kube/config, else in-cluster configuration, as kubectl.
	Kubeconfig string
	// KubeQPS and KubeBurst limit the Kubernetes client's request rate
	// (client-go's default of 5 and 10 is too low for many elections).
	KubeQPS   float64
	KubeBurst int
	// Defaults are the election settings of every component, where
	// neither the component nor its entry sets them. LockName is unused.
	Defaults components.Settings
	// ShutdownTimeout bounds how long shutdown waits for leader work to
	// return; past it the stop fails and waits no longer, the leases of
	// that work renewed until it returns or the process exits.
	ShutdownTimeout time.Duration
	// OnFailure is FailureRecampaign or FailureExit.
	OnFailure string
	// FailureBackoff is the wait before campaigning again after a failure;
	// it doubles with each failure in a row up to FailureBackoffMax.
	FailureBackoff, FailureBackoffMax time.Duration
	// Tracing configures trace export.
	Tracing Tracing
	// HTTP configures the operator's endpoint.
	HTTP HTTP
	// Watch makes Lease locks read through a shared watch cache and wake
	// on changes (see locks.LeaseLock.Watch), instead of polling the API
	// server. Default true; false makes them locks.WithoutWatch.
	Watch bool
	// Events records a Kubernetes Event on a component's lock when this
	// replica starts or stops leading it, as client-go does.
	Events bool
	// Placement is PlacementBalanced or PlacementNone, for every component
	// whose entry does not say. Default: PlacementBalanced.
	Placement string
	// PlacementGroup names the replicas placed together, by one
	// coordinator: every replica of one program, and no other program's
	// (a label value). Default: the program's name (the base name of its
	// executable); two programs built as one executable in one namespace
	// each need their own.
	PlacementGroup string
	// NeverLead keeps this replica from leading anything: it announces
	// itself as a member that is never chosen, and campaigns for nothing.
	NeverLead bool
	// Revision is the version of this replica's program, such as its
	// Pod's pod-template-hash label (through the downward API as
	// TENURE_REVISION): during a rollout, leaderships move to the newest
	// revision. Zone is its topology zone. Both are announced.
	Revision, Zone string
	// Components are the entries of the components map, by component
	// name.
	Components map[string]Entry
}

// Entry is a component's entry in the components map of the
// configuration.
type Entry struct {
	// Enabled false keeps the component from campaigning at all.
	Enabled bool
	// Settings override the component's own settings; zero fields do not.
	Settings components.Settings
	// Placement overrides Config.Placement for the component ("" does
	// not).
	Placement string
	// Weight is the component's share of the work when leaderships are
	// spread (1 if zero).
	Weight int
}

// HTTP configures the operator's endpoint: /metrics (Prometheus),
// /healthz, /healthz/<component>, /readyz and /leaders.
type HTTP struct {
	// Address to listen on, such as ":8080". Empty: no endpoint.
	Address string
	// HealthzMargin is how long past a leader's renew deadline without a
	// successful call to its lock /healthz still passes.
	HealthzMargin time.Duration
}

// Tracing configures the export of the elections' spans.
type Tracing struct {
	// Enabled turns export on. Off by default, at no cost.
	Enabled bool
	// Exporter is "otlp" or "stdout".
	Exporter string
	// Endpoint of the OTLP collector. Default: from
	// OTEL_EXPORTER_OTLP_ENDPOINT, else the exporter's default.
	Endpoint string
	// Protocol is "grpc" or "http/protobuf". Default (""): from
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL,
	// else "grpc".
	Protocol string
	// Insecure sends OTLP without TLS.
	Insecure bool
	// ServiceName is the service.name resource attribute. Default:
	// $OTEL_SERVICE_NAME, else the program's name.
	ServiceName string
	// SampleRatio is the fraction of traces kept, from 0 to 1.
	SampleRatio float64
}

// Default returns the configuration used where nothing is set: client-go's
// usual timings on a Lease lock.
func Default() *Config {
	return &Config{
		Defaults: components.Settings{
			Lock:          locks.KindLease,
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
		},
		Watch:             true,
		Placement:         PlacementBalanced,
		KubeQPS:           50,
		KubeBurst:         100,
		ShutdownTimeout:   10 * time.Second,
		OnFailure:         FailureRecampaign,
		FailureBackoff:    time.Second,
		FailureBackoffMax: time.Minute,
		Tracing:           Tracing{Exporter: "otlp", SampleRatio: 1},
		HTTP:              HTTP{HealthzMargin: 10 * time.Second},
		Components:        map[string]Entry{},
	}
}

// validate checks what no single key can: the default timings against
// each other and the default lock, and the backoff bounds.
func (c *Config) validate() error {
	if err := checkTimings(c.Defaults); err != nil {
		return err
	}
	if c.FailureBackoffMax < c.FailureBackoff {
		return fmt.Errorf("failure_backoff_max %v must be at least failure_backoff %v", c.FailureBackoffMax, c.FailureBackoff)
	}
	return nil
}

// Settings returns the settings of the component named name: its entry
// over code (the component's own settings) over the defaults, with the
// lock named after the component unless set. It checks the lock kind and
// the timings' order, naming the entry in the error.
func (c *Config) Settings(name string, code components.Settings) (components.Settings, error) {
	s := merge(merge(c.Components[name].Settings, code), c.Defaults)
	if s.LockName == "" {
		s.LockName = name
	}
	if s.Namespace == "" {
		s.Namespace = c.Namespace
	}
	if err := checkEnum("lock", s.Lock, lockKinds...); err != nil {
		return s, fmt.Errorf("components.%s: %w", name, err)
	}
	if err := checkTimings(s); err != nil {
		return s, fmt.Errorf("components.%s: %w", name, err)
	}
	return s, nil
}

// merge returns s with each zero field taken from defaults.
func merge(s, defaults components.Settings) components.Settings {
	return components.Settings{
		LockName:      cmp.Or(s.LockName, defaults.LockName),
		Namespace:     cmp.Or(s.Namespace, defaults.Namespace),
		Lock:          cmp.Or(s.Lock, defaults.Lock),
		LeaseDuration: cmp.Or(s.LeaseDuration, defaults.LeaseDuration),
		RenewDeadline: cmp.Or(s.RenewDeadline, defaults.RenewDeadline),
		RetryPeriod:   cmp.Or(s.RetryPeriod, defaults.RetryPeriod),
		RenewInterval: cmp.Or(s.RenewInterval, defaults.RenewInterval),
	}
}

// PlacementOf is the placement policy of the component named name.
func (c *Config) PlacementOf(name string) string {
	if p := c.Components[name].Placement; p != "" {
		return p
	}
	return c.Placement
}

// Enabled says whether the component named name campaigns: true unless
// its entry says enabled: false.
func (c *Config) Enabled(name string) bool {
	entry, ok := c.Components[name]
	return !ok || entry.Enabled
}

// CheckComponents fails if an entry of the components map names none of
// the registered components: a typo must not leave a component on
// defaults silently.
func (c *Config) CheckComponents(registered []string) error {
	var unknown []string
	for name := range c.Components {
		if !slices.Contains(registered, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	known := slices.Sorted(slices.Values(registered))
	return fmt.Errorf("components.%s: no component of that name is registered (registered: %s)",
		strings.Join(unknown, ", components."), strings.Join(known, ", "))
}

// lockKinds are the values the key "lock" takes.
var lockKinds = []locks.Kind{locks.KindLease, locks.KindConfigMap, locks.KindMemory}

func checkEnum[T ~string](key string, v T, allowed ...T) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("%s %q must be one of %s", key, v, joinEnum(allowed))
	}
	return nil
}

// joinEnum lists allowed values for an error message.
func joinEnum[T ~string](allowed []T) string {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// Names returns the names of the component entries, sorted.
func (c *Config) Names() []string { return slices.Sorted(maps.Keys(c.Components)) }
