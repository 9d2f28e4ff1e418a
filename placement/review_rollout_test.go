package placement

// From the second placement review: rolling updates where every new replica is up
// before old ones stop, and old replicas stop together.

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestOldReplicasStoppingTogetherMoveEachLeadershipOnce: a Deployment
// with maxSurge 100% (or a blue/green switch) starts every new replica
// before any old one stops, then the old replicas get SIGTERM at the same
// moment. Each old replica's handOff plans in its own view: if each saw
// only itself leaving, all three would send their leaderships to the same
// v2 replicas, least loaded and newest first in a view where those lead
// nothing (c2, b2, a2, c2 each: 6/3/3), and the coordinator would then
// balance to 4/4/4, moving two leaderships a second time. So a stopping
// replica waits for the others' marks before it plans (see the framework's
// placer.handOff): in views that agree, the plans agree, and each
// leadership moves once. This test checks Plan's side of it: each old
// replica plans in a view where all three are shutting down, and only its
// own moves are made.
func TestOldReplicasStoppingTogetherMoveEachLeadershipOnce(t *testing.T) {
	w := &world{holders: map[string]string{}, weights: map[string]int{}, moved: map[string]int{}}
	for i, id := range []string{"a", "b", "c"} {
		w.join(id, "v1", t0.Add(time.Duration(i)*time.Second))
	}
	for i, c := range comps(12) {
		w.holders[c] = []string{"a", "b", "c"}[i%3]
	}
	for i, id := range []string{"a2", "b2", "c2"} {
		w.join(id, "v2", t0.Add(time.Hour+time.Duration(i)*time.Minute))
	}
	if n := w.settle(t); n != 0 {
		t.Fatalf("moves while rolling out")
	}
	view := slices.Clone(w.members)
	for i := range view {
		if view[i].Revision == "v1" {
			view[i].ShuttingDown = true
		}
	}
	var all []Move
	for _, old := range []string{"a", "b", "c"} {
		for _, m := range Plan(view, w.leaderships()) {
			if m.From == old {
				all = append(all, m)
			}
		}
	}
	for _, m := range all {
		w.holders[m.Component] = m.To
		w.moved[m.Component]++
	}
	t.Logf("after the hand-overs: %v", w.shares())
	for _, old := range []string{"a", "b", "c"} {
		w.leave(old)
	}
	w.settle(t)
	assert.Equal(t, map[string]int{"a2": 4, "b2": 4, "c2": 4}, w.shares())
	for _, c := range comps(12) {
		assert.LessOrEqual(t, w.moved[c], 1, "%s moved %d times in one rolling update", c, w.moved[c])
	}
}
