// Package components defines what a tenure program is made of: named pieces
// of leader work, each run only while this replica leads the component's
// own election.
//
// Register components with the framework (package framework); it runs one
// election per component and calls Run when this replica becomes the
// component's leader. The work reads its term (identity and fencing token)
// with election.TermFromContext.
package components

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// Component is a named piece of leader work.
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

// Election holds a component's election settings. Zero fields take the
// program's defaults; the configuration file's entry for the component
// overrides them.
type Election struct {
	// LockName is the name of the Lease or ConfigMap. Default: the
	// component's name.
	LockName string
	// Namespace of the lock. Default: the program's namespace.
	Namespace string
	// Lock is the kind of lock: "lease", "configmap" or "memory".
	Lock string
	// LeaseDuration, RenewDeadline, RetryPeriod and RenewInterval are the
	// election's timings (see election.Config).
	LeaseDuration, RenewDeadline, RetryPeriod, RenewInterval time.Duration
}

// Merge returns e with each zero field taken from defaults.
func (e Election) Merge(defaults Election) Election {
	pick := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	pickD := func(v, d time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	return Election{
		LockName:      pick(e.LockName, defaults.LockName),
		Namespace:     pick(e.Namespace, defaults.Namespace),
		Lock:          pick(e.Lock, defaults.Lock),
		LeaseDuration: pickD(e.LeaseDuration, defaults.LeaseDuration),
		RenewDeadline: pickD(e.RenewDeadline, defaults.RenewDeadline),
		RetryPeriod:   pickD(e.RetryPeriod, defaults.RetryPeriod),
		RenewInterval: pickD(e.RenewInterval, defaults.RenewInterval),
	}
}

// Elected is implemented by components that bring their own election
// settings, such as those made by New with WithElection.
type Elected interface {
	Election() Election
}

// Option configures a component made by New.
type Option func(*funcComponent)

// WithElection gives the component its own election settings.
func WithElection(e Election) Option {
	return func(c *funcComponent) { c.election = e }
}

// New makes a component of a function: the one-liner way to write one.
// The framework checks the name when the program starts (see
// ValidateName).
func New(name string, run func(ctx context.Context) error, opts ...Option) Component {
	c := &funcComponent{name: name, run: run}
	for _, o := range opts {
		o(c)
	}
	return c
}

type funcComponent struct {
	name     string
	run      func(ctx context.Context) error
	election Election
}

func (c *funcComponent) Name() string { return c.name }
func (c *funcComponent) Run(ctx context.Context) error {
	if c.run == nil {
		return fmt.Errorf("component %s has no run function", c.name)
	}
	return c.run(ctx)
}
func (c *funcComponent) Election() Election { return c.election }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName checks that name can name a component: a DNS label, so
// that it can name its Lease and key its configuration.
func ValidateName(name string) error {
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("component name %q must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
	}
	return nil
}
