package locks

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"
)

// TestOneWatchPerClientAndNamespace: the locks of one client and
// namespace share one watch, which starts with the first subscription
// and stops, its goroutines joined, with the last.
func TestOneWatchPerClientAndNamespace(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	leases := fake.NewClientset().CoordinationV1()
	lock := func(ns, name string, opts ...Option) *LeaseLock {
		l, err := NewLeaseLock(leases, ns, name, opts...)
		require.NoError(t, err)
		return l
	}
	a, b, other := lock("ns", "a"), lock("ns", "b"), lock("other", "a")
	assert.Zero(t, SharedWatches(), "making locks starts nothing")

	_, stopA := a.Watch()
	_, stopB := b.Watch()
	_, stopA2 := a.Watch()
	assert.Equal(t, 1, SharedWatches(), "one watch for the namespace")
	assert.Same(t, a.followed(), b.followed())
	_, stopOther := other.Watch()
	assert.Equal(t, 2, SharedWatches(), "a watch per namespace")

	stopA()
	stopA() // stopping twice is harmless
	assert.NotNil(t, a.followed(), "a still has a subscription")
	stopB()
	assert.Equal(t, 2, SharedWatches())
	stopA2()
	assert.Nil(t, a.followed())
	assert.Equal(t, 1, SharedWatches(), "the last subscription stops the watch")
	stopOther()
	assert.Zero(t, SharedWatches())

	// A new subscription starts a new watch.
	changes, stop := a.Watch()
	require.NotNil(t, changes)
	assert.Equal(t, 1, SharedWatches())
	stop()
	assert.Zero(t, SharedWatches())

	off := lock("ns", "off", WithoutWatch())
	changes, stop = off.Watch()
	assert.Nil(t, changes, "WithoutWatch: no watch")
	assert.Zero(t, SharedWatches())
	stop()
}

// TestWatchReportsChangesOnAFakeClient: the watch works with client-go's
// fake clientset too (plain list and watch).
func TestWatchReportsChangesOnAFakeClient(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	leases := fake.NewClientset().CoordinationV1()
	follower, err := NewLeaseLock(leases, "ns", "lock")
	require.NoError(t, err)
	leader, err := NewLeaseLock(leases, "ns", "lock", WithoutWatch())
	require.NoError(t, err)
	changes, stop := follower.Watch()
	defer stop()
	require.Eventually(t, func() bool { return WatchSynced(follower) && !WatchBroken(follower) }, 10*time.Second, time.Millisecond)
	_, err = leader.Create(t.Context(), Record{HolderIdentity: "a", LeaseDuration: 15 * time.Second, RenewTime: time.Now()})
	require.NoError(t, err)
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported")
	}
	got, err := follower.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "a", got.Record.HolderIdentity)
}
