package chaos_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/faultproxy"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// inProcess is one candidate of TestElectionsUnderFaults: many elections
// in this process, with a client and a watch of its own, reaching the API
// server through proxies of its own (one for requests, one for the watch),
// and memory locks shared with the other candidates behind faults of its
// own.
type inProcess struct {
	name       string
	proxy      *faultproxy.Proxy // requests
	watchProxy *faultproxy.Proxy // the Lease watch
	gen        int               // restarts so far: a restarted candidate is a new identity

	cut      atomic.Bool   // its memory locks are unreachable (with proxy blocked)
	latency  atomic.Int64  // its memory locks' latency each way
	wallBack atomic.Int64  // how far its wall clock stepped back, as its memory locks' writes show
	stepped  atomic.Int64  // its memory locks' writes while stepped back
	crashed  atomic.Bool   // the process died: its work stops at once
	leaving  atomic.Bool   // its member record says it is shutting down
	kick     chan struct{} // announce now

	cancel      context.CancelFunc
	wg          sync.WaitGroup
	elections   []*election.Election
	coordinator *election.Election // its campaign for the placement coordinator
}

// identity is the candidate's identity in its current generation.
func (c *inProcess) identity() string { return c.name + "." + strconv.Itoa(c.gen) }

func (c *inProcess) block() {
	c.cut.Store(true)
	c.proxy.Block()
}

func (c *inProcess) heal() {
	c.proxy.Heal()
	c.cut.Store(false)
}

func (c *inProcess) setLatency(d time.Duration) {
	c.proxy.SetLatency(d)
	c.latency.Store(int64(d))
}

// faultyLock is a memory lock as one candidate reaches it: unreachable
// while the candidate is cut off, slow while its network is.
type faultyLock struct {
	*locks.MemoryLock
	c *inProcess
}

func (l faultyLock) reach(ctx context.Context) error {
	t := time.NewTimer(2 * time.Duration(l.c.latency.Load()))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	for l.c.cut.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (l faultyLock) Get(ctx context.Context) (locks.Observed, error) {
	if err := l.reach(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.MemoryLock.Get(ctx)
}

func (l faultyLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	if err := l.reach(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.MemoryLock.Create(ctx, l.stepped(r))
}

func (l faultyLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	if err := l.reach(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.MemoryLock.Update(ctx, version, l.stepped(r))
}

// stepped is r as the candidate writes it while its wall clock is stepped
// back (an NTP step): the times it takes now are behind, those of a term
// it began before are not. The elections' timers and deadlines run on the
// monotonic clock, which no step moves, so only the records show it.
func (l faultyLock) stepped(r locks.Record) locks.Record {
	back := time.Duration(l.c.wallBack.Load())
	if back == 0 {
		return r
	}
	l.c.stepped.Add(1)
	if r.AcquireTime.Equal(r.RenewTime) {
		r.AcquireTime = r.AcquireTime.Add(-back)
	}
	r.RenewTime = r.RenewTime.Add(-back)
	return r
}

func (l faultyLock) Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	if err := l.reach(ctx); err != nil {
		return locks.Observed{}, err
	}
	return l.MemoryLock.Annotate(ctx, version, r, set)
}

// stubbornLock is a custom lock whose requests ignore cancellation, as
// one on a slow backend or a half-open connection may: through a
// partition they hang until the network heals.
type stubbornLock struct{ inner locks.Lock }

func (l stubbornLock) Get(ctx context.Context) (locks.Observed, error) {
	return l.inner.Get(context.WithoutCancel(ctx))
}

func (l stubbornLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	return l.inner.Create(context.WithoutCancel(ctx), r)
}

func (l stubbornLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	return l.inner.Update(context.WithoutCancel(ctx), version, r)
}

func (l stubbornLock) Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	return l.inner.(annotator).Annotate(context.WithoutCancel(ctx), version, r, set)
}

func (l stubbornLock) Describe() string { return "stubborn/" + l.inner.Describe() }

// annotator is a lock that keeps tenure's annotations.
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

// countingHandler counts the log lines of hand-overs made, and tells
// cutOff of each term an election ended at its renew deadline.
type countingHandler struct {
	slog.Handler
	handedOver *atomic.Int64
	cutOff     func(election, identity string)
	election   string // the logger's election and identity attributes
	identity   string
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "handed the lock over":
		h.handedOver.Add(1)
	case "stopped leading":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" && strings.HasPrefix(a.Value.String(), "no successful renewal for the renew deadline") {
				h.cutOff(h.election, h.identity)
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	for _, a := range attrs {
		switch a.Key {
		case "election":
			h.election = a.Value.String()
		case "identity":
			h.identity = a.Value.String()
		}
	}
	h.Handler = h.Handler.WithAttrs(attrs)
	return h
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

// mover asks the leaders of random elections to move, as a placement
// coordinator or an operator does, throughout a chaos run: to a live
// candidate mostly, sometimes to one that is gone; from a read that is
// up to a retry period old, so that some requests conflict or race a
// take-over, as a stale or partitioned coordinator's would.
type mover struct {
	locks      map[string]locks.Lock // the operator's handle on each election's lock
	targets    func() []string       // identities to move to
	staleness  time.Duration
	paused     atomic.Bool
	asking     sync.Mutex // held while a request is made
	asked      atomic.Int64
	handedOver atomic.Int64
}

// goneTarget is the identity of a candidate that does not exist.
const goneTarget = "gone.0"

func (m *mover) run(ctx context.Context, names []string) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(50+rand.IntN(200)) * time.Millisecond):
		}
		m.ask(ctx, names)
	}
}

// ask asks the leader of a random election to move, unless paused.
func (m *mover) ask(ctx context.Context, names []string) {
	m.asking.Lock()
	defer m.asking.Unlock()
	if m.paused.Load() {
		return
	}
	l := m.locks[names[rand.IntN(len(names))]]
	to := goneTarget
	if rand.IntN(10) > 0 {
		ids := m.targets()
		to = ids[rand.IntN(len(ids))]
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	obs, err := l.Get(rctx)
	if err == nil && obs.Record.HolderIdentity != "" && obs.Record.HolderIdentity != to {
		time.Sleep(rand.N(m.staleness))
		if _, err := l.(annotator).Annotate(rctx, obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to}); err == nil {
			m.asked.Add(1)
		}
	}
}

// pause stops asking, once a request under way has been made, and
// withdraws the requests to candidates that are gone (the one that never
// was, or an identity a restart replaced) that no leader has acted on
// yet, as a coordinator withdraws a move to a replica that left: a leader
// that stops with one pending hands over to nobody, and its election
// waits out a lease, which a check of take-over times must not count. (A
// request to a live candidate is taken at once.)
func (m *mover) pause(ctx context.Context) {
	m.paused.Store(true)
	m.asking.Lock() // once the request under way is made
	m.asking.Unlock()
	live := m.targets()
	for _, l := range m.locks {
		for range 3 { // again after a conflict with the leader's writes
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			obs, err := l.Get(rctx)
			if to := obs.Annotations[locks.PreferredHolderAnnotation]; err == nil && to != "" && !slices.Contains(live, to) {
				_, err = l.(annotator).Annotate(rctx, obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: ""})
			}
			cancel()
			if err == nil {
				break
			}
		}
	}
}

// electionKinds are the locks of the elections, in turn: Lease locks with a
// watch, a ConfigMap lock and memory locks with sub-second renewals (their
// times have whole seconds), and a custom lock whose requests ignore
// cancellation.
var electionKinds = []string{"lease", "configmap", "lease", "stubborn", "memory"}

// TestElectionsUnderFaults runs three candidates in this process, each
// campaigning in the same many elections (CHAOS_ELECTIONS, default 20),
// each with a client of its own behind a proxy of its own and a Lease
// watch behind another; the elections take turns among the electionKinds.
// It injects faults one after another: a partition of the busiest
// candidate (all its elections fail at once), a partition of a follower,
// a slow network, a crash (no release), a graceful stop whose work winds
// down for up to two leases (checking its term), silent watches
// followed by a graceful stop or a crash (taken over within two retry
// periods, or a lease and a retry period), a restart of the API server, a
// restart of etcd, and reset connections. Every leader acts every 20ms
// after checking its term with election.Valid; the checker finds no two
// leaders of an election acting at once and no fencing token going back,
// and after each fault heals every election has a leader acting within
// the lease plus a second.
func TestElectionsUnderFaults(t *testing.T) {
	run := duration(t, 2*time.Minute)
	n := 20
	if v, err := strconv.Atoi(os.Getenv("CHAOS_ELECTIONS")); err == nil && v > 0 {
		n = v
	}
	const (
		lease    = 3 * time.Second // Lease and stubborn locks
		deadline = 2 * time.Second
		retry    = 300 * time.Millisecond
		// ConfigMap and memory locks: a renewal every 750ms, a failed one
		// retried every 50ms, and whole seconds of lease minus the renew
		// deadline under a second.
		fastLease    = 2 * time.Second
		fastDeadline = 1500 * time.Millisecond
		fastRetry    = 100 * time.Millisecond
		act          = 20 * time.Millisecond
	)
	srv := kubetest.Shared(t)
	ns := kubetest.Namespace(t)
	names := make([]string, n)
	kinds := map[string]string{}
	for i := range names {
		names[i] = fmt.Sprintf("e%03d", i)
		kinds[names[i]] = electionKinds[i%len(electionKinds)]
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CHAOS_VERBOSE") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	space := locks.NewMemorySpace()
	admin, err := kubernetes.NewForConfig(srv.Config())
	require.NoError(t, err)
	moves := &mover{locks: map[string]locks.Lock{}, staleness: retry}
	var placedMoves atomic.Int64 // moves the placement coordinators asked for
	var withdrawn atomic.Int64   // moves withdrawn: their target went away
	var cutOffsMu sync.Mutex
	cutOffs := map[string]int{} // identity → its memory locks' terms ended at the renew deadline
	quiet = slog.New(countingHandler{Handler: quiet.Handler(), handedOver: &moves.handedOver, cutOff: func(election, identity string) {
		if kinds[election] == "memory" {
			cutOffsMu.Lock()
			defer cutOffsMu.Unlock()
			cutOffs[identity]++
		}
	}})
	cutOffsOf := func(identity string) int {
		cutOffsMu.Lock()
		defer cutOffsMu.Unlock()
		return cutOffs[identity]
	}
	for _, name := range names {
		var l locks.Lock
		switch kinds[name] {
		case "lease", "stubborn":
			l, err = locks.NewLeaseLock(admin.CoordinationV1(), ns, name, locks.WithoutWatch())
		case "configmap":
			l, err = locks.NewConfigMapLock(admin.CoreV1(), ns, name)
		case "memory":
			l = space.Lock(name)
		}
		require.NoError(t, err)
		moves.locks[name] = l
	}

	var identitiesMu sync.Mutex
	identities := map[string]string{} // candidate → its current identity
	moves.targets = func() []string {
		identitiesMu.Lock()
		defer identitiesMu.Unlock()
		var ids []string
		for _, id := range identities {
			ids = append(ids, id)
		}
		return ids
	}

	c := newChecker()
	client := func(p *faultproxy.Proxy) kubernetes.Interface {
		cfg := rest.CopyConfig(srv.Config())
		cfg.Host = "https://" + p.Addr()
		cs, err := kubernetes.NewForConfig(cfg)
		require.NoError(t, err)
		return cs
	}
	start := func(cand *inProcess) {
		cs := client(cand.proxy)
		cand.gen++
		cand.crashed.Store(false)
		id := cand.identity()
		identitiesMu.Lock()
		identities[cand.name] = id
		identitiesMu.Unlock()
		// The watch has a client and a connection of its own, so that it
		// can go silent while requests still get through.
		leases := kubetest.SplitLeases(cs, client(cand.watchProxy))
		ctx, cancel := context.WithCancel(context.Background())
		cand.cancel = cancel
		cand.elections = nil
		placed := map[string]placement.Component{}
		for _, name := range names {
			var (
				lock locks.Lock
				err  error
			)
			cfg := election.Config{LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry}
			switch kinds[name] {
			case "lease":
				lock, err = locks.NewLeaseLock(leases, ns, name)
			case "stubborn":
				var inner locks.Lock
				inner, err = locks.NewLeaseLock(cs.CoordinationV1(), ns, name)
				lock = stubbornLock{inner}
			case "configmap":
				lock, err = locks.NewConfigMapLock(cs.CoreV1(), ns, name)
				cfg = election.Config{LeaseDuration: fastLease, RenewDeadline: fastDeadline, RetryPeriod: fastRetry}
			case "memory":
				lock = faultyLock{space.Lock(name), cand}
				cfg = election.Config{LeaseDuration: fastLease, RenewDeadline: fastDeadline, RetryPeriod: fastRetry}
			}
			require.NoError(t, err)
			cfg.Lock, cfg.Name, cfg.Identity, cfg.Logger = lock, name, id, quiet
			cfg.OnStartedLeading = func(ctx context.Context) {
				term, _ := election.TermFromContext(ctx)
				c.start(name, id, term.FencingToken, time.Now())
				tick := time.NewTicker(act)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						// Stopping or moving with the term still valid:
						// wind down, acting for up to two leases, for as
						// long as the term holds (the leader renews until
						// the work returns). A term that is over, or a
						// crash, has nothing to finish. A wind-down that
						// does not check its term is safe only while the
						// leader can renew: partitioned meanwhile (a move
						// asked just before a partition), its lease expires
						// under it, as any leader's would.
						if cand.crashed.Load() || election.Valid(ctx) != nil {
							return
						}
						end := time.Now().Add(rand.N(2 * lease))
						for {
							at := time.Now() // decided now, before the check (see examples/multicomponent)
							if !at.Before(end) || cand.crashed.Load() || election.Valid(ctx) != nil {
								break
							}
							c.act(name, id, term.FencingToken, at)
							time.Sleep(act)
						}
						return
					case <-tick.C:
						at := time.Now()
						if election.Valid(ctx) == nil {
							c.act(name, id, term.FencingToken, at)
						}
					}
				}
			}
			e, err := election.New(cfg)
			require.NoError(t, err)
			cand.elections = append(cand.elections, e)
			placed[name] = placement.Component{Lock: lock}
			cand.wg.Go(func() { _ = e.Run(ctx) })
		}
		// Placement on: the candidate announces itself and campaigns for
		// the coordinator through its own network, so that the faults
		// partition, slow and crash coordinators too.
		roster, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, lease)
		require.NoError(t, err)
		elections := cand.elections
		coord, err := placement.NewCoordinator(placement.CoordinatorConfig{
			Roster: roster, Components: placed, Interval: retry, PendingFor: lease, Logger: quiet,
			Holders: func() map[string]string {
				out := map[string]string{}
				for i, name := range names {
					out[name] = elections[i].Leader()
				}
				return out
			},
			OnMove:     func(placement.Move) { placedMoves.Add(1) },
			OnWithdraw: func(placement.Move) { withdrawn.Add(1) },
		})
		require.NoError(t, err)
		coordLock, err := locks.NewLeaseLock(leases, ns, "tenure-placement")
		require.NoError(t, err)
		cand.coordinator, err = election.New(election.Config{
			Lock: coordLock, Name: "tenure-placement", Identity: id, Logger: quiet,
			LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry,
			OnStartedLeading: coord.Run,
		})
		require.NoError(t, err)
		cand.wg.Go(func() { _ = cand.coordinator.Run(ctx) })
		member := placement.Member{Identity: id, Components: names, Started: time.Now()}
		cand.kick = make(chan struct{}, 1)
		cand.wg.Go(func() {
			defer roster.Close()
			tick := time.NewTicker((lease - retry) / 2) // as the framework announces
			defer tick.Stop()
			for {
				actx, cancel := context.WithTimeout(ctx, retry)
				m := member
				m.ShuttingDown = cand.leaving.Load()
				_ = roster.Announce(actx, m)
				cancel()
				select {
				case <-cand.kick:
				case <-ctx.Done():
					if !cand.crashed.Load() {
						lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
						_ = roster.Leave(lctx, id)
						cancel()
					}
					return
				case <-tick.C:
				}
			}
		})
	}
	stop := func(cand *inProcess) {
		cand.cancel()
		cand.wg.Wait()
	}
	// crash ends the candidate as a dying process would: its work stops at
	// once, nothing more reaches the locks, no lease is released.
	crash := func(cand *inProcess) {
		cand.block()
		cand.crashed.Store(true)
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		for _, e := range append(cand.elections, cand.coordinator) {
			go func() { _ = e.Stop(gone) }() // returns at once; the blocked network keeps the release from the lock
		}
	}

	cands := make([]*inProcess, 3)
	for i := range cands {
		proxy, err := faultproxy.Start(strings.TrimPrefix(srv.URL, "https://"))
		require.NoError(t, err)
		t.Cleanup(proxy.Close)
		watchProxy, err := faultproxy.Start(strings.TrimPrefix(srv.URL, "https://"))
		require.NoError(t, err)
		t.Cleanup(watchProxy.Close)
		cands[i] = &inProcess{name: fmt.Sprintf("c%d", i+1), proxy: proxy, watchProxy: watchProxy}
		start(cands[i])
	}
	t.Cleanup(func() {
		for _, cand := range cands {
			cand.heal()
			cand.watchProxy.Heal()
			stop(cand)
		}
	})

	leaders := func() map[string]string { return c.leaders(names) }
	leaderless := func() []string {
		l := leaders()
		var missing []string
		for _, name := range names {
			if _, ok := l[name]; !ok {
				missing = append(missing, name)
			}
		}
		return missing
	}
	allLed := func(within time.Duration, after string) {
		t.Helper()
		// A move to a candidate that is gone leaves an election without a
		// leader for a lease, as a crash does: no moves while checking
		// that every election has recovered.
		moves.paused.Store(true)
		defer moves.paused.Store(false)
		if !assert.Eventually(t, func() bool { return len(leaderless()) == 0 }, within, 50*time.Millisecond) {
			t.Fatalf("after %s: elections %v had no leader acting within %v", after, leaderless(), within)
		}
	}
	// ledBy names the elections whose leader acting now is who.
	ledBy := func(who string) []string {
		var led []string
		for name, w := range leaders() {
			if w == who {
				led = append(led, name)
			}
		}
		return led
	}
	// takenOver checks that each of elections, led by gone, has a leader
	// of another identity acting within the limit of its kind, counted
	// from gone's last act, or from since if that is later. Kinds without
	// a limit are left to the check that follows every fault.
	takenOver := func(elections []string, gone string, since time.Time, limits map[string]time.Duration, what string) {
		t.Helper()
		for _, name := range elections {
			if _, ok := limits[kinds[name]]; !ok {
				continue
			}
			var last, next time.Time
			if !assert.Eventually(t, func() bool {
				var ok bool
				last, next, ok = c.handOver(name, gone)
				return ok
			}, 3*lease, 10*time.Millisecond) {
				t.Errorf("%s: %s was not taken over from %s", what, name, gone)
				continue
			}
			from := last
			if since.After(from) {
				from = since
			}
			if took := next.Sub(from); took > limits[kinds[name]] {
				t.Errorf("%s: %s (%s lock) was taken over from %s after %v, more than %v", what, name, kinds[name], gone, took, limits[kinds[name]])
			}
		}
	}
	// busiest is the candidate leading the most elections; follower one
	// leading the fewest.
	byLoad := func() (busiest, follower *inProcess) {
		count := map[string]int{}
		for _, who := range leaders() {
			count[who]++
		}
		busiest, follower = cands[0], cands[0]
		for _, cand := range cands {
			if count[cand.identity()] > count[busiest.identity()] {
				busiest = cand
			}
			if count[cand.identity()] < count[follower.identity()] {
				follower = cand
			}
		}
		return busiest, follower
	}
	silenceWatches := func() {
		for _, cand := range cands {
			cand.watchProxy.StallOpen()
		}
		time.Sleep(lease) // the caches fall behind
	}
	healWatches := func() {
		for _, cand := range cands {
			cand.watchProxy.Heal()
		}
	}

	allLed(lease+15*time.Second, "start") // new Leases are first taken after a lease
	healed := lease + time.Second + 500*time.Millisecond
	// What a take-over behind silent watches may take: one act and one
	// poll of the checker on top of the goal. Only the elections whose
	// locks watch are held to it; the others poll, and are checked as
	// after every fault.
	slack := act + 50*time.Millisecond
	faults := []fault{
		{"partition the busiest: all its elections fail at once", func() {
			b, _ := byLoad()
			b.block()
			time.Sleep(lease + time.Second)
			b.heal()
		}},
		{"partition a follower", func() {
			_, f := byLoad()
			f.block()
			time.Sleep(lease + time.Second)
			f.heal()
		}},
		{"slow the busiest's network by 400ms each way", func() {
			b, _ := byLoad()
			b.setLatency(400 * time.Millisecond)
			time.Sleep(lease + time.Second)
			b.setLatency(0)
		}},
		{"crash the busiest (no release) and restart it", func() {
			b, _ := byLoad()
			crash(b)
			time.Sleep(lease + time.Second)
			b.heal()
			stop(b)
			start(b)
		}},
		{"stop the busiest gracefully (its work winds down up to two leases) and restart it", func() {
			b, _ := byLoad()
			stop(b)
			start(b)
		}},
		{"silence every watch, stop the busiest gracefully: taken over within 2 × retry", func() {
			moves.pause(context.Background()) // the take-over times are checked
			defer moves.paused.Store(false)
			silenceWatches()
			b, _ := byLoad()
			gone := b.identity()
			led := ledBy(gone)
			stop(b)
			takenOver(led, gone, time.Time{}, map[string]time.Duration{
				"lease": 2*retry + slack,
			}, "graceful stop behind silent watches")
			start(b)
			healWatches()
		}},
		{"silence every watch, crash the busiest: taken over within lease + retry", func() {
			moves.pause(context.Background()) // the take-over times are checked
			defer moves.paused.Store(false)
			silenceWatches()
			b, _ := byLoad()
			gone := b.identity()
			led := ledBy(gone)
			crashed := time.Now()
			crash(b)
			takenOver(led, gone, crashed, map[string]time.Duration{
				"lease": lease + retry + slack,
			}, "crash behind silent watches")
			b.heal()
			stop(b)
			start(b)
			healWatches()
		}},
		{"step the busiest's wall clock back by two leases (its memory locks' renew times go back)", func() {
			// Its renewals store earlier renew times than the last:
			// each still changes the record, so its terms go on (before,
			// the leader did not count them, wrote every 10ms and lost
			// its terms after the renew deadline). The lock shifts the
			// times after the election chose them, so this checks only
			// liveness: an election's own renew times after a real step
			// (they only grow, so that a follower cut off meanwhile
			// cannot see a record again) are seen only by the election,
			// which alone has both clocks; election's
			// TestWallStepsAndPartitions reaches that interleaving.
			b, _ := byLoad()
			memory, led := 0, 0
			for i, name := range names {
				if kinds[name] == "memory" {
					memory++
					if b.elections[i].IsLeader() {
						led++
					}
				}
			}
			b.stepped.Store(0)
			before := cutOffsOf(b.identity())
			b.wallBack.Store(int64(2 * fastLease))
			time.Sleep(lease + time.Second)
			b.wallBack.Store(0)
			assert.Equal(t, before, cutOffsOf(b.identity()), "memory-lock terms of %s ended at the renew deadline while its wall clock was stepped back", b.identity())
			// A renewal every renew interval (750ms), a retry at most
			// every retry period: fewer than one write per retry period
			// per memory election, whichever it leads meanwhile (before:
			// one every 10ms per election it led).
			writes, bound := b.stepped.Load(), int64(memory)*int64((lease+time.Second)/fastRetry)
			t.Logf("wall clock step: %d of %d memory elections led, %d writes while stepped back", led, memory, writes)
			assert.LessOrEqual(t, writes, bound, "writes of memory locks while the wall clock was stepped back")
		}},
		{"a candidate announces that it shuts down, then that it does not: moves to it are withdrawn or redirected", func() {
			cand := cands[rand.IntN(len(cands))]
			announce := func(leaving bool) {
				cand.leaving.Store(leaving)
				select {
				case cand.kick <- struct{}{}:
				default:
				}
			}
			announce(true)
			time.Sleep(3 * retry)
			announce(false)
		}},
		{"partition the placement coordinator", func() {
			var coordinator *inProcess
			for _, cand := range cands {
				if cand.coordinator.IsLeader() {
					coordinator = cand
				}
			}
			if coordinator == nil {
				return // between coordinators
			}
			coordinator.block()
			time.Sleep(lease + time.Second)
			coordinator.heal()
		}},
		{"silence every watch, delete every Lease: its leader steps down, the Lease is made again", func() {
			silenceWatches()
			admin, err := kubernetes.NewForConfig(srv.Config())
			require.NoError(t, err)
			for _, name := range names {
				if kinds[name] == "lease" || kinds[name] == "stubborn" {
					err := admin.CoordinationV1().Leases(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
					if !apierrors.IsNotFound(err) {
						require.NoError(t, err)
					}
				}
			}
			// Candidates wait a lease before making a missing lock (it
			// may have just been deleted under a working leader).
			time.Sleep(lease + time.Second)
			healWatches()
		}},
	}
	var proxies []*faultproxy.Proxy
	for _, cand := range cands {
		proxies = append(proxies, cand.proxy, cand.watchProxy)
	}
	faults = append(faults, sharedFaults(t, srv, proxies)...)
	moving, stopMoving := context.WithCancel(context.Background())
	var moverDone sync.WaitGroup
	moverDone.Go(func() { moves.run(moving, names) })
	lastHandedOver := int64(0)
	count := inject(t, c, run, faults, func(after string) {
		n := moves.handedOver.Load()
		t.Logf("hand-overs during %q: %d", after, n-lastHandedOver)
		lastHandedOver = n
		allLed(healed, after)
	})
	stopMoving()
	moverDone.Wait()
	for _, cand := range cands {
		stop(cand)
	}
	t.Logf("%d elections (%v) × 3 candidates: %d faults, %d terms started, %d moves asked by the mover, %d by placement (%d withdrawn), %d hand-overs", n, electionKinds, count, c.transitions(), moves.asked.Load(), placedMoves.Load(), withdrawn.Load(), moves.handedOver.Load())
	assert.Positive(t, moves.handedOver.Load(), "leaders handed over")
	assert.Positive(t, placedMoves.Load(), "placement moved leaderships")
	c.check(t)
}
