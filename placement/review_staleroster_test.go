package placement

// From the second placement review: a member record that nobody renews any more is live
// for a whole lease for every roster that starts after it stopped changing.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenure/tenure/locks"
)

// staleMemberLease is the member record of a replica that stopped renewing
// it an hour ago: it was killed (OOM, kill -9, node loss) without Leave,
// and its Lease has no owner (no $POD_UID), or its Pod is still there (a
// container restart gives the replica a new identity; the old record stays
// until the Pod goes).
func staleMemberLease(ns, identity string, components string) *coordinationv1.Lease {
	secs := int32(3)
	renewed := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: MemberLeaseName(identity), Namespace: ns, ResourceVersion: "7",
			Labels:      map[string]string{LabelMember: "true", LabelGroup: ""},
			Annotations: map[string]string{AnnotationComponents: components, AnnotationStarted: time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339Nano)},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &identity, LeaseDurationSeconds: &secs, AcquireTime: &renewed, RenewTime: &renewed},
	}
}

func syncedRoster(t *testing.T, roster *LeaseRoster) {
	t.Helper()
	t.Cleanup(roster.Close)
	require.Eventually(t, roster.Synced, 5*time.Second, 5*time.Millisecond)
}

// TestNeverRenewedRecordIsNotLiveForANewRoster: the record of "dead" was
// last renewed an hour ago, with a lease of 3s. A roster that starts now
// (a replica that just started, and so the coordinator a rolling update
// makes of it) first sees that version now, and takes the record as live
// for 3s from now: Members lists "dead". It must not: the record says
// itself that it expired an hour ago.
func TestNeverRenewedRecordIsNotLiveForANewRoster(t *testing.T) {
	cs := fake.NewClientset(staleMemberLease("ns", "dead", "x,y"))
	roster, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second)
	require.NoError(t, err)
	syncedRoster(t, roster)
	var ids []string
	for _, m := range roster.Members() {
		ids = append(ids, m.Identity)
	}
	assert.NotContains(t, ids, "dead", "a record last renewed an hour ago, with a lease of 3s, is listed as a live member")
}

// TestCoordinatorDoesNotHandLeadershipsToADeadMember: the consequence.
// Sequence: "a" is live (announces now) and leads x and y; the stale
// record of "dead" (last renewed an hour ago) is read by a coordinator
// whose roster just started. Plan sees a 2/0 spread and asks "a" to hand x
// over to "dead". "a" drains x's work and writes the lock over to "dead",
// which never takes it: x has no leader until the lease expires (and the
// next coordinator that just started does it again).
func TestCoordinatorDoesNotHandLeadershipsToADeadMember(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(staleMemberLease("ns", "dead", "x,y"))
	roster, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second)
	require.NoError(t, err)
	require.NoError(t, roster.Announce(ctx, Member{Identity: "a", Components: []string{"x", "y"}, Started: time.Now()}))
	syncedRoster(t, roster)
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(roster.Members(), func(m Member) bool { return m.Identity == "a" })
	}, 5*time.Second, 5*time.Millisecond, "a listed")

	comps := map[string]Component{}
	holders := map[string]string{}
	for _, name := range []string{"x", "y"} {
		l := locks.NewMemoryLock(name)
		now := time.Now()
		_, err := l.Create(ctx, locks.Record{HolderIdentity: "a", LeaseDuration: 3 * time.Second, AcquireTime: now, RenewTime: now, LeaderTransitions: 1})
		require.NoError(t, err)
		comps[name] = Component{Lock: l}
		holders[name] = "a"
	}
	coord, err := NewCoordinator(CoordinatorConfig{Roster: roster, Components: comps, Holders: func() map[string]string { return holders }, Interval: time.Second})
	require.NoError(t, err)
	for _, m := range coord.Round(ctx) {
		assert.NotEqual(t, "dead", m.To, "asked %s to be handed to a member whose record was last renewed an hour ago", m.Component)
	}
}
