package placement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLeaseRosterSyncsOnAFakeClient: the roster's informer lists and then
// watches, as the locks' own do (see internal/listwatch), rather than
// stream its list through the watch (client-go's WatchListClient, on by
// default), which client-go's fake clients never end: on a fake client a
// roster that streamed would never sync, and a program tested with one
// would never be placed. No test of this package turns the gate off.
func TestLeaseRosterSyncsOnAFakeClient(t *testing.T) {
	cs := fake.NewClientset(staleMemberLease("ns", "someone", "x"))
	roster, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second)
	require.NoError(t, err)
	defer roster.Close()
	require.Eventually(t, roster.Synced, 5*time.Second, 10*time.Millisecond, "the roster never syncs on a fake client")
}
