// Package components defines what a tenure program is made of: named pieces
// of leader work, each run only while this replica leads the component's
// own election.
//
// Start with New: a name, the work to do while this replica leads, and,
// if the component needs election settings of its own (a shorter lease, a
// ConfigMap lock), WithSettings. A type of your own is a component too: it
// needs the two methods of Component, and brings its own settings with a
// method Settings() Settings.
//
// Register components with the fx module (framework.Component). It runs
// one election per component, with the settings of the component's
// configuration entry over its own Settings over the program's defaults
// (see package config), and calls Run when this replica becomes the
// component's leader. The work reads its term (identity and fencing token)
// with election.TermFromContext.
package components

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/tenure/tenure/locks"
)

// Component is a named piece of leader work.
//
// A component can also say when it is ready to lead, with a method
//
//	Ready() <-chan struct{}
//
// The framework campaigns for it, and announces it to placement, only
// once that channel is closed: a component whose work needs a warm cache
// closes it once its cache has synced, so that a replica that has just
// started does not win a leadership it cannot serve yet.
type Component interface {
	// Name identifies the component in configuration, logs and traces,
	// and is its lock's default name. It must be a DNS label: lower-case
	// letters, digits and '-', at most 63 characters.
	Name() string
	// Run does the leader work. It is called when this replica becomes
	// the component's leader and must return once ctx is done: leadership
	// lost, or the program shutting down. The lock is released only after
	// Run has returned. A Run that returns early, with an error or nil, or
	// panics ends the term: the framework logs it, releases the lock and
	// campaigns again after a backoff (or stops the program, as
	// configured).
	Run(ctx context.Context) error
}

// Settings are a component's election settings. Zero fields take the
// program's defaults; the configuration file's entry for the component
// overrides them.
//
// A component brings its own settings with a method
//
//	Settings() components.Settings
//
// which New's WithSettings gives; the framework reads it when the program
// starts.
type Settings struct {
	// LockName is the name of the Lease or ConfigMap. Default: the
	// component's name.
	LockName string
	// Namespace of the lock. Default: the program's namespace.
	Namespace string
	// Lock is the kind of lock. Default: the program's (locks.KindLease
	// unless configured).
	Lock locks.Kind
	// LeaseDuration, RenewDeadline, RetryPeriod and RenewInterval are the
	// election's timings (see election.Config).
	LeaseDuration, RenewDeadline, RetryPeriod, RenewInterval time.Duration
}

// Option configures a component made by New.
type Option interface {
	apply(*funcComponent)
}

type optionFunc func(*funcComponent)

func (f optionFunc) apply(c *funcComponent) { f(c) }

// WithSettings gives the component its own election settings.
func WithSettings(s Settings) Option {
	return optionFunc(func(c *funcComponent) { c.settings = s })
}

// New makes a component of a function: the one-liner way to write one.
// The framework checks the name when the program starts (see
// ValidateName).
func New(name string, run func(ctx context.Context) error, opts ...Option) Component {
	c := &funcComponent{name: name, run: run}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

type funcComponent struct {
	name     string
	run      func(ctx context.Context) error
	settings Settings
}

func (c *funcComponent) Name() string { return c.name }
func (c *funcComponent) Run(ctx context.Context) error {
	if c.run == nil {
		return fmt.Errorf("component %s has no run function", c.name)
	}
	return c.run(ctx)
}
func (c *funcComponent) Settings() Settings { return c.settings }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName checks that name can name a component: a DNS label, so
// that it can name its Lease and key its configuration.
func ValidateName(name string) error {
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("component name %q must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
	}
	return nil
}
