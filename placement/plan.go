package placement

import (
	"cmp"
	"errors"
	"slices"
	"time"
)

// Member is a replica as placement sees it: what it announces in its
// member record, and whether that record is live.
type Member struct {
	// Identity is the replica's identity in every election.
	Identity string
	// Components are the components the replica campaigns for, by the key
	// the coordinator places them under (the framework: their locks).
	Components []string
	// Started is when the replica started; Revision the version of its
	// program, where known (a Deployment's pod-template-hash).
	Started  time.Time
	Revision string
	// Zone is the replica's topology zone, where known.
	Zone string
	// Cordoned: the replica is never chosen, and what it leads moves
	// away (an operator's cordon, or a replica configured never to lead).
	Cordoned bool
	// ShuttingDown: the replica is stopping; what it leads moves away.
	ShuttingDown bool
}

// eligible says whether m may be given leaderships.
func (m Member) eligible() bool { return !m.Cordoned && !m.ShuttingDown }

// runs says whether m campaigns for component.
func (m Member) runs(component string) bool { return slices.Contains(m.Components, component) }

// canLead says whether m may be given component's leadership.
func (m Member) canLead(component string) bool { return m.eligible() && m.runs(component) }

// Leadership is one component's election as placement sees it.
type Leadership struct {
	// Component is the component's name.
	Component string
	// Weight is the component's share of the work (1 if zero).
	Weight int
	// Holder is the lock's holder ("" if none, or unknown).
	Holder string
	// Pending is the member the holder was asked to hand over to, while
	// that hand-over may still be under way ("" if none): the plan counts
	// the leadership as that member's, so that it does not ask for other
	// moves meanwhile that the hand-over would undo.
	Pending string
	// Pinned: the leadership stays with its holder (an operator paused
	// its placement); the plan evens the spread out with the others.
	Pinned bool
}

func (l Leadership) weight() int { return max(l.Weight, 1) }

// Move asks the holder of a component's lock to hand it over.
type Move struct {
	Component string
	From, To  string
}

// Plan is the moves that spread the leaderships over the members:
// deterministic for the same input, in any order, so that a coordinator
// that takes over computes what the last one did.
//
//   - A leadership held by a member that is shutting down or cordoned, or
//     that no longer runs the component, moves to an eligible member that
//     runs it: one of the newest revision if any runs it, the least
//     loaded one, the newest first among equals (newest revision, then
//     latest start, then identity). A revision is as new as the latest
//     start of a member running it.
//   - Then, unless a rollout is under way (eligible members of more than
//     one known revision), while a member leads more than another that
//     runs one of its components, by more than that component's weight,
//     that component moves. Each move lowers the spread, so nothing moves
//     back and forth, and a spread within one component's weight (4/4/4,
//     or 5/4/4 with 13) makes no move. Members that share no component
//     are balanced through members that share one with each: a chain of
//     moves that changes only its ends' loads. During a rollout only leaderships
//     that must move do, and they go to the new revision: a rolling update
//     that starts each new replica before it stops an old one (a
//     Deployment's maxSurge) moves each leadership once.
//
// Members that neither run nor hold any of the leaderships (another
// program's) are left out, and the records of an identity listed twice
// are merged the cautious way (see uniqueMembers). Leaderships without a
// holder, or held by someone who is not a member
// (a client-go candidate, or a replica whose member record expired), are
// left to their elections and count for nobody.
func Plan(members []Member, leaderships []Leadership) []Move {
	members = relevant(uniqueMembers(members), leaderships)
	byID := map[string]*Member{}
	for i := range members {
		byID[members[i].Identity] = &members[i]
	}
	order := newestFirst(members)
	load := map[string]int{}
	for _, m := range members {
		load[m.Identity] = 0
	}
	ls := slices.Clone(leaderships)
	slices.SortFunc(ls, func(a, b Leadership) int {
		return cmp.Or(cmp.Compare(b.weight(), a.weight()), cmp.Compare(a.Component, b.Component))
	})
	pinned := map[string]bool{}
	for _, l := range ls {
		pinned[l.Component] = l.Pinned
	}
	assigned := map[string]string{} // component → member that leads it in the plan
	var leaving []Leadership
	effective := map[string]string{} // component → its holder once a pending hand-over is done
	for _, l := range ls {
		holder := l.Holder
		if p, ok := byID[l.Pending]; ok && byID[holder] != nil && p.canLead(l.Component) {
			holder = l.Pending
		}
		effective[l.Component] = holder
		m, ok := byID[holder]
		if !ok {
			continue
		}
		if m.canLead(l.Component) || pinned[l.Component] { // a pinned one stays, and counts for its holder
			assigned[l.Component] = holder
			load[holder] += l.weight()
			continue
		}
		leaving = append(leaving, l)
	}
	// candidates are the eligible members that run c, newest first.
	cands := map[string][]string{}
	candidates := func(c string) []string {
		if out, ok := cands[c]; ok {
			return out
		}
		var out []string
		if pinned[c] {
			return nil // it goes nowhere
		}
		for _, id := range order {
			if m := byID[id]; m.canLead(c) {
				out = append(out, id)
			}
		}
		cands[c] = out
		return out
	}
	newest := newestRevision(members, order)
	for _, l := range leaving {
		ids := candidates(l.Component)
		if fresh := ofRevision(ids, byID, newest); len(fresh) > 0 {
			ids = fresh
		}
		to := leastLoaded(ids, load)
		if to == "" {
			continue // nobody else may lead it: it stays
		}
		assigned[l.Component] = to
		load[to] += l.weight()
	}
	if rollingOut(members) {
		return movesOf(ls, assigned, effective)
	}
	// Balance, one move at a time, each lowering the spread of a pair;
	// where no single move does, a chain of moves between members that
	// share no component, through members that share one with each.
	for range len(ls) * len(members) {
		if c, to, ok := bestMove(ls, assigned, load, candidates, order); ok {
			w := weightOf(ls, c)
			load[assigned[c]] -= w
			load[to] += w
			assigned[c] = to
			continue
		}
		chain, ok := bestChain(ls, assigned, load, candidates, order)
		if !ok {
			break
		}
		w := weightOf(ls, chain[0].Component)
		load[chain[0].From] -= w
		load[chain[len(chain)-1].To] += w
		for _, m := range chain {
			assigned[m.Component] = m.To
		}
	}
	undoSwaps(ls, assigned, effective)
	return movesOf(ls, assigned, effective)
}

// undoSwaps takes back pairs of moves that cancel: one component of a
// weight from u to v and another of that weight from v to u leave both
// loads as they were, at the cost of two hand-overs. Moves are judged
// against where each leadership is, or is being handed to (effective).
func undoSwaps(ls []Leadership, assigned, effective map[string]string) {
	for _, a := range ls {
		from, to := effective[a.Component], assigned[a.Component]
		if from == to || from == "" || to == "" {
			continue
		}
		for _, b := range ls {
			if b.Component == a.Component || b.weight() != a.weight() {
				continue
			}
			if effective[b.Component] == to && assigned[b.Component] == from {
				assigned[a.Component], assigned[b.Component] = from, to
				break
			}
		}
	}
}

// bestChain finds a chain of moves of components of one weight w, each
// from the member that leads it in the plan to one that runs it, from the
// most loaded member that has one to the least loaded member it reaches
// that leads less by more than w: each member in between gives one and
// gets one, so only the ends' loads change, as with a single move, and
// their spread falls. The shortest such chain wins, found breadth first in
// ls's and order's order.
func bestChain(ls []Leadership, assigned map[string]string, load map[string]int, candidates func(string) []string, order []string) ([]Move, bool) {
	least := 0
	for i, id := range order {
		if i == 0 || load[id] < least {
			least = load[id]
		}
	}
	byLoad := slices.Clone(order)
	slices.SortStableFunc(byLoad, func(a, b string) int { return cmp.Compare(load[b], load[a]) })
	var weights []int
	for _, l := range ls { // heaviest first
		if !slices.Contains(weights, l.weight()) {
			weights = append(weights, l.weight())
		}
	}
	for _, w := range weights {
		led := map[string][]string{} // member → the components of weight w it leads in the plan, in ls's order
		for _, l := range ls {
			if u, ok := assigned[l.Component]; ok && l.weight() == w {
				led[u] = append(led[u], l.Component)
			}
		}
		for _, src := range byLoad {
			if load[src]-least <= w {
				break // nobody leads little enough for a chain from here, or from anyone after
			}
			via := map[string]Move{src: {}} // member → the move that reached it
			queue := []string{src}
			best := ""
			for len(queue) > 0 {
				u := queue[0]
				queue = queue[1:]
				for _, c := range led[u] {
					for _, v := range candidates(c) {
						if _, seen := via[v]; seen {
							continue
						}
						via[v] = Move{Component: c, From: u, To: v}
						queue = append(queue, v)
						if load[src]-load[v] > w && (best == "" || load[v] < load[best]) {
							best = v
						}
					}
				}
			}
			if best == "" {
				continue
			}
			var chain []Move
			for v := best; v != src; v = via[v].From {
				chain = append(chain, via[v])
			}
			slices.Reverse(chain)
			return chain, true
		}
	}
	return nil, false
}

// relevant is the members that run one of the leaderships' components,
// or hold one: another program's replicas, in the same roster, neither
// take leaderships nor make a rollout.
func relevant(members []Member, leaderships []Leadership) []Member {
	return slices.DeleteFunc(members, func(m Member) bool {
		return !slices.ContainsFunc(leaderships, func(l Leadership) bool { return l.Holder == m.Identity || m.runs(l.Component) })
	})
}

// uniqueMembers is members with one entry per identity: the records of an
// identity listed more than once are merged so that the result does not
// depend on their order, the cautious way (cordoned or shutting down if
// any says so, running only what all say it runs, the latest start and
// the revision and zone of the record that says it).
func uniqueMembers(members []Member) []Member {
	var out []Member
	at := map[string]int{}
	for _, m := range members {
		i, dup := at[m.Identity]
		if !dup {
			at[m.Identity] = len(out)
			m.Components = slices.Clone(m.Components)
			out = append(out, m)
			continue
		}
		o := &out[i]
		o.Cordoned = o.Cordoned || m.Cordoned
		o.ShuttingDown = o.ShuttingDown || m.ShuttingDown
		o.Components = slices.DeleteFunc(o.Components, func(c string) bool { return !m.runs(c) })
		if later := cmp.Or(m.Started.Compare(o.Started), cmp.Compare(m.Revision, o.Revision), cmp.Compare(m.Zone, o.Zone)); later > 0 {
			o.Started, o.Revision, o.Zone = m.Started, m.Revision, m.Zone
		}
	}
	return out
}

// movesOf is the moves from the holders of ls to the plan assigned, where
// it differs from where they are or are being handed to (effective).
func movesOf(ls []Leadership, assigned, effective map[string]string) []Move {
	var moves []Move
	for _, l := range ls {
		if to, ok := assigned[l.Component]; ok && to != effective[l.Component] && to != l.Holder {
			moves = append(moves, Move{Component: l.Component, From: l.Holder, To: to})
		}
	}
	slices.SortFunc(moves, func(a, b Move) int { return cmp.Compare(a.Component, b.Component) })
	return moves
}

// rollingOut says whether eligible members run more than one known
// revision.
func rollingOut(members []Member) bool {
	seen := ""
	for _, m := range members {
		if !m.eligible() || m.Revision == "" {
			continue
		}
		if seen != "" && m.Revision != seen {
			return true
		}
		seen = m.Revision
	}
	return false
}

// newestRevision is the revision of the newest eligible member that has
// one, "" if none.
func newestRevision(members []Member, order []string) string {
	for _, id := range order {
		for _, m := range members {
			if m.Identity == id && m.eligible() && m.Revision != "" {
				return m.Revision
			}
		}
	}
	return ""
}

// ofRevision is the members of ids that run revision rev ("" is none).
func ofRevision(ids []string, byID map[string]*Member, rev string) []string {
	if rev == "" {
		return nil
	}
	var out []string
	for _, id := range ids {
		if byID[id].Revision == rev {
			out = append(out, id)
		}
	}
	return out
}

// bestMove finds the move that lowers the spread of a pair of members the
// most: a component from the member leading it in the plan to one that
// runs it and leads less by more than its weight. Among equal gains, the
// more loaded source wins, then the less loaded, then newer, destination,
// then the first component in ls's order.
func bestMove(ls []Leadership, assigned map[string]string, load map[string]int, candidates func(string) []string, order []string) (component, to string, ok bool) {
	bestGain, bestFrom := 0, ""
	for _, l := range ls {
		from, held := assigned[l.Component]
		if !held {
			continue
		}
		w := l.weight()
		for _, id := range candidates(l.Component) {
			d := load[from] - load[id]
			if id == from || d <= w {
				continue
			}
			// The spread of the pair goes from d to |d - 2w|.
			gain := d - abs(d-2*w)
			if gain > bestGain || gain == bestGain && (load[from] > load[bestFrom] || load[from] == load[bestFrom] && better(id, to, load, order)) {
				component, to, bestGain, bestFrom, ok = l.Component, id, gain, from, true
			}
		}
	}
	return component, to, ok
}

// better says whether a is a better destination than b: less loaded, else
// newer.
func better(a, b string, load map[string]int, order []string) bool {
	if b == "" {
		return true
	}
	if load[a] != load[b] {
		return load[a] < load[b]
	}
	return slices.Index(order, a) < slices.Index(order, b)
}

func leastLoaded(ids []string, load map[string]int) string {
	best := ""
	for _, id := range ids { // newest first: the first of the least loaded wins
		if best == "" || load[id] < load[best] {
			best = id
		}
	}
	return best
}

func weightOf(ls []Leadership, c string) int {
	for _, l := range ls {
		if l.Component == c {
			return l.weight()
		}
	}
	return 1
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// newestFirst orders the members' identities: newest revision first (a
// revision is as new as the latest start of a member running it), then
// latest start, then identity.
func newestFirst(members []Member) []string {
	revStart := map[string]time.Time{}
	for _, m := range members {
		if m.Revision != "" && m.Started.After(revStart[m.Revision]) {
			revStart[m.Revision] = m.Started
		}
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int {
		return cmp.Or(
			revStart[b.Revision].Compare(revStart[a.Revision]),
			b.Started.Compare(a.Started),
			cmp.Compare(a.Identity, b.Identity))
	})
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Identity
	}
	return ids
}

// validate says why m cannot be announced, if it cannot.
func (m Member) validate() error {
	if m.Identity == "" {
		return errors.New("placement: a member needs an identity")
	}
	return nil
}
