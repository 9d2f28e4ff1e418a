package framework

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// placer spreads the leaderships of this replica's balanced components
// (see package placement): it announces the replica in its member record,
// campaigns for the coordinator, and on stop asks for this replica's
// leaderships to move before they are stopped.
//
// The placer knows components by their locks (see lockKey): members of two
// programs that share a namespace, and a placement group, never take each
// other's components for their own.
type placer struct {
	r           *Runner
	ns          string
	group       string
	memory      placement.Roster // in memory mode, the roster; else nil
	coordinator *election.Election
	coordLock   locks.Lock       // the coordinator election's
	units       []*unit          // the balanced components
	byKey       map[string]*unit // the balanced components by lock (see lockKey)
	every       time.Duration
	kick        chan struct{} // announce now: a component's campaign began or paused

	// announcing is held from taking a member record's snapshot until
	// its write has returned, so that a periodic announcement made before
	// handOff's mark cannot land after it and say the replica stays.
	announcing sync.Mutex

	mu     sync.Mutex
	member placement.Member
	roster placement.Roster // of the current start
	close  func()           // stops the current start's roster watch
	coord  *placement.Coordinator

	tracer  trace.Tracer
	metrics placerMetrics

	stopAnnounce context.CancelFunc
	wg           sync.WaitGroup
}

// newPlacer makes the placer of r's balanced components, nil if there are
// none; p.Roster is the app's, if it gave one. A LeaseRoster and its watch
// are made by each start (see start), so that an app that never starts
// leaves nothing running.
func newPlacer(r *Runner, p runnerParams, space *locks.MemorySpace, ns string) (*placer, error) {
	var units []*unit
	for _, u := range r.units {
		if r.cfg.PlacementOf(u.comp.Name()) == config.PlacementBalanced {
			units = append(units, u)
		}
	}
	if len(units) == 0 {
		return nil, nil
	}
	d := r.cfg.Defaults
	pl := &placer{r: r, ns: ns, units: units, byKey: map[string]*unit{}, every: announceEvery(d), kick: make(chan struct{}, 1),
		group: cmp.Or(r.cfg.PlacementGroup, programGroup())}
	for _, u := range units {
		pl.byKey[lockKey(u.settings)] = u
	}
	pl.member.Identity = r.identity
	pl.member.Revision, pl.member.Zone, pl.member.Cordoned = r.cfg.Revision, r.cfg.Zone, r.cfg.NeverLead
	coordName := placement.CoordinatorLeaseName(pl.group)
	var errs []error
	for _, u := range r.units {
		switch {
		case u.settings.Namespace == ns && u.settings.LockName == coordName:
			errs = append(errs, fmt.Errorf("components.%s: its lock %s is the placement coordinator's (placement group %q): set lock_name", u.comp.Name(), coordName, pl.group))
		case strings.HasPrefix(u.settings.LockName, placement.MemberLeasePrefix):
			errs = append(errs, fmt.Errorf("components.%s: its lock %s is named like a placement member record (%s*): set lock_name", u.comp.Name(), u.settings.LockName, placement.MemberLeasePrefix))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var coordLock locks.Lock
	if r.client != nil {
		if d.LeaseDuration < time.Second {
			return nil, fmt.Errorf("lease_duration %v is under a second, the least a member Lease keeps: set lease_duration of 1s or more, or placement: none", d.LeaseDuration)
		}
		var err error
		coordLock, err = locks.NewLeaseLock(r.client.CoordinationV1(), ns, coordName, locks.WithIdentity(r.identity))
		if err != nil {
			return nil, err
		}
	} else {
		pl.memory = placement.Roster(p.Roster)
		if p.Roster == nil {
			pl.memory = placement.NewMemoryRoster(nil, d.LeaseDuration)
		}
		coordLock = space.Lock(ns + "/" + coordName)
	}
	pl.coordLock = coordLock
	var err error
	pl.coordinator, err = election.New(election.Config{
		Lock:             coordLock,
		Name:             coordName,
		Identity:         r.identity,
		LeaseDuration:    d.LeaseDuration,
		RenewDeadline:    d.RenewDeadline,
		RetryPeriod:      d.RetryPeriod,
		RenewInterval:    d.RenewInterval,
		OnStartedLeading: pl.coordinate,
		TracerProvider:   p.Telemetry.tracerProvider,
		MeterProvider:    p.Telemetry.meterProvider,
		Logger:           r.log.With("component", coordName),
	})
	if err != nil {
		return nil, fmt.Errorf("placement coordinator: %w", err)
	}
	pl.tracer = p.Telemetry.tracerProvider.Tracer(election.ScopeName)
	if err := pl.instruments(p.Telemetry.meterProvider); err != nil {
		return nil, fmt.Errorf("placement metrics: %w", err)
	}
	return pl, nil
}

// programGroup is the default placement group: the program's name, made a
// label value.
func programGroup() string {
	name := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			return c
		}
		return '-'
	}, filepath.Base(os.Args[0]))
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimFunc(name, func(c rune) bool { return c == '-' || c == '_' || c == '.' })
}

// podOwner is the replica's Pod as an owner reference, from $POD_NAME and
// $POD_UID (the downward API), if both are set.
func podOwner() (metav1.OwnerReference, bool) {
	name, uid := os.Getenv("POD_NAME"), os.Getenv("POD_UID")
	if name == "" || uid == "" {
		return metav1.OwnerReference{}, false
	}
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: name, UID: types.UID(uid)}, true
}

// holders is each balanced component's holder as its election last saw
// it, by lock.
func (pl *placer) holders() map[string]string {
	out := map[string]string{}
	for key, u := range pl.byKey {
		out[key] = u.election.Leader()
	}
	return out
}

// paused is what operators paused, as the elections last saw their locks:
// the whole group (on the coordinator's Lease) and balanced components, by
// lock (see placement.AnnotationPaused).
func (pl *placer) paused() (bool, map[string]bool) {
	marked := func(e *election.Election) bool { return e.Annotations()[placement.AnnotationPaused] == "true" }
	out := map[string]bool{}
	for key, u := range pl.byKey {
		if marked(u.election) {
			out[key] = true
		}
	}
	return marked(pl.coordinator), out
}

// start makes the roster of this start, announces the replica, keeps
// announcing it, and campaigns for the coordinator until stop. A replica
// started again after a stop is a new member: started now, not shutting
// down.
func (pl *placer) start() error {
	d := pl.r.cfg.Defaults
	roster, closeRoster := pl.memory, func() {}
	if roster == nil {
		opts := []placement.LeaseRosterOption{placement.WithGroup(pl.group)}
		if owner, ok := podOwner(); ok {
			opts = append(opts, placement.WithOwner(owner))
		}
		lr, err := placement.NewLeaseRoster(pl.r.client.CoordinationV1(), pl.ns, d.LeaseDuration, opts...)
		if err != nil {
			return fmt.Errorf("tenure: placement: %w", err)
		}
		roster, closeRoster = lr, lr.Close
	}
	comps := map[string]placement.Component{}
	for key, u := range pl.byKey {
		name := u.comp.Name()
		comps[key] = placement.Component{Lock: u.lockImpl, Weight: pl.r.cfg.Components[name].Weight, Name: name}
	}
	coord, err := placement.NewCoordinator(placement.CoordinatorConfig{
		Roster:     roster,
		Components: comps,
		Holders:    pl.holders,
		Paused:     pl.paused,
		Interval:   d.RetryPeriod,
		PendingFor: d.LeaseDuration,
		Logger:     pl.r.log,
		Tracer:     pl.tracer,
		OnMove:     func(m placement.Move) { pl.moved(m, "asked to hand over to ", pl.metrics.moves) },
		OnWithdraw: func(m placement.Move) { pl.moved(m, "withdrew the request to hand over to ", pl.metrics.withdrawn) },
	})
	if err != nil {
		closeRoster()
		return fmt.Errorf("tenure: placement: %w", err)
	}
	pl.r.log.Info("placement: balanced: this replica's leaderships are spread over the replicas of its placement group (placement: none turns it off)",
		"placement_group", pl.group, "components", len(pl.units), "coordinator_lease", placement.CoordinatorLeaseName(pl.group))
	pl.mu.Lock()
	pl.roster, pl.close, pl.coord = roster, closeRoster, coord
	pl.member.Started, pl.member.ShuttingDown = time.Now(), false
	pl.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	pl.stopAnnounce = cancel
	ok := pl.announce(ctx)
	pl.wg.Go(func() {
		t := pl.r.clock.NewTicker(pl.every)
		defer t.Stop()
		// A failed announcement is tried again after half a retry period,
		// not a whole interval later: two intervals without a record let it
		// expire, and the coordinator then counts this replica's
		// leaderships as nobody's.
		var again <-chan time.Time
		for {
			if !ok {
				again = pl.r.clock.After(d.RetryPeriod / 2)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			case <-pl.kick:
			case <-again:
			}
			again = nil
			ok = pl.announce(ctx)
		}
	})
	if !pl.r.cfg.NeverLead {
		pl.wg.Go(func() {
			if err := pl.coordinator.Run(ctx); err != nil {
				pl.r.log.Error("placement coordinator election ended", "err", err)
			}
		})
	}
	return nil
}

// permissions are the API requests placement makes, if known: the
// coordinator election's, and those on this replica's member record and
// the group's.
func (pl *placer) permissions() []locks.Permission {
	if pl.r.client == nil {
		return nil
	}
	var out []locks.Permission
	if p, ok := pl.coordLock.(permissioned); ok && !pl.r.cfg.NeverLead { // a replica that never leads does not campaign
		out = p.Permissions()
	}
	const group = "coordination.k8s.io"
	name := placement.MemberLeaseName(pl.r.identity)
	for _, p := range []locks.Permission{
		{Verb: "create"}, {Verb: "list"}, {Verb: "watch"},
		{Verb: "patch", Name: name}, {Verb: "delete", Name: name},
	} {
		p.Group, p.Resource, p.Namespace = group, "leases", pl.ns
		out = append(out, p)
	}
	return out
}

// moved counts a move asked or withdrawn as coordinator, and records it
// as an Event on the component's lock if Events are on.
func (pl *placer) moved(m placement.Move, what string, counter metric.Int64Counter) {
	u, ok := pl.byKey[m.Component]
	if !ok {
		return
	}
	counter.Add(context.Background(), 1, metric.WithAttributes(attribute.String("tenure.election.name", u.comp.Name())))
	pl.r.events.record(lockObject(u.settings), "placement: "+m.From+" "+what+m.To)
}

// placerMetrics are placement's instruments: the moves this replica asked
// for as coordinator and withdrew, by component, and the weighted share of
// the balanced components it leads.
type placerMetrics struct {
	moves, withdrawn metric.Int64Counter
}

func (pl *placer) instruments(mp metric.MeterProvider) error {
	m := mp.Meter(election.ScopeName)
	var errs [3]error
	pl.metrics.moves, errs[0] = m.Int64Counter("tenure.placement.moves", metric.WithUnit("{move}"),
		metric.WithDescription("Moves this replica asked for as placement coordinator, by component."))
	pl.metrics.withdrawn, errs[1] = m.Int64Counter("tenure.placement.withdrawn", metric.WithUnit("{move}"),
		metric.WithDescription("Moves this replica withdrew as placement coordinator, their target gone, by component."))
	_, errs[2] = m.Int64ObservableGauge("tenure.placement.share", metric.WithUnit("{weight}"),
		metric.WithDescription("The weighted share of the balanced components this replica leads."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			share := 0
			for _, u := range pl.units {
				if u.election.IsLeader() {
					share += max(pl.r.cfg.Components[u.comp.Name()].Weight, 1)
				}
			}
			o.Observe(int64(share))
			return nil
		}))
	return errors.Join(errs[:]...)
}

// coordinate is the coordinator election's leader work: the current
// start's coordinator.
func (pl *placer) coordinate(ctx context.Context) {
	pl.mu.Lock()
	coord := pl.coord
	pl.mu.Unlock()
	coord.Run(ctx)
}

// campaigning tells the placer that u's campaign began or paused (a
// failure backoff), so that the member record says so soon: a leadership
// handed to a replica that does not campaign for it waits for a take-back.
func (pl *placer) campaigning() {
	select {
	case pl.kick <- struct{}{}:
	default:
	}
}

// announcement is the member record as it stands: the components whose
// election campaigns now, by lock.
func (pl *placer) announcement() placement.Member {
	pl.mu.Lock()
	m := pl.member
	pl.mu.Unlock()
	m.Components = nil
	for _, u := range pl.r.units {
		if !u.pausing() {
			m.Components = append(m.Components, lockKey(u.settings))
		}
	}
	return m
}

// announce writes the member record, logging a failure, and says whether
// it was written.
func (pl *placer) announce(ctx context.Context) bool {
	pl.announcing.Lock()
	defer pl.announcing.Unlock()
	m := pl.announcement()
	actx, cancel := context.WithTimeout(ctx, pl.r.cfg.Defaults.RetryPeriod*2)
	defer cancel()
	err := pl.currentRoster().Announce(actx, m)
	if err != nil && ctx.Err() == nil {
		pl.r.log.Warn("placement: cannot announce this replica", "err", err)
	}
	return err == nil
}

func (pl *placer) currentRoster() placement.Roster {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.roster
}

// handOff marks the replica as shutting down and asks for each leadership
// it holds to move where the placement sends it: the newest replicas.
// Each election then hands over as its work returns (see package
// election), instead of releasing the lock to whoever is first.
//
// It plans a RetryPeriod after the mark, so that replicas stopping
// together (a blue/green switch, a rollout with a full surge: SIGTERM
// reaches every old Pod at once) see each other's marks and plan alike:
// each sending its own leaderships where the others' do not go, once each.
// A replica that leads nothing, or sees no other member, does not wait.
func (pl *placer) handOff(ctx context.Context) {
	pl.announcing.Lock()
	pl.mu.Lock()
	pl.member.ShuttingDown = true
	pl.mu.Unlock()
	m := pl.announcement()
	roster := pl.currentRoster()
	err := roster.Announce(ctx, m)
	pl.announcing.Unlock()
	if err != nil {
		pl.r.log.Warn("placement: cannot announce that this replica is shutting down", "err", err)
	}
	if !slices.ContainsFunc(pl.units, func(u *unit) bool { return u.election.IsLeader() }) {
		return // nothing to hand over
	}
	if slices.ContainsFunc(roster.Members(), func(o placement.Member) bool { return o.Identity != m.Identity }) {
		t := pl.r.clock.NewTimer(pl.r.cfg.Defaults.RetryPeriod)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
		}
	}
	members := roster.Members()
	if i := slices.IndexFunc(members, func(o placement.Member) bool { return o.Identity == m.Identity }); i >= 0 {
		members[i] = m
	} else {
		members = append(members, m)
	}
	// The plan counts every leadership, as this replica last saw it, so
	// that its own go to the least loaded of the replicas that stay; the
	// others' paused ones stay where they are, as the coordinator keeps
	// them (its own are not: it stops, and hands them over).
	var ls []placement.Leadership
	holders := pl.holders()
	group, paused := pl.paused()
	for key, u := range pl.byKey {
		holder, own := holders[key], u.election.IsLeader()
		if own {
			holder = m.Identity
		}
		ls = append(ls, placement.Leadership{Component: key, Holder: holder, Weight: pl.r.cfg.Components[u.comp.Name()].Weight,
			Pinned: !own && (group || paused[key])})
	}
	var wg sync.WaitGroup
	for _, mv := range placement.Plan(members, ls) {
		if mv.From != m.Identity {
			continue
		}
		u := pl.byKey[mv.Component]
		wg.Go(func() {
			if _, err := placement.Request(ctx, u.lockImpl, mv.From, mv.To); err != nil {
				u.log.Info("placement: cannot ask for a hand-over before stopping; releasing instead", "to", mv.To, "err", err)
				return
			}
			u.log.Info("placement: stopping: handing over", "to", mv.To)
		})
	}
	wg.Wait()
}

// stop ends the announcements and the coordinator campaign, then deletes
// the member record.
func (pl *placer) stop(ctx context.Context) error {
	if pl.stopAnnounce == nil {
		return nil
	}
	pl.stopAnnounce()
	pl.stopAnnounce = nil
	pl.wg.Wait()
	pl.mu.Lock()
	roster, closeRoster := pl.roster, pl.close
	pl.mu.Unlock()
	err := roster.Leave(ctx, pl.r.identity)
	closeRoster()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// announceEvery is how often a replica writes its member record: twice a
// lease, the second a RetryPeriod before the record would expire, so that
// one failed write is made up for in time; at least every RetryPeriod.
func announceEvery(d components.Settings) time.Duration {
	return max((d.LeaseDuration-d.RetryPeriod)/2, d.RetryPeriod)
}
