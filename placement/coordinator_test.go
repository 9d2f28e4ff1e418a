package placement

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/locks"
)

// heldBy makes a memory lock held by holder.
func heldBy(t *testing.T, name, holder string) *locks.MemoryLock {
	l := locks.NewMemoryLock(name)
	_, err := l.Create(context.Background(), locks.Record{HolderIdentity: holder, LeaseDuration: 3 * time.Second, AcquireTime: t0, RenewTime: t0, LeaderTransitions: 1})
	require.NoError(t, err)
	return l
}

func preferred(t *testing.T, l locks.Lock) string {
	obs, err := l.Get(context.Background())
	require.NoError(t, err)
	return obs.Annotations[locks.PreferredHolderAnnotation]
}

func TestCoordinatorAsksEachMoveOnce(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, time.Minute)
	names := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, roster.Announce(context.Background(), Member{Identity: id, Components: names}))
	}
	comps := map[string]Component{}
	holders := map[string]string{}
	for _, n := range names {
		comps[n] = Component{Lock: heldBy(t, n, "a")}
		holders[n] = "a"
	}
	var moved []Move
	c, err := NewCoordinator(CoordinatorConfig{
		Roster: roster, Components: comps, Interval: time.Second, Clock: clk,
		Holders: func() map[string]string { return holders },
		OnMove:  func(m Move) { moved = append(moved, m) },
	})
	require.NoError(t, err)
	asked := c.Round(context.Background())
	require.Len(t, asked, 4, "6/0/0 to 2/2/2")
	for _, m := range asked {
		assert.Equal(t, m.To, preferred(t, comps[m.Component].Lock), "the request is on the lock")
	}
	assert.Equal(t, asked, moved)
	assert.Empty(t, c.Round(context.Background()), "the hand-overs are under way: nothing is asked again, nothing else moves")

	// One hand-over is done; another holder was replaced meanwhile by
	// someone the view does not know yet: nothing is asked of it.
	holders[asked[0].Component] = asked[0].To
	assert.Empty(t, c.Round(context.Background()))

	// A request given up on (PendingFor, ten Intervals) is asked again if
	// the plan still wants it; a lock whose holder changed under a stale
	// view is not asked (ErrStale).
	clk.Step(10 * time.Second)
	stale := asked[1].Component
	l := heldBy(t, stale, "b")
	comps[stale] = Component{Lock: l}
	c.cfg.Components = comps
	again := c.Round(context.Background())
	assert.Empty(t, preferred(t, l), "not asked of a lock its holder no longer holds")
	for _, m := range again {
		assert.NotEqual(t, stale, m.Component)
	}
}

func TestCoordinatorLeavesAStoppingReplicaToItself(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, time.Minute)
	names := []string{"c0", "c1"}
	require.NoError(t, roster.Announce(context.Background(), Member{Identity: "a", Components: names, ShuttingDown: true}))
	require.NoError(t, roster.Announce(context.Background(), Member{Identity: "b", Components: names}))
	comps := map[string]Component{}
	for _, n := range names {
		comps[n] = Component{Lock: heldBy(t, n, "a")}
	}
	c, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: comps, Interval: time.Second, Clock: clk,
		Holders: func() map[string]string { return map[string]string{"c0": "a", "c1": "a"} }})
	require.NoError(t, err)
	assert.Empty(t, c.Round(context.Background()), "a asks for its own moves as it stops")
}

func TestNewCoordinatorValidates(t *testing.T) {
	roster := NewMemoryRoster(nil, time.Minute)
	holders := func() map[string]string { return nil }
	for _, tc := range []struct {
		cfg  CoordinatorConfig
		want string
	}{
		{CoordinatorConfig{Holders: holders, Interval: time.Second}, "Roster is nil"},
		{CoordinatorConfig{Roster: roster, Interval: time.Second}, "Holders is nil"},
		{CoordinatorConfig{Roster: roster, Holders: holders}, "Interval 0s is not positive"},
		{CoordinatorConfig{Roster: roster, Holders: holders, Interval: time.Second, Components: map[string]Component{"x": {}}}, "component x has no lock"},
		{CoordinatorConfig{Roster: roster, Holders: holders, Interval: time.Second, Components: map[string]Component{"x": {Lock: locks.NewMemoryLock("x"), Weight: -1}}}, "negative weight"},
	} {
		_, err := NewCoordinator(tc.cfg)
		assert.ErrorContains(t, err, tc.want, fmt.Sprint(tc.cfg))
	}
}

func TestRequestNeedsALockWithAnnotations(t *testing.T) {
	_, err := Request(context.Background(), plainLock{heldBy(t, "x", "a")}, "a", "b")
	assert.ErrorContains(t, err, "keeps no annotations")
	asked, err := Request(context.Background(), heldBy(t, "y", "a"), "a", "a2")
	require.NoError(t, err)
	assert.True(t, asked)
}

// plainLock hides a lock's Annotate.
type plainLock struct{ l *locks.MemoryLock }

func (p plainLock) Get(ctx context.Context) (locks.Observed, error) { return p.l.Get(ctx) }
func (p plainLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	return p.l.Create(ctx, r)
}
func (p plainLock) Update(ctx context.Context, v string, r locks.Record) (locks.Observed, error) {
	return p.l.Update(ctx, v, r)
}
func (p plainLock) Describe() string { return p.l.Describe() }

// TestCoordinatorTakesOverTheLastOnesRequests: a coordinator's first round
// reads the requests already on the locks. One asks for a member that is
// gone: the plan sends that leadership elsewhere, so the request is
// redirected. Another asks for a member that is gone where the plan leaves
// the leadership with its holder: it is withdrawn. A third asks for a live
// member: it counts as under way, and nothing else is asked of it.
func TestCoordinatorTakesOverTheLastOnesRequests(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, time.Minute)
	names := []string{"c0", "c1", "c2", "c3"}
	for _, id := range []string{"a", "b"} {
		require.NoError(t, roster.Announce(ctx, Member{Identity: id, Components: names}))
	}
	holders := map[string]string{"c0": "a", "c1": "a", "c2": "a", "c3": "b"}
	comps := map[string]Component{}
	for _, n := range names {
		comps[n] = Component{Lock: heldBy(t, n, holders[n])}
	}
	ask := func(n, to string) {
		_, err := Request(ctx, comps[n].Lock, holders[n], to)
		require.NoError(t, err)
	}
	ask("c0", "b")    // under way: 3/1 becomes 2/2
	ask("c1", "gone") // the plan would leave c1 at a once c0 moves
	ask("c3", "gone") // c3 stays at b
	c, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: comps, Interval: time.Second, Clock: clk, PendingFor: 2 * time.Minute,
		Holders: func() map[string]string { return holders }})
	require.NoError(t, err)
	assert.Empty(t, c.Round(ctx), "c0's hand-over is under way: 2/2")
	assert.Equal(t, "b", preferred(t, comps["c0"].Lock))
	assert.Empty(t, preferred(t, comps["c1"].Lock), "the move to a member that is gone is withdrawn")
	assert.Empty(t, preferred(t, comps["c3"].Lock), "the move to a member that is gone is withdrawn")

	// Now b goes while a request to it is under way; a new member d
	// takes its place: the request is redirected to d.
	clk.Step(30 * time.Second)
	require.NoError(t, roster.Announce(ctx, Member{Identity: "a", Components: names}))
	require.NoError(t, roster.Announce(ctx, Member{Identity: "d", Components: names}))
	clk.Step(31 * time.Second) // b's record expires
	require.NoError(t, roster.Announce(ctx, Member{Identity: "a", Components: names}))
	require.NoError(t, roster.Announce(ctx, Member{Identity: "d", Components: names}))
	holders["c3"] = "" // b's lock expired: left to the election
	moves := c.Round(ctx)
	assert.Contains(t, moves, Move{Component: "c0", From: "a", To: "d"}, "redirected: %v", moves)
	assert.Equal(t, "d", preferred(t, comps["c0"].Lock))
}

// TestCoordinatorWaitsWhileLeadershipsAreTaken: replicas starting
// together take their locks over several rounds; a round in which a
// leaderless component gained a holder asks for nothing, so that the plan
// does not move leaderships that the next acquisitions would move back. A
// hand-over the coordinator asked for passes through no holder too, and
// does not hold the next round up.
func TestCoordinatorWaitsWhileLeadershipsAreTaken(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, time.Minute)
	names := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	for _, id := range []string{"a", "b"} {
		require.NoError(t, roster.Announce(context.Background(), Member{Identity: id, Components: names}))
	}
	comps := map[string]Component{}
	holders := map[string]string{}
	for _, n := range names {
		comps[n] = Component{Lock: heldBy(t, n, "a")}
	}
	c, err := NewCoordinator(CoordinatorConfig{
		Roster: roster, Components: comps, Interval: time.Second, Clock: clk,
		Holders: func() map[string]string { return maps.Clone(holders) },
	})
	require.NoError(t, err)
	round := func() []Move {
		clk.Step(time.Second)
		return c.Round(context.Background())
	}
	assert.Empty(t, round(), "nothing led yet")
	for _, n := range names[:4] {
		holders[n] = "a"
	}
	assert.Empty(t, round(), "a took four locks this round: more may follow")
	moves := round()
	require.Len(t, moves, 2, "nothing taken since the last round: 4/0 to 2/2")

	// The hand-overs pass through no holder, then b holds them; meanwhile
	// a third replica joins: the round plans for it.
	for _, m := range moves {
		holders[m.Component] = ""
	}
	round() // may ask more of a: its own leaderships are all it counts
	for _, m := range moves {
		holders[m.Component] = m.To
		comps[m.Component] = Component{Lock: heldBy(t, m.Component, m.To)}
	}
	c.cfg.Components = comps
	require.NoError(t, roster.Announce(context.Background(), Member{Identity: "c", Components: names}))
	assert.NotEmpty(t, round(), "the hand-overs that ended are not leaderships being taken: the round moves some to c")
}

// TestPausedPlacementMovesNothing: a component an operator paused is not
// moved, nor any while the whole group is paused; resumed, the plan goes
// on.
func TestPausedPlacementMovesNothing(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	roster := NewMemoryRoster(clk, time.Minute)
	names := []string{"c0", "c1", "c2", "c3"}
	for _, id := range []string{"a", "b"} {
		require.NoError(t, roster.Announce(context.Background(), Member{Identity: id, Components: names}))
	}
	comps := map[string]Component{}
	holders := map[string]string{}
	for _, n := range names {
		comps[n] = Component{Lock: heldBy(t, n, "a")}
		holders[n] = "a"
	}
	group, paused := true, map[string]bool{}
	c, err := NewCoordinator(CoordinatorConfig{
		Roster: roster, Components: comps, Interval: time.Second, Clock: clk,
		Holders: func() map[string]string { return holders },
		Paused:  func() (bool, map[string]bool) { return group, paused },
	})
	require.NoError(t, err)
	assert.Empty(t, c.Round(context.Background()), "the group is paused: 4/0 stays")
	for _, n := range names {
		assert.Empty(t, preferred(t, comps[n].Lock))
	}

	group = false
	paused = map[string]bool{"c0": true, "c1": true, "c2": true}
	asked := c.Round(context.Background())
	require.Len(t, asked, 1, "only c3 may move: 3/1")
	assert.Equal(t, "c3", asked[0].Component)

	paused = nil
	clk.Step(time.Second)
	asked = c.Round(context.Background())
	require.Len(t, asked, 1, "resumed: one more move makes 2/2")
	assert.NotEqual(t, "c3", asked[0].Component)
}
