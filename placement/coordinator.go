package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"k8s.io/utils/clock"

	"github.com/tenure/tenure/locks"
)

// annotator is a lock that keeps tenure's annotations (see locks.Lock).
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

// ErrStale says that a move was not asked for: the lock's holder is no
// longer the one the move is from.
var ErrStale = errors.New("the lock's holder changed")

// Request asks the holder of l, from, to hand it over to to: it writes
// locks.PreferredHolderAnnotation, conditional on the version it reads,
// unless that already asks for to. The holder drains its work and hands
// over (see package election). A write that conflicts (with the holder's
// own renewal, most often) is retried from a new read, a few times. It
// fails with ErrStale if from no longer holds l, and with
// locks.ErrConflict if l kept changing; neither harms anything, since
// only the holder writes the record over. It reports whether it asked:
// false if the lock already asked for to.
func Request(ctx context.Context, l locks.Lock, from, to string) (asked bool, err error) {
	a, ok := l.(annotator)
	if !ok {
		return false, fmt.Errorf("placement: %s cannot be asked to move: it keeps no annotations", l.Describe())
	}
	get := l.Get
	for range requestAttempts {
		obs, err := get(ctx)
		if err != nil {
			return false, fmt.Errorf("placement: read %s: %w", l.Describe(), err)
		}
		if obs.Record.HolderIdentity != from {
			return false, fmt.Errorf("placement: move %s from %s: %w (now %q)", l.Describe(), from, ErrStale, obs.Record.HolderIdentity)
		}
		if obs.Annotations[locks.PreferredHolderAnnotation] == to {
			return false, nil
		}
		_, err = a.Annotate(ctx, obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, locks.ErrConflict) {
			return false, fmt.Errorf("placement: ask %s to move to %s: %w", l.Describe(), to, err)
		}
		if s, ok := l.(serverReader); ok {
			get = s.GetFromServer // a cache may be behind the version that won
		}
	}
	return false, fmt.Errorf("placement: ask %s to move to %s: the lock kept changing: %w", l.Describe(), to, locks.ErrConflict)
}

// requestAttempts bounds Request's writes.
const requestAttempts = 5

// serverReader is a lock that may answer reads from a cache, such as a
// LeaseLock while it follows its Lease, and can read past it.
type serverReader interface {
	GetFromServer(ctx context.Context) (locks.Observed, error)
}

// Component is a component as the coordinator places it: its lock, and
// its weight (1 if zero).
type Component struct {
	Lock   locks.Lock
	Weight int
}

// CoordinatorConfig configures a Coordinator.
type CoordinatorConfig struct {
	// Roster is where the members are read.
	Roster Roster
	// Components are the components placed, by name.
	Components map[string]Component
	// Holders returns each component's holder as last observed, such as
	// election.Election.Leader of each component's election: free to
	// call, so that a round costs no request unless it moves something.
	Holders func() map[string]string
	// Interval between rounds. Required.
	Interval time.Duration
	// PendingFor is how long a move asked for counts as under way (the
	// holder drains its work, then hands over) unless the holder is seen
	// to change first. Default: ten Intervals.
	PendingFor time.Duration
	// Clock. Default: the real clock.
	Clock clock.WithTicker
	// Logger. Default: slog.Default().
	Logger *slog.Logger
	// Tracer for the "request move" spans. Default: none.
	Tracer trace.Tracer
	// OnMove, if set, is called after each move asked for.
	OnMove func(Move)
}

// Coordinator computes the placement and asks for its moves, a round
// every Interval, while it runs: the leader work of the coordinator's
// election.
type Coordinator struct {
	cfg CoordinatorConfig

	mu      sync.Mutex
	pending map[string]pendingMove // by component
}

// pendingMove is a move asked for, and when.
type pendingMove struct {
	from, to string
	asked    time.Time
}

// NewCoordinator checks cfg and makes a Coordinator.
func NewCoordinator(cfg CoordinatorConfig) (*Coordinator, error) {
	switch {
	case cfg.Roster == nil:
		return nil, errors.New("placement: coordinator: Roster is nil")
	case cfg.Holders == nil:
		return nil, errors.New("placement: coordinator: Holders is nil")
	case cfg.Interval <= 0:
		return nil, fmt.Errorf("placement: coordinator: Interval %v is not positive", cfg.Interval)
	}
	for name, c := range cfg.Components {
		if c.Lock == nil {
			return nil, fmt.Errorf("placement: coordinator: component %s has no lock", name)
		}
		if c.Weight < 0 {
			return nil, fmt.Errorf("placement: coordinator: component %s has a negative weight %d", name, c.Weight)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if cfg.PendingFor <= 0 {
		cfg.PendingFor = 10 * cfg.Interval
	}
	return &Coordinator{cfg: cfg, pending: map[string]pendingMove{}}, nil
}

// Run makes a round every Interval until ctx is done.
func (c *Coordinator) Run(ctx context.Context) {
	t := c.cfg.Clock.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// Round computes the placement once and asks for its moves; it returns
// the moves asked for.
func (c *Coordinator) Round(ctx context.Context) []Move {
	holders := c.cfg.Holders()
	now := c.cfg.Clock.Now()
	var ls []Leadership
	c.mu.Lock()
	for name, comp := range c.cfg.Components {
		p, ok := c.pending[name]
		if ok && (holders[name] != p.from || now.Sub(p.asked) >= c.cfg.PendingFor) {
			delete(c.pending, name) // done, moot (the term changed), or given up on
			p = pendingMove{}
		}
		ls = append(ls, Leadership{Component: name, Weight: comp.Weight, Holder: holders[name], Pending: p.to})
	}
	c.mu.Unlock()
	var asked []Move
	members := c.cfg.Roster.Members()
	stopping := map[string]bool{}
	for _, m := range members {
		stopping[m.Identity] = m.ShuttingDown
	}
	for _, m := range Plan(members, ls) {
		if ctx.Err() != nil {
			break
		}
		if stopping[m.From] {
			// A replica that shuts down asks for its own leaderships to
			// move, from its own view, before it stops them: a second
			// decider would only send some elsewhere.
			continue
		}
		ok, err := c.request(ctx, m)
		if err != nil {
			c.cfg.Logger.Info("placement: move not asked", "component", m.Component, "from", m.From, "to", m.To, "err", err)
			continue
		}
		c.mu.Lock()
		c.pending[m.Component] = pendingMove{from: m.From, to: m.To, asked: now}
		c.mu.Unlock()
		if !ok {
			continue // asked already; the holder is handing over
		}
		c.cfg.Logger.Info("placement: asked a leader to move", "component", m.Component, "from", m.From, "to", m.To)
		asked = append(asked, m)
		if c.cfg.OnMove != nil {
			c.cfg.OnMove(m)
		}
	}
	return asked
}

func (c *Coordinator) request(ctx context.Context, m Move) (bool, error) {
	ctx, sp := c.cfg.Tracer.Start(ctx, "request move", trace.WithAttributes(
		attribute.String("tenure.election", m.Component),
		attribute.String("tenure.move.from", m.From),
		attribute.String("tenure.move.to", m.To),
		attribute.String("tenure.move.reason", "placement"),
	))
	defer sp.End()
	asked, err := Request(ctx, c.cfg.Components[m.Component].Lock, m.From, m.To)
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.SetAttributes(attribute.Bool("tenure.move.asked", asked))
	return asked, err
}
