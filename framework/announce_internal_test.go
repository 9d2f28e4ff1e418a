package framework

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// failingRoster fails Announce while failing is set, counting every call.
type failingRoster struct {
	placement.Roster
	failing atomic.Bool
	calls   atomic.Int32
}

func (f *failingRoster) Announce(ctx context.Context, m placement.Member) error {
	f.calls.Add(1)
	if f.failing.Load() {
		return errors.New("injected: the apiserver is unavailable")
	}
	return f.Roster.Announce(ctx, m)
}

// TestAFailedAnnouncementIsRetriedSoon: a member record is renewed every
// (lease_duration - retry_period)/2, 950ms here; when one write fails the
// next is tried half a retry period later, not an interval later, so that
// one failure does not bring the record within one more failure of
// expiring. The placer's clock is fake: nothing but the retry can fire
// within the 50ms stepped.
func TestAFailedAnnouncementIsRetriedSoon(t *testing.T) {
	fake := clocktesting.NewFakeClock(time.Now())
	var r *Runner
	app := fxtest.New(t, Module,
		ConfigYAML("t", []byte("lock: memory\nidentity: r1\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 100ms\nplacement: balanced\n")),
		fx.Supply(locks.NewMemorySpace(), slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.NopLogger,
		Component(func() components.Component {
			return components.New("w", func(ctx context.Context) error { <-ctx.Done(); return nil })
		}),
		fx.Populate(&r),
	)
	require.NotNil(t, r.placer)
	roster := &failingRoster{Roster: r.placer.memory}
	r.placer.memory, r.clock = roster, fake
	app.RequireStart()
	defer app.RequireStop()

	// Settled: the campaign's kick has been announced, and no call comes
	// without the clock moving.
	require.Eventually(t, func() bool { return len(r.working()) == 1 }, 5*time.Second, time.Millisecond)
	settled := func() int32 {
		for {
			n := roster.calls.Load()
			time.Sleep(100 * time.Millisecond)
			if roster.calls.Load() == n {
				return n
			}
		}
	}
	n := settled()

	roster.failing.Store(true)
	require.Eventually(t, func() bool { return fake.HasWaiters() }, 5*time.Second, time.Millisecond)
	fake.Step(950 * time.Millisecond) // the periodic announcement, which fails
	require.Eventually(t, func() bool { return roster.calls.Load() == n+1 }, 5*time.Second, time.Millisecond)
	roster.failing.Store(false)
	n = settled()

	fake.Step(50 * time.Millisecond)
	assert.Eventually(t, func() bool { return roster.calls.Load() > n }, 2*time.Second, time.Millisecond,
		"no announcement half a retry period after a failed one: the record waits a whole interval")
	assert.Eventually(t, func() bool {
		for _, m := range roster.Members() {
			if m.Identity == "r1" {
				return true
			}
		}
		return false
	}, 2*time.Second, time.Millisecond, "r1's record is written again")
}
