package placement

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	return setPreferred(ctx, l, from, func(current string) (string, bool) { return to, current != to })
}

// withdraw takes back a request that l's holder, from, hand it over to
// to, if l still asks for that: the holder then keeps the lock, or, if it
// has begun to drain its work, releases it when the work has returned
// (see package election).
func withdraw(ctx context.Context, l locks.Lock, from, to string) (bool, error) {
	return setPreferred(ctx, l, from, func(current string) (string, bool) { return "", current == to })
}

// setPreferred sets l's locks.PreferredHolderAnnotation to what change
// says, given its current value, if change says to; l must be held by
// from. Conflicting writes are retried from a new read (see Request).
func setPreferred(ctx context.Context, l locks.Lock, from string, change func(current string) (string, bool)) (bool, error) {
	a, ok := l.(annotator)
	if !ok {
		return false, fmt.Errorf("placement: %s cannot be asked to move: it keeps no annotations", l.Describe())
	}
	get := l.Get
	to := ""
	for range requestAttempts {
		obs, err := get(ctx)
		if err != nil {
			return false, fmt.Errorf("placement: read %s: %w", l.Describe(), err)
		}
		if obs.Record.HolderIdentity != from {
			return false, fmt.Errorf("placement: move %s from %s: %w (now %q)", l.Describe(), from, ErrStale, obs.Record.HolderIdentity)
		}
		var write bool
		if to, write = change(obs.Annotations[locks.PreferredHolderAnnotation]); !write {
			return false, nil
		}
		_, err = a.Annotate(ctx, obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, locks.ErrConflict) {
			return false, fmt.Errorf("placement: ask %s to move to %q: %w", l.Describe(), to, err)
		}
		if s, ok := l.(serverReader); ok {
			get = s.GetFromServer // a cache may be behind the version that won
		}
	}
	return false, fmt.Errorf("placement: ask %s to move to %q: the lock kept changing: %w", l.Describe(), to, locks.ErrConflict)
}

// requestAttempts bounds Request's writes.
const requestAttempts = 5

// serverReader is a lock that may answer reads from a cache, such as a
// LeaseLock while it follows its Lease, and can read past it.
type serverReader interface {
	GetFromServer(ctx context.Context) (locks.Observed, error)
}

// Component is a component as the coordinator places it: its lock, its
// weight (1 if zero), and its name in logs and spans (default: its key in
// CoordinatorConfig.Components).
type Component struct {
	Lock   locks.Lock
	Weight int
	Name   string
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
	// Paused reports whether placement is paused for the whole group, and
	// for which components, by name (see AnnotationPaused), as last
	// observed: free to call, as Holders. A paused component stays with
	// its holder (the plan evens the spread out with the others, see
	// Leadership.Pinned); in a paused group nothing is asked, and a
	// request to a target gone is withdrawn rather than redirected. The
	// hand-offs of replicas that stop are their own, and go on. Default:
	// nothing is paused.
	Paused func() (group bool, components map[string]bool)
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
	// OnWithdraw, if set, is called after each move withdrawn because its
	// target went away.
	OnWithdraw func(Move)
}

// Coordinator computes the placement and asks for its moves, a round
// every Interval, while it runs: the leader work of the coordinator's
// election.
type Coordinator struct {
	cfg CoordinatorConfig

	mu        sync.Mutex
	pending   map[string]pendingMove // by component
	adopted   bool                   // the requests on the locks were read this term
	lastRound time.Time
	warned    map[string]bool // members found to run none of the components
	// led: the components that had a holder at the last round, nil
	// before the first; asked: when a move of each component was last
	// asked, for PendingFor (see settling).
	led   map[string]bool
	asked map[string]time.Time
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
	return &Coordinator{cfg: cfg, pending: map[string]pendingMove{}, warned: map[string]bool{}, asked: map[string]time.Time{}}, nil
}

// Run makes a round every Interval until ctx is done: a coordinator's
// term. Its first round reads the moves already asked on the locks.
func (c *Coordinator) Run(ctx context.Context) {
	c.mu.Lock()
	c.adopted = false
	c.mu.Unlock()
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
//
// A move asked for counts as under way (see Leadership.Pending) until the
// holder changes or PendingFor passes. The first round of a term (of Run,
// or after a pause of more than two Intervals) reads the requests already
// on the locks (a last coordinator's, an operator's), and every round
// reads those on the locks of stopping members (their own hand-offs). A
// round waits for a roster that can say it has listed its records (a
// LeaseRoster) to have done so. A request whose target is no longer an eligible
// member that runs the component is redirected where the plan sends the
// leadership, or withdrawn if the plan leaves it with its holder: a
// leadership is never handed to a replica that stopped, crashed or was
// cordoned since it was asked. A round in which leaderships are still
// being taken (see settling) asks for no new move: replicas starting
// together take their locks unevenly over several rounds, and a plan made
// meanwhile would be undone by the next, moving leaderships back and forth.
func (c *Coordinator) Round(ctx context.Context) []Move {
	if s, ok := c.cfg.Roster.(interface{ Synced() bool }); ok && !s.Synced() {
		return nil // an empty view would withdraw every request
	}
	holders := c.cfg.Holders()
	now := c.cfg.Clock.Now()
	members := uniqueMembers(c.cfg.Roster.Members())
	byID := map[string]Member{}
	for _, m := range members {
		byID[m.Identity] = m
	}
	c.mu.Lock()
	settling := c.settling(holders, now)
	all := !c.adopted || !c.lastRound.IsZero() && now.Sub(c.lastRound) > 2*c.cfg.Interval
	c.adopted, c.lastRound = true, now
	c.mu.Unlock()
	for name := range c.cfg.Components {
		if all || byID[holders[name]].ShuttingDown {
			c.adopt(ctx, name, holders[name], now)
		}
	}
	c.warnForeign(members)
	groupPaused, paused := false, map[string]bool(nil)
	if c.cfg.Paused != nil {
		groupPaused, paused = c.cfg.Paused()
	}
	var ls []Leadership
	moot := map[string]pendingMove{} // requests to withdraw unless redirected
	c.mu.Lock()
	for name, comp := range c.cfg.Components {
		p, ok := c.pending[name]
		if ok && (holders[name] != p.from || now.Sub(p.asked) >= c.cfg.PendingFor) {
			delete(c.pending, name) // done, moot (the term changed), or given up on
			p, ok = pendingMove{}, false
		}
		if ok && !byID[p.to].canLead(name) { // not a member, or not a place for it now
			moot[name] = p
			delete(c.pending, name)
			p = pendingMove{}
		}
		ls = append(ls, Leadership{Component: name, Weight: comp.Weight, Holder: holders[name], Pending: p.to, Pinned: paused[name]})
	}
	c.mu.Unlock()
	var plan []Move
	if !settling && !groupPaused { // paused: a request to a target gone is withdrawn, not redirected
		plan = Plan(members, ls)
	}
	var asked []Move
	for _, m := range plan {
		if ctx.Err() != nil {
			break
		}
		_, redirect := moot[m.Component]
		if byID[m.From].ShuttingDown && !redirect {
			// A replica that shuts down asks for its own leaderships to
			// move, from its own view, before it stops them: a second
			// decider would only send some elsewhere.
			continue
		}
		ok, err := c.request(ctx, m)
		if err != nil {
			// A redirect not made leaves the request to the target that
			// went away: it is withdrawn below.
			c.cfg.Logger.Info("placement: move not asked", "component", c.nameOf(m.Component), "from", m.From, "to", m.To, "err", err)
			continue
		}
		delete(moot, m.Component) // redirected
		c.mu.Lock()
		c.pending[m.Component] = pendingMove{from: m.From, to: m.To, asked: now}
		c.asked[m.Component] = now
		c.mu.Unlock()
		if !ok {
			continue // asked already; the holder is handing over
		}
		c.cfg.Logger.Info("placement: asked a leader to move", "component", c.nameOf(m.Component), "from", m.From, "to", m.To)
		asked = append(asked, m)
		if c.cfg.OnMove != nil {
			c.cfg.OnMove(m)
		}
	}
	for name, p := range moot {
		if ctx.Err() != nil {
			break
		}
		if _, err := withdraw(ctx, c.cfg.Components[name].Lock, p.from, p.to); err != nil {
			c.cfg.Logger.Info("placement: move not withdrawn", "component", c.nameOf(name), "from", p.from, "to", p.to, "err", err)
			continue
		}
		c.cfg.Logger.Info("placement: withdrew a move: its target is gone", "component", c.nameOf(name), "from", p.from, "to", p.to)
		if c.cfg.OnWithdraw != nil {
			c.cfg.OnWithdraw(Move{Component: name, From: p.from, To: p.to})
		}
	}
	return asked
}

// settling says whether leaderships are still being taken: a component
// without a holder at the last round has one now, other than by a move
// asked within PendingFor (a hand-over passes through no holder). Replicas
// starting, or taking over from a crashed one, do so; a move from one
// holder to another, this coordinator's or not, does not. The first round
// has nothing to compare with and is not settling. It records this
// round's holders for the next. c.mu is held.
func (c *Coordinator) settling(holders map[string]string, now time.Time) bool {
	for name, at := range c.asked {
		if now.Sub(at) >= c.cfg.PendingFor {
			delete(c.asked, name)
		}
	}
	taken := false
	led := map[string]bool{}
	for name := range c.cfg.Components {
		if holders[name] == "" {
			continue
		}
		led[name] = true
		if _, moved := c.asked[name]; c.led != nil && !c.led[name] && !moved {
			taken = true
		}
	}
	c.led = led
	return taken
}

// adopt reads the request on component's lock, if holder holds it, as a
// pending move asked now, unless one is pending already.
func (c *Coordinator) adopt(ctx context.Context, component, holder string, now time.Time) {
	c.mu.Lock()
	_, pending := c.pending[component]
	c.mu.Unlock()
	l := c.cfg.Components[component].Lock
	if _, ok := l.(annotator); !ok || holder == "" || pending {
		return
	}
	obs, err := l.Get(ctx)
	if err != nil {
		return // a request there, if any, is handled as it comes
	}
	to := obs.Annotations[locks.PreferredHolderAnnotation]
	if to == "" || obs.Record.HolderIdentity != holder {
		return
	}
	c.mu.Lock()
	if _, ok := c.pending[component]; !ok {
		c.pending[component] = pendingMove{from: holder, to: to, asked: now}
	}
	c.mu.Unlock()
}

// warnForeign logs, once per member, a member that runs none of the
// components placed here: most likely a replica of another program in the
// same placement group, which this coordinator does not place.
func (c *Coordinator) warnForeign(members []Member) {
	c.mu.Lock()
	for id := range c.warned { // forget those gone
		if !slices.ContainsFunc(members, func(m Member) bool { return m.Identity == id }) {
			delete(c.warned, id)
		}
	}
	c.mu.Unlock()
	for _, m := range members {
		if len(m.Components) == 0 || slices.ContainsFunc(m.Components, func(k string) bool { _, ok := c.cfg.Components[k]; return ok }) {
			continue
		}
		c.mu.Lock()
		warned := c.warned[m.Identity]
		c.warned[m.Identity] = true
		c.mu.Unlock()
		if !warned {
			c.cfg.Logger.Warn("placement: a member of this placement group runs none of the components this coordinator places, and is not placed by it: if it is another program, give each program its own placement_group",
				"member", m.Identity)
		}
	}
}

// nameOf is component's name in logs and spans.
func (c *Coordinator) nameOf(component string) string {
	return cmp.Or(c.cfg.Components[component].Name, component)
}

func (c *Coordinator) request(ctx context.Context, m Move) (bool, error) {
	ctx, sp := c.cfg.Tracer.Start(ctx, "request move", trace.WithAttributes(
		attribute.String("tenure.election", c.nameOf(m.Component)),
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
