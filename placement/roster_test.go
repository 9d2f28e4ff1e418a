package placement

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestMemoryRosterExpiresRecordsNotAnnouncedForALease(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	r := NewMemoryRoster(clk, 3*time.Second)
	ctx := context.Background()
	require.NoError(t, r.Announce(ctx, Member{Identity: "b", Components: []string{"x"}}))
	require.NoError(t, r.Announce(ctx, Member{Identity: "a"}))
	assert.Equal(t, []string{"a", "b"}, identities(r.Members()))
	clk.SetTime(t0.Add(2 * time.Second))
	require.NoError(t, r.Announce(ctx, Member{Identity: "a"}))
	clk.SetTime(t0.Add(3 * time.Second))
	assert.Equal(t, []string{"a"}, identities(r.Members()), "b was not announced for a lease")
	require.NoError(t, r.Leave(ctx, "a"))
	assert.Empty(t, r.Members())
	assert.Error(t, r.Announce(ctx, Member{}), "a member needs an identity")
}

func identities(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Identity)
	}
	return out
}

func TestMemberLeaseNames(t *testing.T) {
	assert.Regexp(t, `^tenure-member-pod-1-[0-9a-f]{16}$`, MemberLeaseName("pod-1"))
	odd := MemberLeaseName("Pod_1/x")
	assert.Regexp(t, `^tenure-member-pod-1-x-[0-9a-f]{16}$`, odd)
	assert.Regexp(t, `^tenure-member-[0-9a-f]{16}$`, MemberLeaseName("_/."))
	assert.NotEqual(t, MemberLeaseName("Pod_1"), MemberLeaseName("pod-1"), "identities that look alike get Leases of their own")
	long := MemberLeaseName(string(make([]byte, 1000)) + "a")
	assert.LessOrEqual(t, len(long), 253)
	assert.Equal(t, "tenure-placement", CoordinatorLeaseName(""))
	assert.Regexp(t, `^tenure-placement-my-app-[0-9a-f]{16}$`, CoordinatorLeaseName("My_App"))
	assert.Equal(t, "tenure-placement-my-app", CoordinatorLeaseName("my-app"), "a valid name is kept, for a Role's resourceNames")
}
