package locks_test

// Adversarial tests of Lease locks that follow their Lease (review of
// c8ad353).

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/locks/lockstest"
)

// TestCacheNotTrustedAfterTheServerSaidNotFound: once the API
// server has told a handle that its Lease is gone (an update or a read
// answered NotFound), the handle's reads must not return the Lease from a
// cache that has not seen the deletion (here the watch connection is
// half-open: established, delivering nothing). Otherwise a candidate whose
// last knowledge is a free record keeps patching a deleted Lease, every
// retry period, and never observes it missing (so never re-creates it),
// for as long as the watch stays silent.
func TestCacheNotTrustedAfterTheServerSaidNotFound(t *testing.T) {
	ns := kubetest.Namespace(t)
	proxy, watchClient := kubetest.ViaProxy(t, 0)
	direct := kubetest.Client(t)
	l, err := locks.NewLeaseLock(kubetest.SplitLeases(direct, watchClient), ns, "lock")
	require.NoError(t, err)
	free, err := l.Create(bg(t), lockstest.Held("", time.Now(), 0))
	require.NoError(t, err)
	follow(t, l)
	require.Eventually(t, func() bool {
		got, err := l.Get(bg(t))
		return err == nil && got.Version == free.Version
	}, 10*time.Second, 5*time.Millisecond, "the cache has the free Lease")

	proxy.StallOpen() // the watch stays established but delivers nothing
	require.NoError(t, direct.CoordinationV1().Leases(ns).Delete(bg(t), "lock", metav1.DeleteOptions{}))

	_, err = l.Update(bg(t), free.Version, lockstest.Held("b", time.Now(), 1))
	require.ErrorIs(t, err, locks.ErrNotFound, "the API server says the Lease is gone")
	require.False(t, locks.WatchBroken(l), "the watch looks established")
	_, err = l.Get(bg(t))
	assert.ErrorIs(t, err, locks.ErrNotFound, "a read after the API server said NotFound returned the deleted Lease from the cache")

	_, err = l.GetFromServer(bg(t))
	require.ErrorIs(t, err, locks.ErrNotFound)
	_, err = l.Get(bg(t))
	assert.ErrorIs(t, err, locks.ErrNotFound, "a read right after GetFromServer said NotFound returned the deleted Lease from the cache")
	proxy.Heal()
}
