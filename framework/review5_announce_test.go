package framework

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/placement"
)

// TestReview5MakeUpAnnouncementWithinItsTimeout (fifth review): a model
// of the placer's announcement loop at client-go's 15s/10s/2s. A replica
// announces at 0 (landing at once), its announcement at `every` fails
// (the API is slow: it times out after announce's 2 × RetryPeriod), and
// the next, at 2 × every, succeeds within that same timeout but takes
// 2.5s to land. The member must stay live throughout: a failed
// announcement is "made up for before the record expires". With
// announceEvery = (LeaseDuration − RetryPeriod)/2 = 6.5s the make-up is
// sent a RetryPeriod (2s) before expiry, less than the announce timeout
// it is allowed (4s), and lands at 15.5s: the record has expired for half
// a second. With the old LeaseDuration/3 (5s) it lands at 12.5s.
func TestReview5MakeUpAnnouncementWithinItsTimeout(t *testing.T) {
	d := components.Settings{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	timeout := 2 * d.RetryPeriod       // placer.announce's
	latency := 2500 * time.Millisecond // of the make-up announcement: within timeout
	require.Less(t, latency, timeout)
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{
		{"announceEvery (this change)", announceEvery(d)},
		{"LeaseDuration/3 (before)", max(d.LeaseDuration/3, d.RetryPeriod)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
			clk := clocktesting.NewFakePassiveClock(start)
			roster := placement.NewMemoryRoster(clk, d.LeaseDuration)
			m := placement.Member{Identity: "r1", Components: []string{"default/a"}, Started: start}
			require.NoError(t, roster.Announce(context.Background(), m)) // at 0
			lands := 2*tc.every + latency                                // the one at every failed
			var missing []time.Duration
			for at := time.Duration(0); at <= lands+time.Second; at += 100 * time.Millisecond {
				clk.SetTime(start.Add(at))
				if at == lands {
					require.NoError(t, roster.Announce(context.Background(), m))
				}
				if len(roster.Members()) == 0 {
					missing = append(missing, at)
				}
			}
			t.Logf("every %v: make-up sent at %v, landed at %v; member missing at %v", tc.every, 2*tc.every, lands, missing)
			assert.Empty(t, missing, "the member's record lapsed although every announcement but one succeeded within its timeout")
		})
	}
}
