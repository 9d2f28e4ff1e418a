package framework_test

// From the third placement review: the default placement group is the executable's base name,
// which distinct programs share more often than not in containers (/manager, /app,
// /server, main), silently leaving all but one program unbalanced.

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// TestTwoProgramsWithOneExecutableNameAreWarnedAbout: the default
// placement group is the executable's name, so two programs built as
// "/manager" in one namespace share one coordinator, which places only its
// own program's components: program Q (replicas q1, q2, components cc..ff)
// stays 4/0 while P (p1, component aa) coordinates. That is not silent: the
// coordinator warns, naming each member that runs none of its components,
// and says to set placement_group (TestTwoPlacementGroupsInOneNamespace
// shows that it then works).
func TestTwoProgramsWithOneExecutableNameAreWarnedAbout(t *testing.T) {
	noLeaks(t)
	space := locks.NewMemorySpace()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	ledP, ledQ := newLedgers(), newLedgers()
	var logs lockedBuffer
	p := replica(t, "p1", placedMemoryYAML, fx.Options(fx.Supply(space), fx.Supply(roster), fx.Decorate(func() *slog.Logger { return slog.New(slog.NewTextHandler(&logs, nil)) })), recorded(ledP, "aa"))
	p.RequireStart()
	defer p.RequireStop()
	require.Eventually(t, func() bool { return len(ledP.of("aa").Leaders()) == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // p1 is the coordinator
	names := []string{"cc", "dd", "ee", "ff"}
	var comps []components.Component
	for _, n := range names {
		comps = append(comps, recorded(ledQ, n))
	}
	q1 := replica(t, "q1", placedMemoryYAML, fx.Options(fx.Supply(space), fx.Supply(roster)), comps...)
	q1.RequireStart()
	defer q1.RequireStop()
	assert.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "runs none of the components this coordinator places") && strings.Contains(logs.String(), "member=q1")
	}, 5*time.Second, 20*time.Millisecond, "no warning that q1 is not placed; logs:\n%s", &logs)
}
