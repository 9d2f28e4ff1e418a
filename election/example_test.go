package election_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
)

// The seed's "Basic Leader Election": every replica of a Deployment runs
// this, with its pod name as identity; one at a time runs the leader work.
// On SIGTERM the leader work is cancelled, and once it has returned the
// Lease is released so that a standby takes over at once.
func Example_lease() {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	lock, err := locks.NewLeaseLock(client.CoordinationV1(), "default", "my-controller",
		locks.WithIdentity(os.Getenv("POD_NAME")))
	if err != nil {
		log.Fatal(err)
	}
	e, err := election.New(election.Config{
		Lock:          lock,
		LeaseDuration: 15 * time.Second,
		RenewDeadline: 10 * time.Second,
		RetryPeriod:   2 * time.Second,
		OnStartedLeading: func(ctx context.Context) {
			term, _ := election.TermFromContext(ctx)
			log.Printf("leading with fencing token %d", term.FencingToken)
			<-ctx.Done() // reconcile until the term ends
		},
		OnStoppedLeading: func() { log.Print("stopped leading") },
		OnNewLeader:      func(identity string) { log.Printf("leader is now %s", identity) },
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := e.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// An election on an in-process lock: the leader work learns its term, and
// after it returns the lock is released.
func Example() {
	ctx := context.Background()
	lock := locks.NewMemoryLock("my-controller")
	// A free record, as a released lock is. A lock that does not exist yet
	// is created only after LeaseDuration (see the package documentation).
	if _, err := lock.Create(ctx, locks.Record{}); err != nil {
		log.Fatal(err)
	}
	e, err := election.New(election.Config{
		Lock:          lock,
		Identity:      "pod-a",
		LeaseDuration: 15 * time.Second,
		RenewDeadline: 10 * time.Second,
		RetryPeriod:   2 * time.Second,
		OnStartedLeading: func(ctx context.Context) {
			term, _ := election.TermFromContext(ctx)
			fmt.Printf("%s leads %s, fencing token %d\n", term.Identity, term.Election, term.FencingToken)
			// Returning ends the term; a long-running leader would wait
			// for <-ctx.Done() instead.
		},
		OnStoppedLeading: func() { fmt.Println("stopped leading") },
	})
	if err != nil {
		log.Fatal(err)
	}
	ok, err := e.Acquire(ctx)
	fmt.Println("acquired:", ok, err)
	go func() {
		// Run leads the acquired term, then campaigns again until stopped.
		for e.IsLeader() {
			time.Sleep(time.Millisecond)
		}
		_ = e.Stop(ctx)
	}()
	if err := e.Run(ctx); err != nil {
		log.Fatal(err)
	}
	obs, _ := lock.Get(ctx)
	fmt.Printf("holder after release: %q, transitions: %d\n", obs.Record.HolderIdentity, obs.Record.LeaderTransitions)
	// Output:
	// acquired: true <nil>
	// pod-a leads my-controller, fencing token 1
	// stopped leading
	// holder after release: "", transitions: 1
}

// kvStore stands for any store with compare-and-swap: a database row, an
// etcd key, a Consul key.
type kvStore struct {
	mu      sync.Mutex
	value   []byte
	version int // 0: no value
}

// kvLock keeps the record in a kvStore. A Lock needs only Get, Create,
// Update with an optimistic version, and Describe; package locks/lockstest
// checks that an implementation behaves as the election expects.
type kvLock struct {
	store *kvStore
	key   string
}

func (l kvLock) Get(ctx context.Context) (locks.Observed, error) {
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	if l.store.version == 0 {
		return locks.Observed{}, fmt.Errorf("get %s: %w", l.Describe(), locks.ErrNotFound)
	}
	obs := locks.Observed{Raw: l.store.value, Version: strconv.Itoa(l.store.version)}
	r, err := locks.DecodeRecord(l.store.value)
	if err != nil {
		return obs, fmt.Errorf("get %s: %w", l.Describe(), err)
	}
	obs.Record = r
	return obs, nil
}

func (l kvLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	return l.swap(0, r)
}

func (l kvLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	v, err := strconv.Atoi(version)
	if err != nil || v == 0 {
		return locks.Observed{}, fmt.Errorf("update %s: bad version %q", l.Describe(), version)
	}
	return l.swap(v, r)
}

// swap stores r if the store is at version old (0: empty).
func (l kvLock) swap(old int, r locks.Record) (locks.Observed, error) {
	raw, err := r.Encode()
	if err != nil {
		return locks.Observed{}, err
	}
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	switch {
	case old != 0 && l.store.version == 0:
		return locks.Observed{}, fmt.Errorf("update %s: %w", l.Describe(), locks.ErrNotFound)
	case l.store.version != old:
		return locks.Observed{}, fmt.Errorf("write %s: %w", l.Describe(), locks.ErrConflict)
	}
	l.store.value, l.store.version = raw, old+1
	return locks.Observed{Record: r, Raw: raw, Version: strconv.Itoa(l.store.version)}, nil
}

func (l kvLock) Describe() string { return "kv/" + l.key }

// A custom lock: two candidates on one kvLock, one leads at a time.
func Example_customLock() {
	store := &kvStore{}
	if _, err := (kvLock{store, "jobs"}).Create(context.Background(), locks.Record{}); err != nil {
		log.Fatal(err)
	}
	ids := []string{"a", "b"}
	var candidates []*election.Election
	for _, id := range ids {
		e, err := election.New(election.Config{
			Lock: kvLock{store, "jobs"}, Name: "jobs", Identity: id,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			OnStartedLeading: func(ctx context.Context) { <-ctx.Done() },
		})
		if err != nil {
			log.Fatal(err)
		}
		candidates = append(candidates, e)
	}
	for i, e := range candidates {
		ok, err := e.TryAcquireOrRenew(context.Background())
		fmt.Printf("%s: leader %v, err %v, sees %s lead\n", ids[i], ok, errors.Unwrap(err), e.Leader())
	}
	// Output:
	// a: leader true, err <nil>, sees a lead
	// b: leader false, err <nil>, sees a lead
}

// A timing that breaks one of New's rules is a *TimingError: a program
// that reads its timings from its own keys words the error with them.
func ExampleTimingError() {
	_, err := election.New(election.Config{
		Lock:          locks.NewMemoryLock("my-controller"),
		Identity:      "pod-a",
		LeaseDuration: 15 * time.Second,
		RenewDeadline: 10 * time.Second,
		RetryPeriod:   9 * time.Second,
	})
	fmt.Println(err)
	var te *election.TimingError
	if errors.As(err, &te) {
		flags := map[string]string{"LeaseDuration": "--lease", "RenewDeadline": "--deadline", "RetryPeriod": "--retry"}
		fmt.Println(te.Message(func(field string) string { return flags[field] }))
	}
	// Output:
	// election my-controller: RenewDeadline 10s must exceed RetryPeriod 9s × 1.2 = 10.8s
	// --deadline 10s must exceed --retry 9s × 1.2 = 10.8s
}
