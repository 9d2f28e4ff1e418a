package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/tenure/tenure/placement"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "TENURE_"

// ignoredEnv are TENURE_ variables that are not configuration keys.
var ignoredEnv = []string{"TENURE_CACHE_DIR"}

// Source is one layer of configuration. Load applies layers in order,
// each over the ones before.
type Source struct {
	name string
	load func(k *koanf.Koanf) (envNames map[string]string, err error)
}

// File is a YAML file.
func File(path string) Source {
	return Source{name: path, load: func(k *koanf.Koanf) (map[string]string, error) {
		return nil, k.Load(file.Provider(path), yaml.Parser())
	}}
}

// YAML is YAML text; name names it in errors.
func YAML(name string, data []byte) Source {
	return Source{name: name, load: func(k *koanf.Koanf) (map[string]string, error) {
		return nil, k.Load(rawbytes.Provider(data), yaml.Parser())
	}}
}

// Env is the TENURE_ variables of environ, a list of "KEY=value" as
// os.Environ returns; nil means os.Environ().
func Env(environ []string) Source {
	return Source{name: "environment", load: func(k *koanf.Koanf) (map[string]string, error) {
		names := map[string]string{}
		opt := env.Opt{
			Prefix: EnvPrefix,
			TransformFunc: func(name, value string) (string, any) {
				if slices.Contains(ignoredEnv, name) {
					return "", nil
				}
				key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
				names[key] = name
				return key, value
			},
		}
		if environ != nil {
			opt.EnvironFunc = func() []string { return environ }
		}
		return names, k.Load(env.Provider(".", opt), nil)
	}}
}

// Load reads the sources in order over Default() and checks the result.
// Its errors name the source, the key and the value.
func Load(sources ...Source) (*Config, error) {
	cfg := Default()
	for _, src := range sources {
		k := koanf.New(".")
		envNames, err := src.load(k)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", src.name, err)
		}
		flat := k.All()
		var errs []error
		for _, key := range slices.Sorted(func(yield func(string) bool) {
			for key := range flat {
				if !yield(key) {
					return
				}
			}
		}) {
			if err := cfg.set(key, flat[key]); err != nil {
				where := key
				if name, ok := envNames[key]; ok {
					where = name + " (" + key + ")"
				}
				errs = append(errs, fmt.Errorf("config %s: %s: %w", src.name, where, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// setters of the keys outside the components map.
var setters = map[string]func(c *Config, v any) error{
	"identity":   func(c *Config, v any) error { return str(v, &c.Identity) },
	"namespace":  func(c *Config, v any) error { return str(v, &c.Namespace) },
	"kubeconfig": func(c *Config, v any) error { return str(v, &c.Kubeconfig) },
	"kube_qps":   func(c *Config, v any) error { return positive(v, &c.KubeQPS) },
	"kube_burst": func(c *Config, v any) error {
		var f float64
		if err := positive(v, &f); err != nil {
			return err
		}
		if f != float64(int(f)) {
			return fmt.Errorf("%v is not a whole number", f)
		}
		c.KubeBurst = int(f)
		return nil
	},
	"lock": func(c *Config, v any) error {
		return enum(v, &c.Defaults.Lock, lockKinds...)
	},
	"lease_duration":      func(c *Config, v any) error { return dur(v, &c.Defaults.LeaseDuration) },
	"renew_deadline":      func(c *Config, v any) error { return dur(v, &c.Defaults.RenewDeadline) },
	"retry_period":        func(c *Config, v any) error { return dur(v, &c.Defaults.RetryPeriod) },
	"renew_interval":      func(c *Config, v any) error { return dur(v, &c.Defaults.RenewInterval) },
	"watch":               func(c *Config, v any) error { return boolean(v, &c.Watch) },
	"shutdown_timeout":    func(c *Config, v any) error { return dur(v, &c.ShutdownTimeout) },
	"on_failure":          func(c *Config, v any) error { return enum(v, &c.OnFailure, FailureRecampaign, FailureExit) },
	"failure_backoff":     func(c *Config, v any) error { return dur(v, &c.FailureBackoff) },
	"failure_backoff_max": func(c *Config, v any) error { return dur(v, &c.FailureBackoffMax) },
	"events":              func(c *Config, v any) error { return boolean(v, &c.Events) },
	"placement": func(c *Config, v any) error {
		return enum(v, &c.Placement, PlacementBalanced, PlacementNone)
	},
	"placement_group": func(c *Config, v any) error {
		if err := str(v, &c.PlacementGroup); err != nil {
			return err
		}
		return placement.ValidateGroup(c.PlacementGroup)
	},
	"never_lead":          func(c *Config, v any) error { return boolean(v, &c.NeverLead) },
	"revision":            func(c *Config, v any) error { return str(v, &c.Revision) },
	"zone":                func(c *Config, v any) error { return str(v, &c.Zone) },
	"http.address":        func(c *Config, v any) error { return str(v, &c.HTTP.Address) },
	"http.healthz_margin": func(c *Config, v any) error { return dur(v, &c.HTTP.HealthzMargin) },
	"tracing.enabled":     func(c *Config, v any) error { return boolean(v, &c.Tracing.Enabled) },
	"tracing.exporter":    func(c *Config, v any) error { return enum(v, &c.Tracing.Exporter, "otlp", "stdout") },
	"tracing.endpoint":    func(c *Config, v any) error { return str(v, &c.Tracing.Endpoint) },
	"tracing.protocol": func(c *Config, v any) error {
		return enum(v, &c.Tracing.Protocol, "", "grpc", "http/protobuf")
	},
	"tracing.insecure":     func(c *Config, v any) error { return boolean(v, &c.Tracing.Insecure) },
	"tracing.service_name": func(c *Config, v any) error { return str(v, &c.Tracing.ServiceName) },
	"tracing.sample_ratio": func(c *Config, v any) error { return ratio(v, &c.Tracing.SampleRatio) },
}

// componentSetters set the keys of one entry of the components map.
var componentSetters = map[string]func(c *Entry, v any) error{
	"enabled":   func(c *Entry, v any) error { return boolean(v, &c.Enabled) },
	"lock_name": func(c *Entry, v any) error { return str(v, &c.Settings.LockName) },
	"namespace": func(c *Entry, v any) error { return str(v, &c.Settings.Namespace) },
	"lock": func(c *Entry, v any) error {
		return enum(v, &c.Settings.Lock, lockKinds...)
	},
	"lease_duration": func(c *Entry, v any) error { return dur(v, &c.Settings.LeaseDuration) },
	"renew_deadline": func(c *Entry, v any) error { return dur(v, &c.Settings.RenewDeadline) },
	"retry_period":   func(c *Entry, v any) error { return dur(v, &c.Settings.RetryPeriod) },
	"renew_interval": func(c *Entry, v any) error { return dur(v, &c.Settings.RenewInterval) },
	"placement": func(c *Entry, v any) error {
		return enum(v, &c.Placement, "", PlacementBalanced, PlacementNone)
	},
	"weight": func(c *Entry, v any) error {
		var f float64
		if err := positive(v, &f); err != nil {
			return err
		}
		if f != float64(int(f)) || f > 1000 {
			return fmt.Errorf("%v is not a whole number from 1 to 1000", f)
		}
		c.Weight = int(f)
		return nil
	},
}

// set applies one flattened key.
func (c *Config) set(key string, v any) error {
	if name, field, ok := strings.Cut(strings.TrimPrefix(key, "components."), "."); ok && strings.HasPrefix(key, "components.") {
		set, known := componentSetters[field]
		if !known {
			return errors.New("unknown key")
		}
		entry := c.entry(name)
		if err := set(&entry, v); err != nil {
			return err
		}
		c.Components[name] = entry
		return nil
	}
	if name, ok := strings.CutPrefix(key, "components."); ok {
		// An entry with no keys, such as "billing: {}" or "billing:".
		if !isEmpty(v) {
			return fmt.Errorf("%v: a component entry must be a map", quote(v))
		}
		c.Components[name] = c.entry(name)
		return nil
	}
	if (key == "components" || key == "tracing" || key == "http") && isEmpty(v) {
		return nil
	}
	set, known := setters[key]
	if !known {
		return errors.New("unknown key")
	}
	return set(c, v)
}

func (c *Config) entry(name string) Entry {
	if e, ok := c.Components[name]; ok {
		return e
	}
	return Entry{Enabled: true}
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func quote(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func str(v any, dst *string) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s is not a string", quote(v))
	}
	*dst = s
	return nil
}

func enum[T ~string](v any, dst *T, allowed ...T) error {
	var s string
	if err := str(v, &s); err != nil {
		return err
	}
	if !slices.Contains(allowed, T(s)) {
		return fmt.Errorf("%q must be one of %s", s, joinEnum(allowed))
	}
	*dst = T(s)
	return nil
}

func dur(v any, dst *time.Duration) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s is not a duration (write it with a unit, such as \"15s\")", quote(v))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (such as \"15s\" or \"1m30s\")", s)
	}
	if d <= 0 {
		return fmt.Errorf("%q must be positive", s)
	}
	*dst = d
	return nil
}

func boolean(v any, dst *bool) error {
	switch b := v.(type) {
	case bool:
		*dst = b
		return nil
	case string:
		if parsed, err := strconv.ParseBool(b); err == nil {
			*dst = parsed
			return nil
		}
	}
	return fmt.Errorf("%s is not true or false", quote(v))
}

// ratio reads a number from 0 to 1.
func ratio(v any, dst *float64) error {
	var f float64
	if err := number(v, &f); err != nil {
		return err
	}
	if f < 0 || f > 1 {
		return fmt.Errorf("%v must be between 0 and 1", f)
	}
	*dst = f
	return nil
}

// positive reads a number above 0.
func positive(v any, dst *float64) error {
	var f float64
	if err := number(v, &f); err != nil {
		return err
	}
	if f <= 0 {
		return fmt.Errorf("%v must be positive", f)
	}
	*dst = f
	return nil
}

func number(v any, dst *float64) error {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case string:
		parsed, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", n)
		}
		f = parsed
	default:
		return fmt.Errorf("%s is not a number", quote(v))
	}
	*dst = f
	return nil
}

// Sources returns the usual layers: the file at path, if path is not
// empty, then the environment.
func Sources(path string) []Source {
	var srcs []Source
	if path != "" {
		srcs = append(srcs, File(path))
	}
	return append(srcs, Env(os.Environ()))
}

// Values are keys set in code, such as from command-line flags, by their
// dotted path ("kubeconfig", "components.billing.lock"); name names them
// in errors.
func Values(name string, values map[string]any) Source {
	return Source{name: name, load: func(k *koanf.Koanf) (map[string]string, error) {
		return nil, k.Load(confmap.Provider(values, "."), nil)
	}}
}
