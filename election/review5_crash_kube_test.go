package election_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubetest"
	"github.com/tenure/tenure/internal/leadertest"
)

// TestReview5CrashJustBeforeARenewal (fifth review): testCrashFailOver's
// bound (taken over no sooner than kLease − 2 × kRetry after the crash,
// "the follower last saw a renewal at most about one retry period before
// the crash") assumes renewals every retry period. The test crashes the
// leader as soon as it leads, right after its acquisition, so it never
// sees the new cadence. Crashing it just before its first renewal (the
// default renew interval here is 750ms) the follower, which saw the
// acquisition 0.7s before the crash, rightly takes over about 1.3s after
// it: the existing bound would call that too early.
func TestReview5CrashJustBeforeARenewal(t *testing.T) {
	cs := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	led := leadertest.New()
	makeLock := lockKinds["lease"]
	crashing := func(c *election.Config) { c.KeepLeaseOnStop = true }
	cands := map[string]*kubeCandidate{}
	for _, id := range []string{"a", "b"} {
		cands[id] = startCandidate(t, makeLock(t, cs, ns, "lock", id), led, crashing)
	}
	leader := led.Leader(t)
	started := led.Started(leader)
	time.Sleep(time.Until(started.Add(700 * time.Millisecond))) // before the first renewal (≥ 750ms)
	crashed := time.Now()
	cands[leader].stop()
	next := led.Leader(t)
	took := led.Started(next).Sub(crashed)
	t.Logf("crashed %v after the acquisition (renew interval %v); taken over %v after the crash, %v after the acquisition",
		crashed.Sub(started), election.DefaultRenewIntervalForTest(kDeadline, kRetry), took, led.Started(next).Sub(started))
	assert.GreaterOrEqual(t, led.Started(next).Sub(started), kLease, "never before a lease after the last change the follower saw")
	assert.Greater(t, took, kLease-2*kRetry, "testCrashFailOver's bound")
	led.Check(t)
}
