package placement

// From the second placement review: balance is judged pair by pair, among members that
// share a component.

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPlanBalancesThroughAChain: unit weights, three
// eligible members of one revision: a runs x1..x3, b runs x1..x3 and
// y1, y2, c runs y1, y2, z1. a leads x1..x3 (3), b leads y1, y2 (2), c
// leads z1 (1). No pair that shares a component differs by more than 1,
// so Plan moves nothing and the spread stays 3−1 = 2, though y1 b→c then
// x1 a→b makes 2/2/2 (every member runs what it would lead). Each
// balancing move only looks at a pair; a chain of two moves, each keeping
// its pair's spread, is never tried.
func TestPlanBalancesThroughAChain(t *testing.T) {
	members := []Member{
		{Identity: "a", Components: []string{"x1", "x2", "x3"}, Started: t0},
		{Identity: "b", Components: []string{"x1", "x2", "x3", "y1", "y2"}, Started: t0},
		{Identity: "c", Components: []string{"y1", "y2", "z1"}, Started: t0},
	}
	ls := []Leadership{
		{Component: "x1", Holder: "a"}, {Component: "x2", Holder: "a"}, {Component: "x3", Holder: "a"},
		{Component: "y1", Holder: "b"}, {Component: "y2", Holder: "b"},
		{Component: "z1", Holder: "c"},
	}
	moves := Plan(members, ls)
	load := map[string]int{"a": 3, "b": 2, "c": 1}
	for _, m := range moves {
		load[m.From]--
		load[m.To]++
	}
	assert.Equal(t, map[string]int{"a": 2, "b": 2, "c": 2}, load, "moves %v", moves)
}
