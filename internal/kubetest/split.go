package kubetest

import (
	"context"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// SplitLeases returns Lease clients that list and watch through watch and
// make every other request through direct: a LeaseLock made with it
// follows its Lease through watch's connection (see locks.LeaseLock.Watch),
// so that a test can break the watch alone. Locks made with the same
// SplitLeases share one watch per namespace.
func SplitLeases(direct, watch kubernetes.Interface) coordinationv1client.LeasesGetter {
	return &splitLeases{direct: direct.CoordinationV1(), watch: watch.CoordinationV1()}
}

type splitLeases struct {
	direct, watch coordinationv1client.LeasesGetter
}

func (s *splitLeases) Leases(namespace string) coordinationv1client.LeaseInterface {
	return splitLease{LeaseInterface: s.direct.Leases(namespace), watch: s.watch.Leases(namespace)}
}

type splitLease struct {
	coordinationv1client.LeaseInterface
	watch coordinationv1client.LeaseInterface
}

func (s splitLease) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	return s.watch.List(ctx, opts)
}

func (s splitLease) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return s.watch.Watch(ctx, opts)
}

// HeldWatches are Lease clients that pass every request on to inner,
// except that each Watch call waits until Release, ignoring its context,
// as a client wrapper that forgets the context would.
type HeldWatches struct {
	inner   coordinationv1client.LeasesGetter
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	freed   sync.Once
}

// HoldWatches returns HeldWatches over inner.
func HoldWatches(inner coordinationv1client.LeasesGetter) *HeldWatches {
	return &HeldWatches{inner: inner, entered: make(chan struct{}), release: make(chan struct{})}
}

// Leases implements coordinationv1client.LeasesGetter.
func (h *HeldWatches) Leases(namespace string) coordinationv1client.LeaseInterface {
	return heldLease{LeaseInterface: h.inner.Leases(namespace), h: h}
}

// Entered is closed once a Watch call is held.
func (h *HeldWatches) Entered() <-chan struct{} { return h.entered }

// Release lets the held Watch calls, and those to come, go on.
func (h *HeldWatches) Release() { h.freed.Do(func() { close(h.release) }) }

type heldLease struct {
	coordinationv1client.LeaseInterface
	h *HeldWatches
}

func (l heldLease) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	l.h.once.Do(func() { close(l.h.entered) })
	<-l.h.release
	return l.LeaseInterface.Watch(ctx, opts)
}
