package locks

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
)

// TestGoneLocksLeaveTheWatcher: the watcher's subscribers do not grow with
// locks that are gone.
func TestGoneLocksLeaveTheWatcher(t *testing.T) {
	cs := fake.NewClientset()
	w := NewLeaseWatcher(cs)
	kept, err := NewLeaseLock(cs.CoordinationV1(), "ns", "kept", WithWatcher(w))
	require.NoError(t, err)
	for range 100 {
		_, err := NewLeaseLock(cs.CoordinationV1(), "ns", "gone", WithWatcher(w))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		runtime.GC()
		return w.subscribers("ns") == 1
	}, 10*time.Second, 10*time.Millisecond, "the locks that are gone left; %d subscribers", w.subscribers("ns"))
	runtime.KeepAlive(kept)
}

// subscribers counts the change channels of the locks on namespace.
func (w *LeaseWatcher) subscribers(namespace string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	if nw, ok := w.byNS[namespace]; ok {
		for _, subs := range nw.subs {
			n += len(subs)
		}
	}
	return n
}
