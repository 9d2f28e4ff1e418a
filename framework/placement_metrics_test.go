package framework_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// TestPlacementMetrics: two replicas sharing memory locks and a roster,
// four components: once 2/2, each replica's tenure.placement.share is 2,
// and the moves that made it are counted by the coordinator, by component.
func TestPlacementMetrics(t *testing.T) {
	noLeaks(t)
	led := newLedgers()
	space := locks.NewMemorySpace()
	roster := placement.NewMemoryRoster(nil, 2*time.Second)
	names := []string{"aa", "bb", "cc", "dd"}
	readers := map[string]*sdkmetric.ManualReader{}
	apps := map[string]*fxtest.App{}
	for _, id := range []string{"r1", "r2"} {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		readers[id] = reader
		var comps []components.Component
		for _, n := range names {
			comps = append(comps, recorded(led, n))
		}
		apps[id] = replica(t, id, placedMemoryYAML, fx.Options(fx.Supply(space), fx.Supply(roster),
			fx.Supply(fx.Annotate(mp, fx.As(new(metric.MeterProvider))))), comps...)
		apps[id].RequireStart()
		time.Sleep(200 * time.Millisecond)
	}
	defer func() {
		for _, a := range apps {
			a.RequireStop()
		}
	}()
	require.Eventually(t, func() bool {
		s, ok := shares(led, names)
		return ok && s["r1"] == 2 && s["r2"] == 2
	}, 10*time.Second, 20*time.Millisecond, "2/2")
	collect := func(id string) (share int64, moves map[string]int64) {
		var rm metricdata.ResourceMetrics
		require.NoError(t, readers[id].Collect(context.Background(), &rm))
		moves = map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Gauge[int64]:
					if m.Name == "tenure.placement.share" {
						share = d.DataPoints[0].Value
					}
				case metricdata.Sum[int64]:
					if m.Name == "tenure.placement.moves" {
						for _, p := range d.DataPoints {
							v, _ := p.Attributes.Value("tenure.election.name")
							moves[v.AsString()] += p.Value
						}
					}
				}
			}
		}
		return share, moves
	}
	assert.Eventually(t, func() bool {
		s1, _ := collect("r1")
		s2, _ := collect("r2")
		return s1 == 2 && s2 == 2
	}, 5*time.Second, 20*time.Millisecond, "each replica's share is 2")
	_, m1 := collect("r1")
	_, m2 := collect("r2")
	total := int64(0)
	for _, n := range names {
		total += m1[n] + m2[n]
	}
	assert.GreaterOrEqual(t, total, int64(2), "the two moves that made 2/2 are counted: %v %v", m1, m2)
}

// TestLeadersShowsTheHandOverUnderWay: a leader asked to move whose work
// winds down slowly says on /leaders whom it hands over to.
func TestLeadersShowsTheHandOverUnderWay(t *testing.T) {
	noLeaks(t)
	space := locks.NewMemorySpace()
	finish := make(chan struct{})
	var r *framework.Runner
	app := replica(t, "r1", memoryYAML+"placement: none\n", fx.Options(fx.Supply(space), fx.Populate(&r)),
		components.New("billing", func(ctx context.Context) error {
			<-ctx.Done()
			<-finish // winding down
			return nil
		}))
	app.RequireStart()
	defer app.RequireStop()
	leaders := func() []map[string]any {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/leaders", nil))
		var out []map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		return out
	}
	require.Eventually(t, func() bool { return leaders()[0]["self"] == true }, 5*time.Second, 10*time.Millisecond, "r1 leads")
	assert.NotContains(t, leaders()[0], "handOverTo")
	_, err := placement.Request(context.Background(), space.Lock("default/billing"), "r1", "r2")
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return leaders()[0]["handOverTo"] == "r2" }, 5*time.Second, 10*time.Millisecond, "/leaders: %v", leaders())
	close(finish)
}
