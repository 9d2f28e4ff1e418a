package locks_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
)

// A Lease lock, the recommended kind. A program passes its clientset
// (kubernetes.NewForConfig) and hands the lock to election.New, which
// makes these calls itself; here a fake clientset stands for the API
// server. Permissions lists the requests the lock makes, for the
// program's RBAC Role: list and watch are for the watch the lock follows
// while an election runs (see LeaseLock.Watch; WithoutWatch drops them).
func ExampleNewLeaseLock() {
	ctx := context.Background()
	clientset := fake.NewClientset()
	lock, err := locks.NewLeaseLock(clientset.CoordinationV1(), "default", "billing",
		locks.WithIdentity("pod-a"))
	if err != nil {
		log.Fatal(err)
	}

	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	record := locks.Record{
		HolderIdentity: "pod-a",
		LeaseDuration:  15 * time.Second,
		AcquireTime:    now,
		RenewTime:      now,
	}
	if _, err := lock.Create(ctx, record); err != nil {
		log.Fatal(err)
	}
	obs, err := lock.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(lock.Describe())
	fmt.Printf("holder %s, transitions %d, lease %v\n",
		obs.Record.HolderIdentity, obs.Record.LeaderTransitions, obs.Record.LeaseDuration)

	// Only one candidate creates the lock; the others read it instead.
	_, err = lock.Create(ctx, record)
	fmt.Println("second create conflicts:", errors.Is(err, locks.ErrConflict))

	for _, p := range lock.Permissions() {
		fmt.Println(p)
	}
	// Output:
	// leases/default/billing
	// holder pod-a, transitions 0, lease 15s
	// second create conflicts: true
	// get leases.coordination.k8s.io "billing" in namespace "default"
	// create leases.coordination.k8s.io in namespace "default"
	// patch leases.coordination.k8s.io "billing" in namespace "default"
	// list leases.coordination.k8s.io in namespace "default"
	// watch leases.coordination.k8s.io in namespace "default"
}

// loggedLock is a custom Lock: it keeps the record in another Lock (a
// MemoryLock here; a database row or an etcd key in a real one) and
// prints each call. A Lock needs Get, Create, Update at an optimistic
// version, and Describe.
type loggedLock struct {
	inner locks.Lock
}

func (l loggedLock) Get(ctx context.Context) (locks.Observed, error) {
	obs, err := l.inner.Get(ctx)
	fmt.Printf("get: holder %q, version %s\n", obs.Record.HolderIdentity, obs.Version)
	return obs, err
}

func (l loggedLock) Create(ctx context.Context, r locks.Record) (locks.Observed, error) {
	obs, err := l.inner.Create(ctx, r)
	fmt.Printf("create: holder %q, version %s\n", r.HolderIdentity, obs.Version)
	return obs, err
}

func (l loggedLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	obs, err := l.inner.Update(ctx, version, r)
	fmt.Printf("update at version %s: holder %q, version %s\n", version, r.HolderIdentity, obs.Version)
	return obs, err
}

func (l loggedLock) Describe() string { return "logged/" + l.inner.Describe() }

// A custom lock used by an election: implement the four methods of Lock,
// and run the behaviour suite of package locks/lockstest on your type
// (lockstest.Run in a test of its own) to check that it conflicts, reports
// missing records and returns when cancelled as an election relies on.
func Example_customLock() {
	ctx := context.Background()
	lock := loggedLock{inner: locks.NewMemoryLock("jobs")}
	// A free record, as a released lock is. (A lock that does not exist
	// yet is created only after a LeaseDuration: see package election.)
	if _, err := lock.Create(ctx, locks.Record{}); err != nil {
		log.Fatal(err)
	}
	e, err := election.New(election.Config{
		Lock:          lock,
		Name:          "jobs",
		Identity:      "pod-a",
		LeaseDuration: 15 * time.Second,
		RenewDeadline: 10 * time.Second,
		RetryPeriod:   2 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	leads, err := e.TryAcquireOrRenew(ctx)
	fmt.Println("pod-a leads:", leads, err)
	leads, err = e.TryAcquireOrRenew(ctx)
	fmt.Println("pod-a renewed:", leads, err)
	// Output:
	// create: holder "", version 1
	// get: holder "", version 1
	// update at version 1: holder "pod-a", version 2
	// pod-a leads: true <nil>
	// update at version 2: holder "pod-a", version 3
	// pod-a renewed: true <nil>
}
