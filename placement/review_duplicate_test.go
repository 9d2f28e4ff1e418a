package placement

// From the second placement review: two member records with one identity.

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
)

// TestPlanWithTwoRecordsOfOneIdentityIgnoresOrder: Plan promises the
// same moves for the same input in any order. Two members of one identity
// (see the roster test below for how a LeaseRoster returns them) make it
// depend on the order: byID keeps the last, so "a" is eligible in one
// order and shutting down in the other. Sequence: members [a, a (shutting
// down), b], a leads x and b leads y: x moves a→b in one order and stays
// in the other; LeaseRoster.Members sorts by identity with an unstable sort over
// the informer's store (a map), so the coordinator's rounds alternate.
func TestPlanWithTwoRecordsOfOneIdentityIgnoresOrder(t *testing.T) {
	a := Member{Identity: "a", Components: []string{"x", "y"}, Started: t0}
	aStopping := a
	aStopping.ShuttingDown = true
	b := Member{Identity: "b", Components: []string{"x", "y"}, Started: t0}
	ls := []Leadership{{Component: "x", Holder: "a"}, {Component: "y", Holder: "b"}}
	one := Plan([]Member{a, aStopping, b}, ls)
	other := Plan([]Member{aStopping, a, b}, ls)
	assert.Equal(t, one, other, "the same members in another order give other moves")
}

// TestLeaseRosterIgnoresAForeignRecordOfAnIdentity: a Lease labelled
// tenure.dev/member=true whose holderIdentity is "a" but whose name is not
// MemberLeaseName("a") (copied with kubectl, left by a tool, or written
// by hand) is read as a second member "a", shutting down here, beside a's
// own record. Members must not list one identity twice (the record at
// MemberLeaseName(identity) is the identity's).
func TestLeaseRosterIgnoresAForeignRecordOfAnIdentity(t *testing.T) {
	ctx := context.Background()
	id := "a"
	secs := int32(30)
	now := metav1.NewMicroTime(time.Now())
	foreign := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "tenure-member-copy-of-a", Namespace: "ns",
			Labels:      map[string]string{LabelMember: "true", LabelGroup: ""},
			Annotations: map[string]string{AnnotationComponents: "x,y", AnnotationShuttingDown: "true"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, RenewTime: &now},
	}
	cs := fake.NewClientset(foreign)
	roster, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 30*time.Second)
	require.NoError(t, err)
	require.NoError(t, roster.Announce(ctx, Member{Identity: "a", Components: []string{"x", "y"}, Started: time.Now()}))
	syncedRoster(t, roster)
	require.Eventually(t, func() bool { return len(roster.Members()) > 0 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // both in the store
	var ids []string
	for _, m := range roster.Members() {
		ids = append(ids, m.Identity)
	}
	assert.Equal(t, slices.Compact(slices.Clone(ids)), ids, "one identity listed twice: %v", ids)
}
