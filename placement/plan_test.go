package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func comps(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%02d", i)
	}
	return out
}

// world is a set of members and who leads what, moved as Plan says (every
// move a hand-over that succeeds).
type world struct {
	members []Member
	holders map[string]string
	weights map[string]int
	moved   map[string]int // moves per component
}

func newWorld(ids ...string) *world {
	w := &world{holders: map[string]string{}, weights: map[string]int{}, moved: map[string]int{}}
	for i, id := range ids {
		w.join(id, "", t0.Add(time.Duration(i)*time.Second))
	}
	return w
}

func (w *world) join(id, rev string, started time.Time) {
	w.members = append(w.members, Member{Identity: id, Components: comps(12), Started: started, Revision: rev})
}

func (w *world) leave(id string) {
	for i, m := range w.members {
		if m.Identity == id {
			w.members = append(w.members[:i], w.members[i+1:]...)
			break
		}
	}
	// Its leaderships' elections go on: a hand-over happened before, or
	// somebody takes them over (the first remaining member, here).
	for c, h := range w.holders {
		if h == id {
			w.holders[c] = w.members[0].Identity
			w.moved[c]++
		}
	}
}

func (w *world) set(id string, f func(*Member)) {
	for i := range w.members {
		if w.members[i].Identity == id {
			f(&w.members[i])
		}
	}
}

func (w *world) leaderships() []Leadership {
	var out []Leadership
	for _, c := range comps(12) {
		out = append(out, Leadership{Component: c, Holder: w.holders[c], Weight: w.weights[c]})
	}
	return out
}

// settle applies plans until there is nothing to move, and returns the
// number of rounds it took.
func (w *world) settle(t *testing.T) int {
	t.Helper()
	for round := 0; round < 20; round++ {
		moves := Plan(w.members, w.leaderships())
		if len(moves) == 0 {
			return round
		}
		for _, m := range moves {
			require.Equal(t, w.holders[m.Component], m.From)
			require.NotEqual(t, m.From, m.To)
			w.holders[m.Component] = m.To
			w.moved[m.Component]++
		}
	}
	t.Fatal("the plan never settles")
	return 0
}

func (w *world) shares() map[string]int {
	s := map[string]int{}
	for _, m := range w.members {
		s[m.Identity] = 0
	}
	for c, h := range w.holders {
		s[h] += max(w.weights[c], 1)
	}
	return s
}

func spread(s map[string]int) int {
	lo, hi := -1, 0
	for _, n := range s {
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi - lo
}

func TestPlanSpreadsWhatOneReplicaLeads(t *testing.T) {
	w := newWorld("a", "b", "c")
	for _, c := range comps(12) {
		w.holders[c] = "a"
	}
	assert.Equal(t, 1, w.settle(t), "one plan is enough")
	assert.Equal(t, map[string]int{"a": 4, "b": 4, "c": 4}, w.shares())
	total := 0
	for _, n := range w.moved {
		assert.LessOrEqual(t, n, 1)
		total += n
	}
	assert.Equal(t, 8, total, "the fewest moves: 12/0/0 to 4/4/4")
}

func TestPlanLeavesAnEvenSpreadAlone(t *testing.T) {
	w := newWorld("a", "b", "c")
	for i, c := range comps(12) {
		w.holders[c] = []string{"a", "b", "c"}[i%3]
	}
	assert.Empty(t, Plan(w.members, w.leaderships()))
	w.holders["c00"] = "b" // 3/5/4: within... no: 5 − 3 = 2 > 1
	assert.Len(t, Plan(w.members, w.leaderships()), 1)
	w.holders["c00"] = "a"
	delete(w.holders, "c11") // 11 components: 4/4/3
	assert.Empty(t, Plan(w.members, w.leaderships()), "a spread of one makes no move")
}

func TestPlanFollowsLeavesAndReturns(t *testing.T) {
	w := newWorld("a", "b", "c")
	for _, c := range comps(12) {
		w.holders[c] = "a"
	}
	w.settle(t)
	w.set("c", func(m *Member) { m.ShuttingDown = true })
	w.settle(t)
	assert.Equal(t, map[string]int{"a": 6, "b": 6, "c": 0}, w.shares(), "c's leaderships moved before it stopped")
	w.leave("c")
	assert.Zero(t, w.settle(t))
	w.join("c", "", t0.Add(time.Minute))
	w.settle(t)
	assert.Equal(t, map[string]int{"a": 4, "b": 4, "c": 4}, w.shares())
}

func TestPlanMovesNothingToACordonedReplica(t *testing.T) {
	w := newWorld("a", "b", "c")
	for _, c := range comps(12) {
		w.holders[c] = "a"
	}
	w.set("b", func(m *Member) { m.Cordoned = true })
	w.settle(t)
	assert.Equal(t, map[string]int{"a": 6, "b": 0, "c": 6}, w.shares())
	w.set("a", func(m *Member) { m.Cordoned = true })
	w.settle(t)
	assert.Equal(t, map[string]int{"a": 0, "b": 0, "c": 12}, w.shares(), "drained")
	w.set("c", func(m *Member) { m.Cordoned = true })
	assert.Empty(t, Plan(w.members, w.leaderships()), "nowhere to go: the leaderships stay")
}

func TestPlanOnlyGivesAComponentToAReplicaThatRunsIt(t *testing.T) {
	w := newWorld("a", "b", "c")
	w.set("c", func(m *Member) { m.Components = []string{"c00", "c01"} })
	for _, c := range comps(12) {
		w.holders[c] = "a"
	}
	w.settle(t)
	s := w.shares()
	assert.Equal(t, 2, s["c"], "c runs two components")
	assert.Equal(t, 5, s["a"])
	assert.Equal(t, 5, s["b"])
	for c, h := range w.holders {
		if h == "c" {
			assert.Contains(t, []string{"c00", "c01"}, c)
		}
	}
}

func TestPlanSpreadsByWeight(t *testing.T) {
	w := newWorld("a", "b")
	for _, c := range comps(12) {
		w.holders[c] = "a"
	}
	w.weights["c00"] = 10 // as much as the other eleven together, nearly
	w.settle(t)
	s := w.shares()
	assert.LessOrEqual(t, spread(s), 10, "within the heaviest component's weight")
	assert.Equal(t, map[string]int{"a": 10, "b": 11}, map[string]int{"a": min(s["a"], s["b"]), "b": max(s["a"], s["b"])})
}

func TestPlanSendsLeavingLeadershipsToTheNewest(t *testing.T) {
	w := newWorld("a", "b", "c")
	for i, c := range comps(12) {
		w.holders[c] = []string{"a", "b", "c"}[i%3]
	}
	w.join("d", "", t0.Add(time.Hour)) // the newest
	w.settle(t)
	s := w.shares()
	assert.Equal(t, 3, s["d"])
	w.set("a", func(m *Member) { m.ShuttingDown = true })
	moves := Plan(w.members, w.leaderships())
	require.Len(t, moves, 3)
	assert.Equal(t, "d", moves[0].To, "the first leadership leaving goes to the newest of the least loaded")
}

// TestPlanMovesEachLeadershipOnceInARollingUpdate: a Deployment's rolling
// update with maxSurge 1 starts a replica of the new revision, then stops
// an old one, three times. Each leadership moves once, and the new
// replicas end 4/4/4.
func TestPlanMovesEachLeadershipOnceInARollingUpdate(t *testing.T) {
	w := &world{holders: map[string]string{}, weights: map[string]int{}, moved: map[string]int{}}
	for i, id := range []string{"a", "b", "c"} {
		w.join(id, "v1", t0.Add(time.Duration(i)*time.Second))
	}
	for i, c := range comps(12) {
		w.holders[c] = []string{"a", "b", "c"}[i%3]
	}
	require.Zero(t, w.settle(t))
	for i, old := range []string{"a", "b", "c"} {
		w.join(old+"2", "v2", t0.Add(time.Hour+time.Duration(i)*time.Minute))
		w.settle(t)
		w.set(old, func(m *Member) { m.ShuttingDown = true })
		w.settle(t)
		w.leave(old)
		w.settle(t)
	}
	assert.Equal(t, map[string]int{"a2": 4, "b2": 4, "c2": 4}, w.shares())
	for _, c := range comps(12) {
		assert.Equal(t, 1, w.moved[c], "%s moved once", c)
	}
}

// TestPlanIsDeterministic: the same members and leaderships in any order
// give the same moves, so that coordinators agree.
func TestPlanIsDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var members []Member
		for i := range 2 + r.IntN(4) {
			m := Member{Identity: fmt.Sprintf("m%d", i), Started: t0.Add(time.Duration(r.IntN(5)) * time.Second),
				Components: comps(12)[:4+r.IntN(9)], Revision: []string{"", "v1", "v2"}[r.IntN(3)]}
			m.Cordoned = r.IntN(6) == 0
			m.ShuttingDown = r.IntN(6) == 0
			members = append(members, m)
		}
		var ls []Leadership
		for _, c := range comps(12) {
			ls = append(ls, Leadership{Component: c, Weight: r.IntN(3), Holder: fmt.Sprintf("m%d", r.IntN(len(members)+1))})
		}
		want := Plan(members, ls)
		r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		r.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
		assert.Equal(t, want, Plan(members, ls))
		for _, m := range want {
			var to Member
			for _, mm := range members {
				if mm.Identity == m.To {
					to = mm
				}
			}
			assert.True(t, to.eligible() && to.runs(m.Component), "moved %s to %s, who may not lead it", m.Component, m.To)
		}
	}
}

// TestPinnedLeadershipsStay: a pinned leadership (its placement paused)
// stays with its holder, even one that is cordoned, and the others even
// the spread out around it.
func TestPinnedLeadershipsStay(t *testing.T) {
	comps := []string{"c0", "c1", "c2", "c3"}
	members := []Member{{Identity: "a", Components: comps}, {Identity: "b", Components: comps}}
	var ls []Leadership
	for _, c := range comps {
		ls = append(ls, Leadership{Component: c, Holder: "a", Pinned: c != "c3"})
	}
	assert.Equal(t, []Move{{Component: "c3", From: "a", To: "b"}}, Plan(members, ls), "only the unpinned one moves: 3/1")

	members[0].Cordoned = true
	assert.Equal(t, []Move{{Component: "c3", From: "a", To: "b"}}, Plan(members, ls), "pinned ones stay with a cordoned holder")
}

// TestPinnedLeadershipsCountForTheirHolders (tenth review): a pinned
// leadership stays with a holder that does not announce its component
// (in a failure backoff, or a stale record) and counts for it: 2/2 for
// real, nothing moves onto a; before, it counted for nobody, c1 moved to
// a (3/1), and back once a announced c0 again.
func TestPinnedLeadershipsCountForTheirHolders(t *testing.T) {
	a := Member{Identity: "a", Components: []string{"c1", "c2"}, Started: t0}
	b := Member{Identity: "b", Components: []string{"c0", "c1", "c2"}, Started: t0}
	ls := []Leadership{
		{Component: "c0", Weight: 2, Holder: "a", Pinned: true},
		{Component: "c1", Holder: "b"},
		{Component: "c2", Holder: "b"},
	}
	assert.Empty(t, Plan([]Member{a, b}, ls), "2/2 for real")
}
