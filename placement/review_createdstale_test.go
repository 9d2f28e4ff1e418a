package placement

// From the third placement review: a member record made after a roster's first list is taken
// as "seen to change" at the moment Members is first called, however long ago it was
// made, so a record nobody has renewed for an hour is live for a whole lease.

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestLeaseRosterRecordMadeAfterTheListIsNotLiveForever. Interleaving
// (lease 3s, one namespace, one placement group):
//
//  1. Replica S starts: its LeaseRoster lists the member records (none)
//     and watches. S is not the coordinator, so nothing calls
//     S's roster.Members() for now.
//  2. Replica "late" starts after S (a new revision's Pod, or a container
//     restart: the identity has a per-process suffix): its record is made
//     after S's first list, so S's event handler sets created["late"].
//  3. "late" dies at once (OOM, crash loop, node loss); its record stays
//     (deploy/ sets no $POD_UID, and a container restart keeps the Pod).
//  4. An hour later S shuts down: handOff calls roster.Members() for the
//     first time. The "late" record has no sighting yet, so Members
//     records one now, with changed = created["late"] = true, and skips
//     the renew-time check: "late" is live for a lease from now.
//  5. handOff's Plan sends S's leaderships to the newest, least loaded
//     eligible members: "late" gets y. S hands y's lock over to "late"
//     and exits (a stopping replica never takes a lock back): y has no
//     leader for a whole lease, though b could lead it.
//
// The same happens on a replica that becomes coordinator long after its
// roster started: its first rounds move leaderships to dead members.
func TestLeaseRosterRecordMadeAfterTheListIsNotLiveForever(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	cs := fake.NewClientset()
	reader, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second, WithClock(clk))
	require.NoError(t, err)
	syncedRoster(t, reader) // step 1

	writer, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second, WithClock(clk))
	require.NoError(t, err)
	t.Cleanup(writer.Close)
	require.NoError(t, writer.Announce(ctx, Member{Identity: "late", Components: []string{"x", "y"}, Started: clk.Now()})) // step 2
	require.Eventually(t, func() bool {
		reader.mu.Lock()
		defer reader.mu.Unlock()
		_, ok := reader.seen[MemberLeaseName("late")]
		return ok
	}, 5*time.Second, 5*time.Millisecond, "the reader's watch saw late's record made")

	clk.Step(time.Hour) // step 3: late died; nobody renews its record
	require.NoError(t, writer.Announce(ctx, Member{Identity: "b", Components: []string{"x", "y"}, Started: clk.Now()}))
	require.Eventually(t, func() bool { return len(reader.informer.GetStore().List()) == 2 }, 5*time.Second, 5*time.Millisecond)

	// Step 4: S's handOff, as framework/placement.go does it.
	members := reader.Members()
	s := Member{Identity: "s", Components: []string{"x", "y"}, Started: clk.Now().Add(-2 * time.Hour), ShuttingDown: true}
	members = append(members, s)
	moves := Plan(members, []Leadership{{Component: "x", Holder: "s"}, {Component: "y", Holder: "s"}})
	t.Logf("members %v; hand-off moves %v", ids(members), moves)
	assert.NotContains(t, ids(members), "late", "a record made after the first list and not renewed for an hour is live")
	for _, m := range moves {
		assert.NotEqual(t, "late", m.To, "the stopping replica hands %s to a member dead for an hour", m.Component)
	}
}

func ids(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Identity)
	}
	return out
}

// TestLeaseRosterChangeIsTimedWhenSeenNotWhenRead: the same root cause
// for a record that was listed. Interleaving (lease 3s):
//
//  1. S's roster lists "d"'s record; S is coordinator for a while, so its
//     Members() records a sighting of d's version v1.
//  2. S loses the coordinator election (a partition, a restart of the
//     API server): nothing calls its Members() any more.
//  3. d renews (v2), then dies; an hour passes.
//  4. S calls Members() again (it stops: handOff; or wins the
//     coordinator election back): v2 != v1, so the sighting is "changed,
//     now": d is live for a lease, though it was last renewed an hour ago.
func TestLeaseRosterChangeIsTimedWhenSeenNotWhenRead(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	cs := fake.NewClientset()
	writer, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second, WithClock(clk))
	require.NoError(t, err)
	t.Cleanup(writer.Close)
	d := Member{Identity: "d", Components: []string{"x"}, Started: clk.Now()}
	require.NoError(t, writer.Announce(ctx, d))
	reader, err := NewLeaseRoster(cs.CoordinationV1(), "ns", 3*time.Second, WithClock(clk))
	require.NoError(t, err)
	syncedRoster(t, reader)
	require.Equal(t, []string{"d"}, ids(reader.Members()), "step 1") // sighting of v1

	clk.Step(time.Second)
	name := MemberLeaseName("d")
	// step 3: v2, d's last renewal (the fake clientset keeps resource
	// versions as written: write one, as an API server would)
	lease, err := cs.CoordinationV1().Leases("ns").Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	renew := metav1.NewMicroTime(clk.Now())
	lease.Spec.RenewTime = &renew
	lease.ResourceVersion = "2"
	_, err = cs.CoordinationV1().Leases("ns").Update(ctx, lease, metav1.UpdateOptions{})
	require.NoError(t, err)
	// The sighting, not the store: an informer updates its store before
	// it hands the event to the roster's handler, and a step of the clock
	// in between would time the sighting an hour late (a flaky test under
	// load, not the roster).
	require.Eventually(t, func() bool {
		reader.mu.Lock()
		defer reader.mu.Unlock()
		return reader.seen[name].version == "2"
	}, 5*time.Second, 5*time.Millisecond, "the reader's watch has v2")
	clk.Step(time.Hour)

	assert.NotContains(t, ids(reader.Members()), "d", "step 4: a record last renewed an hour ago is live")
}
