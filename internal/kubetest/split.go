package kubetest

import (
	"context"

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
