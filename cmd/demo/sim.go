package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// Replica states.
const (
	stateUp      = "up"
	statePaused  = "paused"
	stateCrashed = "crashed"
	stateStopped = "stopped"
)

var errCrashed = errors.New("replica crashed")

// replica is one simulated replica: an fx app of its own, whose locks
// pass through a fault switch.
type replica struct {
	id string

	mu      sync.Mutex
	state   string
	resumed chan struct{} // closed when a pause ends
	app     *fx.App
	runner  *framework.Runner
}

func (r *replica) getState() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// faultLock passes calls to the shared lock unless its replica is paused
// (calls hang, as in a frozen process) or crashed (calls fail).
type faultLock struct {
	locks.Lock
	r *replica
}

func (l faultLock) gate(ctx context.Context) error {
	l.r.mu.Lock()
	state, resumed := l.r.state, l.r.resumed
	l.r.mu.Unlock()
	switch state {
	case stateCrashed, stateStopped:
		return errCrashed
	case statePaused:
		select {
		case <-resumed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (l faultLock) Get(ctx context.Context) (locks.Observed, error) {
	if err := l.gate(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.Lock.Get(ctx)
}

func (l faultLock) Create(ctx context.Context, rec locks.Record) (locks.Observed, error) {
	if err := l.gate(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.Lock.Create(ctx, rec)
}

func (l faultLock) Update(ctx context.Context, version string, rec locks.Record) (locks.Observed, error) {
	if err := l.gate(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.Lock.Update(ctx, version, rec)
}

// annotator is a lock that keeps tenure's annotations, as the memory
// locks do: hand-overs and placement's move requests go through it.
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

func (l faultLock) Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	if err := l.gate(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.Lock.(annotator).Annotate(ctx, version, r, set)
}

// sim runs the simulated replicas on one set of memory locks.
type sim struct {
	opts     options
	space    *locks.MemorySpace
	roster   *placement.MemoryRoster // the replicas' member records: placement spreads the leaderships
	ev       *events
	log      *slog.Logger
	names    []string
	replicas []*replica
}

func newSim(opts options, ev *events, log *slog.Logger) *sim {
	s := &sim{opts: opts, space: locks.NewMemorySpace(), roster: placement.NewMemoryRoster(nil, opts.lease), ev: ev, log: log, names: names(opts.components)}
	for i := range opts.replicas {
		s.replicas = append(s.replicas, &replica{id: fmt.Sprintf("replica-%d", i+1), state: stateStopped})
	}
	return s
}

// start starts r's app, as a fresh process would start.
func (s *sim) start(r *replica) error {
	var runner *framework.Runner
	opts := []fx.Option{
		framework.Module,
		framework.Config(s.opts.sources(map[string]any{"lock": "memory", "identity": r.id})...),
		fx.Supply(s.space, s.log, s.roster),
		framework.WrapLocks(func(_ string, l locks.Lock) locks.Lock { return faultLock{Lock: l, r: r} }),
		fx.Populate(&runner),
		fx.NopLogger,
	}
	for _, n := range s.names {
		opts = append(opts, framework.Component(func() components.Component { return demoComponent(n, s.ev) }))
	}
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	r.state, r.app, r.runner = stateUp, app, runner
	r.mu.Unlock()
	return app.Start(context.Background())
}

// stop stops r's app: gracefully (leases released), or as a crash (the
// work stops, nothing is released).
func (s *sim) stop(r *replica, crash bool) {
	r.mu.Lock()
	app := r.app
	if crash {
		r.state = stateCrashed
	} else {
		r.state = stateUp // until the app has stopped, it releases as usual
	}
	r.mu.Unlock()
	if app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		s.log.Warn("stop", "replica", r.id, "err", err)
	}
	r.mu.Lock()
	if !crash {
		r.state = stateStopped
	}
	r.app, r.runner = nil, nil
	r.mu.Unlock()
}

func (s *sim) pause(r *replica) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == stateUp {
		r.state, r.resumed = statePaused, make(chan struct{})
	}
}

func (s *sim) resume(r *replica) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == statePaused {
		r.state = stateUp
		close(r.resumed)
	}
}

// leadsOf counts, per replica, the components whose record it holds.
func (s *sim) holders() map[string]int {
	count := map[string]int{}
	for _, n := range s.names {
		if obs, err := s.lock(n).Get(context.Background()); err == nil && obs.Record.HolderIdentity != "" {
			count[obs.Record.HolderIdentity]++
		}
	}
	return count
}

func (s *sim) lock(component string) *locks.MemoryLock {
	return s.space.Lock("default/" + component)
}

// busiest is the running replica that holds the most locks.
func (s *sim) busiest() *replica {
	count := s.holders()
	var best *replica
	for _, r := range s.replicas {
		if r.getState() != stateUp {
			continue
		}
		if best == nil || count[r.id] > count[best.id] {
			best = r
		}
	}
	return best
}

// fault applies one fault (or "back": bring every replica back up) and
// logs it.
func (s *sim) fault(kind string) {
	if kind == "back" {
		for _, r := range s.replicas {
			switch r.getState() {
			case statePaused:
				s.resume(r)
				s.ev.add("fault: %s resumes", r.id)
			case stateCrashed, stateStopped:
				s.ev.add("fault: %s starts again", r.id)
				if err := s.start(r); err != nil {
					s.ev.add("fault: %s cannot start: %v", r.id, err)
				}
			}
		}
		return
	}
	r := s.busiest()
	if r == nil {
		return
	}
	switch kind {
	case "stop":
		s.ev.add("fault: %s stops gracefully (SIGTERM): its leases are handed over to the replicas that stay, which lead at once", r.id)
		s.stop(r, false)
	case "crash":
		s.ev.add("fault: %s crashes (SIGKILL): nothing is released, standbys wait for its leases to expire", r.id)
		s.stop(r, true)
	case "pause":
		s.ev.add("fault: %s freezes: it stops its work at the renew deadline, standbys take over when the lease expires", r.id)
		s.pause(r)
	}
}

// schedule injects faults in a cycle until ctx is done, if auto() says
// so: graceful stop, crash, pause, each followed by recovery.
func (s *sim) schedule(ctx context.Context, auto func() bool, faults chan<- string) {
	lease := s.opts.lease
	steps := []struct {
		wait time.Duration
		kind string
	}{
		{4 * time.Second, "stop"}, {3 * time.Second, "back"},
		{3 * time.Second, "crash"}, {lease + 2*time.Second, "back"},
		{3 * time.Second, "pause"}, {lease + 2*time.Second, "back"},
	}
	for i := 0; ; i = (i + 1) % len(steps) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(steps[i].wait):
		}
		if auto() {
			select {
			case faults <- steps[i].kind:
			case <-ctx.Done():
				return
			}
		}
	}
}
