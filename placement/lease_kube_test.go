package placement_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/placement"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// TestLeaseRosterOnRealAPIServer: member records announced by two
// replicas are read back from the roster's watch; an operator's cordon
// survives announcements; a record that stops changing expires a lease
// after it was last seen to change, on the reader's clock; Leave deletes
// it; a hand-edited record with garbage is read as far as it can be.
func TestLeaseRosterOnRealAPIServer(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	r, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, 3*time.Second, placement.WithClock(clk))
	require.NoError(t, err)
	t.Cleanup(r.Close)

	started := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	a := placement.Member{Identity: "a", Components: []string{"billing", "reports"}, Started: started, Revision: "v1", Zone: "z1"}
	require.NoError(t, r.Announce(ctx, a))
	require.NoError(t, r.Announce(ctx, placement.Member{Identity: "Odd_B", ShuttingDown: true}))
	require.Eventually(t, func() bool { return len(r.Members()) == 2 }, 5*time.Second, 10*time.Millisecond)
	got := r.Members()
	assert.Equal(t, []placement.Member{{Identity: "Odd_B", ShuttingDown: true}, a}, got)

	// An operator cordons b; b's announcements leave that alone.
	name := placement.MemberLeaseName("Odd_B")
	lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	lease.Annotations[placement.AnnotationCordoned] = "true"
	lease.Annotations[placement.AnnotationStarted] = "not a time"
	_, err = cs.CoordinationV1().Leases(ns).Update(ctx, lease, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, r.Announce(ctx, placement.Member{Identity: "Odd_B"}))
	require.Eventually(t, func() bool {
		ms := r.Members()
		return len(ms) == 2 && ms[0].Cordoned && !ms[0].ShuttingDown
	}, 5*time.Second, 10*time.Millisecond, "cordoned by the operator, no longer shutting down")

	// a stops announcing: expired a lease after its record last changed.
	clk.Step(2 * time.Second)
	require.NoError(t, r.Announce(ctx, placement.Member{Identity: "Odd_B"}))
	require.Eventually(t, func() bool {
		r.Members()
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.Time.Equal(clk.Now().Truncate(time.Microsecond))
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(r.Members()) == 2 }, 5*time.Second, 10*time.Millisecond)
	clk.Step(time.Second)
	assert.Equal(t, []string{"Odd_B"}, ids(r.Members()), "a was not announced for a lease")

	require.NoError(t, r.Leave(ctx, "Odd_B"))
	require.NoError(t, r.Leave(ctx, "Odd_B"), "leaving twice is no error")
	require.Eventually(t, func() bool { return len(r.Members()) == 0 }, 5*time.Second, 10*time.Millisecond)
}

func ids(ms []placement.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Identity)
	}
	return out
}

func TestLeaseRosterRejectsBadInput(t *testing.T) {
	cs := kubetest.Client(t)
	_, err := placement.NewLeaseRoster(nil, "ns", 3*time.Second)
	assert.ErrorContains(t, err, "client is nil")
	_, err = placement.NewLeaseRoster(cs.CoordinationV1(), "Not A Namespace", 3*time.Second)
	assert.ErrorContains(t, err, `namespace "Not A Namespace"`)
	_, err = placement.NewLeaseRoster(cs.CoordinationV1(), "ns", time.Millisecond)
	assert.ErrorContains(t, err, "under a second")
}
