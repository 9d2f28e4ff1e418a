package framework

import (
	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/locks"
)

// Module runs the registered components, each under its own election,
// from the app's start to its stop. It provides *Runner; everything else
// it builds is private to it (see the package documentation for what it
// takes from the app).
var Module = fx.Module("tenure",
	fx.Provide(loadConfig, newIdentity, newTelemetry, fx.Private),
	fx.Provide(newRunner),
	fx.Invoke(listenUntilStopped), // first: its stop hook runs last
	fx.Invoke(runWithApp),
)

// Component registers a component constructor: a function returning a
// components.Component (or a type that implements it), with any
// dependencies from the app as its parameters. It is run at start-up,
// like any fx constructor.
func Component(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor, fx.As(new(components.Component)), fx.ResultTags(`group:"components"`)))
}

// configSources are the layers of configuration loadConfig loads.
type configSources []config.Source

// ConfigFile makes the app read its configuration from the YAML file at
// path, with TENURE_ environment variables over it.
func ConfigFile(path string) fx.Option {
	return fx.Supply(configSources(config.Sources(path)))
}

// ConfigYAML makes the app read its configuration from YAML text, such as
// an embedded file, with TENURE_ environment variables over it; name
// names it in errors.
func ConfigYAML(name string, data []byte) fx.Option {
	return fx.Supply(configSources{config.YAML(name, data), config.Env(nil)})
}

// Config makes the app read its configuration from sources, each over the
// ones before (see config.Load): to put command-line flags (config.Values)
// over a file, say. Only what the sources say applies: add config.Env(nil)
// for the environment. Without Config, ConfigFile or ConfigYAML the
// configuration is the defaults and the environment.
func Config(sources ...config.Source) fx.Option {
	return fx.Supply(configSources(sources))
}

// LockWrapper wraps the lock of the named component: to instrument it, or
// to inject faults in tests and demos. A wrapper that embeds locks.Lock
// hides the lock's other methods: forward Annotate as well (see
// locks.Lock), or the election releases where it would hand over, and
// placement cannot ask it to move.
type LockWrapper func(component string, l locks.Lock) locks.Lock

// WrapLocks makes the app wrap every component's lock with wrap.
func WrapLocks(wrap LockWrapper) fx.Option { return fx.Supply(wrap) }

// configParams are loadConfig's dependencies.
type configParams struct {
	fx.In
	Sources configSources `optional:"true"`
}

// loadConfig loads the configuration from the app's sources, or from the
// environment alone if it gave none.
func loadConfig(p configParams) (*config.Config, error) {
	srcs := []config.Source(p.Sources)
	if srcs == nil {
		srcs = config.Sources("")
	}
	return config.Load(srcs...)
}
