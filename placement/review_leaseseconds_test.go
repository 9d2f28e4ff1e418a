package placement

// From the third placement review: a LeaseRoster's records say a shorter lease than the
// roster's, truncated to whole seconds (the locks round up: durationSeconds).

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestLeaseRosterRecordLivesItsWholeLease. Interleaving (framework,
// lease_duration 1500ms, renew_deadline 1450ms, retry_period 1200ms: valid
// timings for a Lease lock): the placer announces every max(lease/3,
// retry_period) = 1.2s; each record says leaseDurationSeconds
// int32(1.5s/1s) = 1, and every reader expires it 1s after it saw it
// change. Each member drops out of every roster for ~0.2s of each 1.2s
// (longer with the API's latency): a coordinator round there counts
// its leaderships for nobody, balances the rest among the others, and
// withdraws moves asked to it; the next round undoes that.
//
// NewLeaseRoster says its records expire lease after they last changed:
// 1.2s after a change, the record must still be live.
func TestLeaseRosterRecordLivesItsWholeLease(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	cs := fake.NewClientset()
	roster, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 1500*time.Millisecond, WithClock(clk))
	require.NoError(t, err)
	syncedRoster(t, roster)
	require.NoError(t, roster.Announce(ctx, Member{Identity: "a", Components: []string{"x"}, Started: clk.Now()}))
	require.Eventually(t, func() bool { return len(roster.Members()) == 1 }, 5*time.Second, 5*time.Millisecond)
	clk.Step(1200 * time.Millisecond) // the next announcement is due now
	assert.Equal(t, []string{"a"}, ids(roster.Members()), "a record 1.2s after its last change, with a lease of 1.5s, is expired")
}
