package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/go-logr/logr"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
)

// timings of one scenario; renew (tenure's RenewInterval) 0 is the
// retry period.
type timings struct{ lease, deadline, retry, renew time.Duration }

// leadEvent is a candidate starting to lead.
type leadEvent struct {
	election, id string
	at           time.Time
}

// candidate is one running candidate of either implementation.
type candidate interface {
	// stop ends it: releasing the lease if it was started with release.
	stop()
}

// implementation starts candidates.
type implementation struct {
	name  string
	start func(cs kubernetes.Interface, ns, lease, id string, t timings, release bool, led chan<- leadEvent) candidate
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func init() { klog.SetLogger(logr.Discard()) }

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r running) stop() {
	r.cancel()
	<-r.done
}

func report(led chan<- leadEvent, ev leadEvent) {
	select {
	case led <- ev:
	default: // nobody listens in this phase
	}
}

var tenure = implementation{name: "tenure", start: func(cs kubernetes.Interface, ns, lease, id string, t timings, release bool, led chan<- leadEvent) candidate {
	c := newTenureCandidate(cs, ns, lease, id, t, release, led)
	c.start()
	return c
}}

// tenureCandidate is a tenure candidate with its lock and election at
// hand, for placement (see runPlacement).
type tenureCandidate struct {
	name     string // the election's and its Lease's
	lock     locks.Lock
	election *election.Election
	running
}

// newTenureCandidate makes a candidate on a Lease lock; start runs it.
func newTenureCandidate(cs kubernetes.Interface, ns, lease, id string, t timings, release bool, led chan<- leadEvent) *tenureCandidate {
	lock, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, lease, locks.WithIdentity(id))
	if err != nil {
		panic(err)
	}
	e, err := election.New(election.Config{
		Lock: lock, Name: lease, LeaseDuration: t.lease, RenewDeadline: t.deadline, RetryPeriod: t.retry, RenewInterval: t.renew,
		KeepLeaseOnStop: !release, Logger: quiet,
		OnStartedLeading: func(ctx context.Context) {
			report(led, leadEvent{lease, id, time.Now()})
			<-ctx.Done() // a stop, or a move asked by placement
		},
	})
	if err != nil {
		panic(err)
	}
	return &tenureCandidate{name: lease, lock: lock, election: e}
}

// start runs the election until stop.
func (c *tenureCandidate) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.running = running{cancel, make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = c.election.Run(ctx)
	}()
}

var clientGo = implementation{name: "client-go", start: func(cs kubernetes.Interface, ns, lease, id string, t timings, release bool, led chan<- leadEvent) candidate {
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta: metav1.ObjectMeta{Namespace: ns, Name: lease}, Client: cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		},
		LeaseDuration: t.lease, RenewDeadline: t.deadline, RetryPeriod: t.retry, ReleaseOnCancel: release, Name: lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				report(led, leadEvent{lease, id, time.Now()})
				<-ctx.Done()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := running{cancel, make(chan struct{})}
	go func() {
		defer close(r.done)
		le.Run(ctx)
	}()
	return r
}}

// group stops candidates together.
type group struct {
	mu   sync.Mutex
	all  []candidate
	stop []func()
}

func (g *group) add(c candidate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.all = append(g.all, c)
}

func (g *group) stopAll() {
	g.mu.Lock()
	all := g.all
	g.all = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(c.stop)
	}
	wg.Wait()
}
