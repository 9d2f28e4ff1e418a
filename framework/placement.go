package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// coordinatorLock is the name of the coordinator election's lock, in the
// namespace of the program's locks.
const coordinatorLock = "tenure-placement"

// placer spreads the leaderships of this replica's balanced components
// (see package placement): it announces the replica in its member record,
// campaigns for the coordinator, and on stop asks for this replica's
// leaderships to move before they are stopped.
type placer struct {
	r           *Runner
	roster      placement.Roster
	close       func() // stops the roster's watch
	coordinator *election.Election
	units       []*unit // the balanced components
	every       time.Duration

	mu     sync.Mutex
	member placement.Member

	stopAnnounce context.CancelFunc
	wg           sync.WaitGroup
}

// newPlacer makes the placer of r's balanced components, nil if there are
// none; roster is the app's, if it gave one.
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
	pl := &placer{r: r, units: units, every: max(d.LeaseDuration/3, d.RetryPeriod), close: func() {}}
	for _, u := range r.units {
		pl.member.Components = append(pl.member.Components, u.comp.Name())
	}
	pl.member.Identity, pl.member.Started = r.identity, time.Now()
	pl.member.Revision, pl.member.Zone, pl.member.Cordoned = r.cfg.Revision, r.cfg.Zone, r.cfg.NeverLead

	var coordLock locks.Lock
	switch {
	case r.client != nil:
		var opts []placement.LeaseRosterOption
		if owner, ok := podOwner(); ok {
			opts = append(opts, placement.WithOwner(owner))
		}
		lr, err := placement.NewLeaseRoster(r.client.CoordinationV1(), ns, d.LeaseDuration, opts...)
		if err != nil {
			return nil, err
		}
		pl.roster, pl.close = lr, lr.Close
		coordLock, err = locks.NewLeaseLock(r.client.CoordinationV1(), ns, coordinatorLock, locks.WithIdentity(r.identity))
		if err != nil {
			lr.Close()
			return nil, err
		}
	default:
		pl.roster = placement.Roster(p.Roster)
		if p.Roster == nil {
			pl.roster = placement.NewMemoryRoster(nil, d.LeaseDuration)
		}
		coordLock = space.Lock(ns + "/" + coordinatorLock)
	}
	comps := map[string]placement.Component{}
	for _, u := range units {
		comps[u.comp.Name()] = placement.Component{Lock: u.lockImpl, Weight: r.cfg.Components[u.comp.Name()].Weight}
	}
	coord, err := placement.NewCoordinator(placement.CoordinatorConfig{
		Roster:     pl.roster,
		Components: comps,
		Holders:    pl.holders,
		Interval:   d.RetryPeriod,
		PendingFor: d.LeaseDuration,
		Logger:     r.log,
		Tracer:     p.Telemetry.tracerProvider.Tracer(election.ScopeName),
	})
	if err != nil {
		pl.close()
		return nil, err
	}
	pl.coordinator, err = election.New(election.Config{
		Lock:             coordLock,
		Name:             coordinatorLock,
		Identity:         r.identity,
		LeaseDuration:    d.LeaseDuration,
		RenewDeadline:    d.RenewDeadline,
		RetryPeriod:      d.RetryPeriod,
		RenewInterval:    d.RenewInterval,
		OnStartedLeading: coord.Run,
		TracerProvider:   p.Telemetry.tracerProvider,
		MeterProvider:    p.Telemetry.meterProvider,
		Logger:           r.log.With("component", coordinatorLock),
	})
	if err != nil {
		pl.close()
		return nil, fmt.Errorf("placement coordinator: %w", err)
	}
	return pl, nil
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
// it.
func (pl *placer) holders() map[string]string {
	out := map[string]string{}
	for _, u := range pl.units {
		out[u.comp.Name()] = u.election.Leader()
	}
	return out
}

// start announces the replica, keeps announcing it, and campaigns for the
// coordinator until stop.
func (pl *placer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	pl.stopAnnounce = cancel
	pl.announce(ctx)
	pl.wg.Go(func() {
		t := pl.r.clock.NewTicker(pl.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				pl.announce(ctx)
			}
		}
	})
	if !pl.r.cfg.NeverLead {
		pl.wg.Go(func() {
			if err := pl.coordinator.Run(ctx); err != nil {
				pl.r.log.Error("placement coordinator election ended", "err", err)
			}
		})
	}
}

// announce writes the member record, logging a failure.
func (pl *placer) announce(ctx context.Context) {
	pl.mu.Lock()
	m := pl.member
	pl.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, pl.r.cfg.Defaults.RetryPeriod*2)
	defer cancel()
	if err := pl.roster.Announce(actx, m); err != nil && ctx.Err() == nil {
		pl.r.log.Warn("placement: cannot announce this replica", "err", err)
	}
}

// handOff marks the replica as shutting down and asks for each leadership
// it holds to move where the placement sends it: the newest replicas.
// Each election then hands over as its work returns (see package
// election), instead of releasing the lock to whoever is first.
func (pl *placer) handOff(ctx context.Context) {
	pl.mu.Lock()
	pl.member.ShuttingDown = true
	m := pl.member
	pl.mu.Unlock()
	if err := pl.roster.Announce(ctx, m); err != nil {
		pl.r.log.Warn("placement: cannot announce that this replica is shutting down", "err", err)
	}
	members := pl.roster.Members()
	if i := slices.IndexFunc(members, func(o placement.Member) bool { return o.Identity == m.Identity }); i >= 0 {
		members[i] = m
	} else {
		members = append(members, m)
	}
	// The plan counts every leadership, as this replica last saw it, so
	// that its own go to the least loaded of the replicas that stay.
	var ls []placement.Leadership
	byName := map[string]*unit{}
	holders := pl.holders()
	for _, u := range pl.units {
		name := u.comp.Name()
		byName[name] = u
		holder := holders[name]
		if u.election.IsLeader() {
			holder = m.Identity
		}
		ls = append(ls, placement.Leadership{Component: name, Holder: holder, Weight: pl.r.cfg.Components[name].Weight})
	}
	var wg sync.WaitGroup
	for _, mv := range placement.Plan(members, ls) {
		if mv.From != m.Identity {
			continue
		}
		u := byName[mv.Component]
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
	pl.wg.Wait()
	err := pl.roster.Leave(ctx, pl.r.identity)
	pl.close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
