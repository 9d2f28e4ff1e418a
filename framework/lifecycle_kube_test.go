package framework_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/faultproxy"
	"github.com/tenure/tenure/internal/kubetest"
)

// faults are the ways the network to the API server breaks.
var faults = map[string]func(p *faultproxy.Proxy){
	"block":      (*faultproxy.Proxy).Block,
	"stall":      (*faultproxy.Proxy).Stall,
	"stall open": (*faultproxy.Proxy).StallOpen,
}

// TestHealthFailsWhileTheLeaderIsCutOff cuts a leader off from the API
// server in each way a network breaks: its health check fails within
// renew_deadline + healthz_margin (and a little), and keeps failing while
// it is cut off, although its Lease's watch cache (which may still look
// established) answers reads.
func TestHealthFailsWhileTheLeaderIsCutOff(t *testing.T) {
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			proxy, cs := kubetest.ViaProxy(t, 0)
			led := newLedgers()
			var r *framework.Runner
			app := replica(t, "r1", fmt.Sprintf("namespace: %s\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 200ms\nhttp:\n  healthz_margin: 100ms\n", ns),
				fx.Options(withClient(cs), fx.Populate(&r)), recorded(led, "billing"))
			app.RequireStart()
			led.of("billing").Leader(t)
			check := r.HealthChecks()["billing"]
			require.NoError(t, check(nil))

			fault(proxy)
			cut := time.Now()
			require.Eventually(t, func() bool { return check(nil) != nil }, 5*time.Second, 10*time.Millisecond, "fails once cut off")
			t.Logf("failed %v after the cut", time.Since(cut).Truncate(time.Millisecond))
			assert.Never(t, func() bool { return check(nil) == nil }, 3*time.Second, 10*time.Millisecond, "passes while still cut off")
			assert.Empty(t, led.of("billing").Leaders(), "the term ended")
			proxy.Heal()
			app.RequireStop()
		})
	}
}

// TestStopIsBoundedWhileTheAPIServerIsUnreachable cuts a leader (with
// events) off from the API server and stops it: the stop returns within
// shutdown_timeout + renew_deadline (the release's bound) + the events'
// flush, and leaves no goroutine behind (the shared watch, the event
// broadcaster, the elections).
func TestStopIsBoundedWhileTheAPIServerIsUnreachable(t *testing.T) {
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			noLeaks(t)
			ns := kubetest.Namespace(t)
			proxy, cs := kubetest.ViaProxy(t, 0)
			led := newLedgers()
			app := replica(t, "r1", fmt.Sprintf("namespace: %s\nlease_duration: 2s\nrenew_deadline: 1500ms\nretry_period: 200ms\nshutdown_timeout: 1s\nevents: true\n", ns),
				withClient(cs), recorded(led, "billing"), recorded(led, "reports"))
			app.RequireStart()
			led.of("billing").Leader(t)
			led.of("reports").Leader(t)
			fault(proxy)
			start := time.Now()
			stopErr := make(chan error, 1)
			go func() { stopErr <- app.Stop(t.Context()) }()
			select {
			case err := <-stopErr:
				t.Logf("stopped in %v: %v", time.Since(start).Truncate(time.Millisecond), err)
			case <-time.After(1*time.Second + 1500*time.Millisecond + 2*time.Second + 2*time.Second):
				t.Fatal("the stop hangs while the API server is unreachable")
			}
		})
	}
}
