package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/fx"
	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
)

// The placement scenario: 3 replicas × placedComponents components, the
// issue's measurements: the spread after a start 0.3 s apart, moves per
// component in two rolling updates, and requests per election per minute
// in steady state.
const placedComponents = 12

// tracker follows who leads each of n components and counts the terms
// started and the placement moves asked (see placed).
type tracker struct {
	n      int
	mu     sync.Mutex
	leader map[string]string
	starts map[string]int
	moves  map[string]int // by kind: moveLine, withdrawLine
	last   time.Time      // the last term started or move asked
}

func newTracker(n int) *tracker {
	return &tracker{n: n, leader: map[string]string{}, starts: map[string]int{}, moves: map[string]int{}}
}

func (tr *tracker) lead(comp, id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.leader[comp], tr.last = id, time.Now()
	tr.starts[comp]++
}

func (tr *tracker) unlead(comp, id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.leader[comp] == id {
		delete(tr.leader, comp)
	}
}

// placed counts a placement move of kind asked (or withdrawn).
func (tr *tracker) placed(kind string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.moves[kind]++
	tr.last = time.Now()
}

// movesOf is the number of placement moves of kind so far.
func (tr *tracker) movesOf(kind string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.moves[kind]
}

// settled waits until every component has a leader and no term started
// nor move was asked for quiet, up to limit; it returns the shares of the
// live replicas, largest first, and when the last term started or move
// was asked.
func (tr *tracker) settled(quiet, limit time.Duration, live []string) ([]int, time.Time, bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		tr.mu.Lock()
		ok := len(tr.leader) == tr.n && time.Since(tr.last) >= quiet
		shares := map[string]int{}
		for _, id := range live {
			shares[id] = 0
		}
		for _, id := range tr.leader {
			shares[id]++
		}
		last := tr.last
		tr.mu.Unlock()
		if ok {
			var out []int
			for _, n := range shares {
				out = append(out, n)
			}
			slices.Sort(out)
			slices.Reverse(out)
			return out, last, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, time.Time{}, false
}

func (tr *tracker) totalStarts() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, k := range tr.starts {
		n += k
	}
	return n
}

func (tr *tracker) startsBy() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for c, k := range tr.starts {
		out[c] = k
	}
	return out
}

// placedReplica is one replica running every component.
type placedReplica interface{ stop() }

// placedStarter starts replica id of program revision rev.
type placedStarter func(id, rev string) placedReplica

type tenureApp struct{ app *fx.App }

func (a tenureApp) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = a.app.Stop(ctx)
}

// tenurePlaced runs tenure replicas as programs do: the fx module, every
// component balanced.
func tenurePlaced(cs kubernetes.Interface, ns string, t timings, tr *tracker) placedStarter {
	return func(id, rev string) placedReplica {
		yaml := fmt.Sprintf("identity: %s\nnamespace: %s\nlease_duration: %v\nrenew_deadline: %v\nretry_period: %v\nplacement: balanced\nrevision: %s\n",
			id, ns, t.lease, t.deadline, t.retry, rev)
		opts := []fx.Option{
			framework.Module,
			framework.ConfigYAML("bench.yaml", []byte(yaml)),
			fx.Provide(func() kubernetes.Interface { return cs }),
			fx.Supply(quiet),
			fx.NopLogger,
		}
		for i := range placedComponents {
			name := fmt.Sprintf("comp%02d", i)
			opts = append(opts, framework.Component(func() components.Component {
				return components.New(name, func(ctx context.Context) error {
					term, _ := election.TermFromContext(ctx)
					tr.lead(name, term.Identity)
					<-ctx.Done()
					tr.unlead(name, term.Identity)
					return nil
				})
			}))
		}
		app := fx.New(opts...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := app.Start(ctx); err != nil {
			panic(err)
		}
		return tenureApp{app}
	}
}

// clientGoPlaced runs client-go replicas: one LeaderElector per component,
// released on cancel.
func clientGoPlaced(cs kubernetes.Interface, ns string, t timings, tr *tracker) placedStarter {
	return func(id, _ string) placedReplica {
		var g group
		for i := range placedComponents {
			name := fmt.Sprintf("comp%02d", i)
			led := make(chan leadEvent, 16)
			g.add(clientGo.start(cs, ns, name, id, t, true, led))
			go func() {
				for ev := range led {
					tr.lead(ev.election, ev.id)
				}
			}()
		}
		return &clientGoReplica{g: &g}
	}
}

type clientGoReplica struct{ g *group }

func (r *clientGoReplica) stop() { r.g.stopAll() }

type rollResult struct {
	perComponent float64
	max          int
	shares       []int
}

type placementResult struct {
	err        error
	start      []int
	settle     time.Duration // from the last start to the last term started
	rolls      map[string]rollResult
	requests   float64 // per election per minute, all replicas
	byVerb     map[string]float64
	components int
}

// Roll kinds of the placement scenario.
const (
	rollStopFirst  = "stop, then start (the issue's roll)"
	rollSurgeFirst = "start, then stop (a Deployment's maxSurge)"
)

func (e *env) placement(impl implementation, window time.Duration) (res placementResult) {
	defer func() {
		if p := recover(); p != nil {
			res.err = fmt.Errorf("%v", p)
		}
	}()
	t := timings{15 * time.Second, 10 * time.Second, 2 * time.Second, 0}
	ns := e.namespace("placement-" + impl.name)
	c := newCounter()
	cs := e.client(c)
	tr := newTracker(placedComponents)
	start := tenurePlaced(cs, ns, t, tr)
	if impl.name == clientGo.name {
		start = clientGoPlaced(cs, ns, t, tr)
	}
	live := map[string]placedReplica{}
	ids := func() []string {
		var out []string
		for id := range live {
			out = append(out, id)
		}
		return out
	}
	defer func() {
		for _, r := range live {
			r.stop()
		}
	}()
	quietFor := 3 * t.retry
	for _, id := range []string{"r1", "r2", "r3"} {
		live[id] = start(id, "v1")
		time.Sleep(300 * time.Millisecond)
	}
	lastStart := time.Now()
	shares, last, ok := tr.settled(quietFor, 2*time.Minute, ids())
	if !ok {
		panic("no leader for every component after the start")
	}
	res.start, res.settle, res.components = shares, last.Sub(lastStart), placedComponents

	c.reset()
	time.Sleep(window)
	counts := c.reset()
	total := 0
	res.byVerb = map[string]float64{}
	for verb, k := range counts {
		total += k
		res.byVerb[verb] = float64(k) / placedComponents / window.Minutes()
	}
	res.requests = float64(total) / placedComponents / window.Minutes()

	res.rolls = map[string]rollResult{}
	roll := func(kind, rev string, surge bool) {
		before := tr.startsBy()
		for _, old := range slices.Sorted(slices.Values(ids())) {
			next := old[:2] + rev
			if surge {
				live[next] = start(next, rev)
				time.Sleep(8 * time.Second)
				live[old].stop()
				delete(live, old)
			} else {
				live[old].stop()
				delete(live, old)
				live[next] = start(next, rev)
				time.Sleep(8 * time.Second)
			}
		}
		shares, _, ok := tr.settled(quietFor, 2*time.Minute, ids())
		if !ok {
			panic("no leader for every component after " + kind)
		}
		after := tr.startsBy()
		r := rollResult{shares: shares}
		moves := 0
		for comp, n := range after {
			d := n - before[comp]
			moves += d
			r.max = max(r.max, d)
		}
		r.perComponent = float64(moves) / placedComponents
		res.rolls[kind] = r
	}
	roll(rollStopFirst, "v2", false)
	roll(rollSurgeFirst, "v3", true)
	return res
}
