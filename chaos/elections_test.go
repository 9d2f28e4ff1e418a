package chaos_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/faultproxy"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
)

// inProcess is one candidate of TestElectionsUnderFaults: many elections
// in this process, with a client and a watch of its own, reaching the API
// server through a proxy of its own.
type inProcess struct {
	name  string
	proxy *faultproxy.Proxy
	gen   int // restarts so far: a restarted candidate is a new identity

	cancel context.CancelFunc
	wg     sync.WaitGroup
	w      *locks.LeaseWatcher
}

// identity is the candidate's identity in its current generation.
func (c *inProcess) identity() string { return c.name + "." + strconv.Itoa(c.gen) }

// TestElectionsUnderFaults runs three candidates in this process, each
// campaigning in the same many elections (CHAOS_ELECTIONS, default 20) on
// Leases, each with a client and a watch of its own behind a proxy of its
// own, and injects faults one after another: a partition of the busiest
// candidate (all its elections fail at once), a partition of a follower,
// a slow network, a crash (no release), a graceful stop, a restart of the
// API server, a restart of etcd, and reset connections. Every leader acts
// every 20ms after checking its term with election.Valid; the checker
// finds no two leaders of an election acting at once and no fencing token
// going back, and after each fault heals every election has a leader
// acting within the lease plus a second.
func TestElectionsUnderFaults(t *testing.T) {
	run := duration(t, 2*time.Minute)
	n := 20
	if v, err := strconv.Atoi(os.Getenv("CHAOS_ELECTIONS")); err == nil && v > 0 {
		n = v
	}
	const (
		lease    = 3 * time.Second
		deadline = 2 * time.Second
		retry    = 300 * time.Millisecond
		act      = 20 * time.Millisecond
	)
	srv := kubetest.Shared(t)
	ns := kubetest.Namespace(t)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("e%03d", i)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CHAOS_VERBOSE") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	c := newChecker()
	start := func(cand *inProcess) {
		cfg := rest.CopyConfig(srv.Config())
		cfg.Host = "https://" + cand.proxy.Addr()
		cs, err := kubernetes.NewForConfig(cfg)
		require.NoError(t, err)
		cand.gen++
		id := cand.identity()
		cand.w = locks.NewLeaseWatcher(cs)
		ctx, cancel := context.WithCancel(context.Background())
		cand.cancel = cancel
		for _, name := range names {
			lock, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, name, locks.WithIdentity(id), locks.WithWatcher(cand.w))
			require.NoError(t, err)
			e, err := election.New(election.Config{
				Lock: lock, LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry, Logger: quiet,
				OnStartedLeading: func(ctx context.Context) {
					term, _ := election.TermFromContext(ctx)
					c.start(name, id, term.FencingToken, time.Now())
					tick := time.NewTicker(act)
					defer tick.Stop()
					for {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
							if election.Valid(ctx) == nil {
								c.act(name, id, term.FencingToken, time.Now())
							}
						}
					}
				},
			})
			require.NoError(t, err)
			cand.wg.Go(func() { _ = e.Run(ctx) })
		}
		cand.w.Start()
	}
	stop := func(cand *inProcess) {
		cand.cancel()
		cand.wg.Wait()
		cand.w.Stop()
	}

	cands := make([]*inProcess, 3)
	for i := range cands {
		proxy, err := faultproxy.Start(strings.TrimPrefix(srv.URL, "https://"))
		require.NoError(t, err)
		t.Cleanup(proxy.Close)
		cands[i] = &inProcess{name: fmt.Sprintf("c%d", i+1), proxy: proxy}
		start(cands[i])
	}
	t.Cleanup(func() {
		for _, cand := range cands {
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
		if !assert.Eventually(t, func() bool { return len(leaderless()) == 0 }, within, 50*time.Millisecond) {
			t.Fatalf("after %s: elections %v had no leader acting within %v", after, leaderless(), within)
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

	allLed(lease+15*time.Second, "start") // new Leases are first taken after a lease
	healed := lease + time.Second + 500*time.Millisecond
	faults := []fault{
		{"partition the busiest: all its elections fail at once", func() {
			b, _ := byLoad()
			b.proxy.Block()
			time.Sleep(lease + time.Second)
			b.proxy.Heal()
		}},
		{"partition a follower", func() {
			_, f := byLoad()
			f.proxy.Block()
			time.Sleep(lease + time.Second)
			f.proxy.Heal()
		}},
		{"slow the busiest's network by 400ms each way", func() {
			b, _ := byLoad()
			b.proxy.SetLatency(400 * time.Millisecond)
			time.Sleep(lease + time.Second)
			b.proxy.SetLatency(0)
		}},
		{"crash the busiest (no release) and restart it", func() {
			b, _ := byLoad()
			b.proxy.Block() // its releases never arrive
			stop(b)
			b.proxy.Heal()
			start(b)
		}},
		{"stop the busiest gracefully and restart it", func() {
			b, _ := byLoad()
			stop(b)
			start(b)
		}},
	}
	var proxies []*faultproxy.Proxy
	for _, cand := range cands {
		proxies = append(proxies, cand.proxy)
	}
	faults = append(faults, sharedFaults(t, srv, proxies)...)
	count := inject(t, c, run, faults, func(after string) { allLed(healed, after) })
	for _, cand := range cands {
		stop(cand)
	}
	t.Logf("%d elections × 3 candidates: %d faults, %d terms started", n, count, c.transitions())
	c.check(t)
}
