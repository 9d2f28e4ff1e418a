package locks

// Adversarial tests of the shared Lease watches.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/tenure/tenure/internal/kubetest"
)

func reviewLease(name, holder string) *coordinationv1.Lease {
	secs := int32(15)
	now := metav1.NowMicro()
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now},
	}
}

// TestSubscriptionsRaceWithReadsAndWrites: handles on one client
// subscribe and unsubscribe at random while others read and the Leases
// change; nothing races, panics or leaks, and the last subscription
// leaves no watch behind.
func TestSubscriptionsRaceWithReadsAndWrites(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cs := fake.NewClientset()
	leases := cs.CoordinationV1() // one pointer: shared watches
	for _, name := range []string{"a", "b"} {
		_, err := leases.Leases("ns").Create(t.Context(), reviewLease(name, "x"), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	var handles []*LeaseLock
	for i := range 6 {
		l, err := NewLeaseLock(leases, "ns", []string{"a", "b"}[i%2])
		require.NoError(t, err)
		handles = append(handles, l)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, l := range handles {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			var stops []func()
			for ctx.Err() == nil {
				switch r.IntN(4) {
				case 0:
					_, stop := l.Watch()
					stops = append(stops, stop)
				case 1:
					if len(stops) > 0 {
						k := r.IntN(len(stops))
						stops[k]()
						stops = append(stops[:k], stops[k+1:]...)
					}
				default:
					obs, err := l.Get(context.Background())
					if err != nil {
						t.Errorf("get: %v", err)
						return
					}
					if obs.Record.HolderIdentity == "" {
						t.Errorf("read a record without holder: %+v", obs)
						return
					}
				}
			}
			for _, stop := range stops {
				stop()
			}
		})
	}
	wg.Go(func() {
		for n := 0; ctx.Err() == nil; n++ {
			name := []string{"a", "b"}[n%2]
			_, err := leases.Leases("ns").Update(context.Background(), reviewLease(name, fmt.Sprint("h", n)), metav1.UpdateOptions{})
			if err != nil {
				t.Errorf("update: %v", err)
				return
			}
			time.Sleep(time.Millisecond) // the fake's watchers hold 100 events
		}
	})
	wg.Wait()
	assert.Zero(t, SharedWatches(), "the last subscription stopped the watch")
	for _, l := range handles {
		assert.Nil(t, l.followed())
	}
}

// leasesFunc is a LeasesGetter that cannot key a map.
type leasesFunc func(namespace string) coordinationv1client.LeaseInterface

func (f leasesFunc) Leases(namespace string) coordinationv1client.LeaseInterface { return f(namespace) }

// taggedLeases is a comparable type holding a value that is not.
type taggedLeases struct {
	coordinationv1client.LeasesGetter
	tag any
}

// TestNonComparableGetters: a client that cannot key a map gives
// each lock a watch of its own, with no panic.
func TestNonComparableGetters(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	inner := fake.NewClientset().CoordinationV1()
	getters := map[string]coordinationv1client.LeasesGetter{
		"func":                        leasesFunc(inner.Leases),
		"struct holding a slice":      taggedLeases{LeasesGetter: inner, tag: []int{1}},
		"struct holding a map":        taggedLeases{LeasesGetter: inner, tag: map[string]int{}},
		"struct holding a comparable": taggedLeases{LeasesGetter: inner, tag: 1},
	}
	for name, g := range getters {
		t.Run(name, func(t *testing.T) {
			a, err := NewLeaseLock(g, "ns", "lock")
			require.NoError(t, err)
			b, err := NewLeaseLock(g, "ns", "lock")
			require.NoError(t, err)
			_, stopA := a.Watch()
			_, stopB := b.Watch()
			require.NotNil(t, a.followed())
			require.NotNil(t, b.followed())
			if name == "struct holding a comparable" {
				assert.Same(t, a.followed(), b.followed())
			} else {
				assert.NotSame(t, a.followed(), b.followed())
			}
			stopA()
			stopB()
			assert.Zero(t, SharedWatches())
		})
	}
}

// TestLastStopDoesNotWaitForAWatchCallThatIgnoresItsContext: the last
// subscription's stop joins the informer, which gives up on a Watch call
// that does not return on cancellation, so such a client does not hold up
// stop (and with it election.Run, Stop and a standalone Acquire).
func TestLastStopDoesNotWaitForAWatchCallThatIgnoresItsContext(t *testing.T) {
	g := kubetest.HoldWatches(fake.NewClientset().CoordinationV1())
	l, err := NewLeaseLock(g, "ns", "lock")
	require.NoError(t, err)
	_, stop := l.Watch()
	<-g.Entered() // the informer has listed and is in its first Watch call
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		g.Release()
		<-stopped
		t.Fatal("stop of the last subscription hung while the informer's Watch call ignored its cancellation")
	}
	g.Release()
}

// TestFreshnessWithIncomparableVersions: freshness documents that
// versions which cannot be compared make the cache distrusted; the floor
// check trusts them instead.
func TestFreshnessWithIncomparableVersions(t *testing.T) {
	var f freshness
	f.saw("b7")
	assert.False(t, f.trusts(true, "a1"), "a cached version that cannot be compared with what this handle saw is not trusted")
}

// TestFreshnessAfterGone: once the API server said the object is
// gone, the cache answers only with its absence or with a re-creation
// (a version newer than any the handle knew).
func TestFreshnessAfterGone(t *testing.T) {
	var f freshness
	f.saw("10")
	f.gone("12") // an update at 12 found nothing
	assert.True(t, f.trusts(false, ""), "absent")
	assert.False(t, f.trusts(true, "10"), "the deleted object as this handle saw it")
	assert.False(t, f.trusts(true, "12"), "the deleted object as the update knew it")
	assert.True(t, f.trusts(true, "13"), "a re-creation")

	var g freshness
	g.saw("10")
	g.gone("") // a read found nothing
	assert.False(t, g.trusts(true, "10"))
	assert.True(t, g.trusts(true, "11"))
}

// TestFakeClientsetGivesEachLockItsOwnWatch: client-go's fake
// clientset returns a new CoordinationV1 value on each call, so locks
// made from separate calls do not share a watch; each still follows its
// Lease.
func TestFakeClientsetGivesEachLockItsOwnWatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cs := fake.NewClientset()
	a, err := NewLeaseLock(cs.CoordinationV1(), "ns", "lock")
	require.NoError(t, err)
	b, err := NewLeaseLock(cs.CoordinationV1(), "ns", "lock")
	require.NoError(t, err)
	changesA, stopA := a.Watch()
	defer stopA()
	changesB, stopB := b.Watch()
	defer stopB()
	assert.NotSame(t, a.followed(), b.followed(), "a watch each")
	assert.Equal(t, 2, SharedWatches())
	require.Eventually(t, func() bool { return WatchSynced(a) && WatchSynced(b) && !WatchBroken(a) && !WatchBroken(b) }, 10*time.Second, time.Millisecond)
	_, err = cs.CoordinationV1().Leases("ns").Create(t.Context(), reviewLease("lock", "x"), metav1.CreateOptions{})
	require.NoError(t, err)
	for _, ch := range []<-chan struct{}{changesA, changesB} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no change reported")
		}
	}
}
