package election

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// collect returns the candidate's metrics by name.
func (c *candidate) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, c.metrics.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func attemptCount(t *testing.T, data metricdata.Aggregation, op, outcome string) int64 {
	t.Helper()
	sum, ok := data.(metricdata.Sum[int64])
	require.True(t, ok)
	for _, dp := range sum.DataPoints {
		o, _ := dp.Attributes.Value(attrOperation)
		out, _ := dp.Attributes.Value(attrOutcome)
		if o.AsString() == op && out.AsString() == outcome {
			el, _ := dp.Attributes.Value(attrElection)
			assert.Equal(t, "test", el.AsString())
			assert.Equal(t, 3, dp.Attributes.Len(), "bounded attributes: election, operation, outcome")
			return dp.Value
		}
	}
	return 0
}

func TestAttemptMetrics(t *testing.T) {
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	b := newCandidate(t, mem, "b", epoch)
	require.True(t, a.try(t))
	for range 2 {
		a.clock.Step(time.Second) // the record keeps whole seconds
		require.True(t, a.try(t))
	}
	require.False(t, b.try(t))
	release(t, a.Election)

	am := a.collect(t)
	assert.Equal(t, int64(1), attemptCount(t, am[metricAttempts], "acquire", outcomeAcquired))
	assert.Equal(t, int64(2), attemptCount(t, am[metricAttempts], "renew", outcomeRenewed))
	assert.Equal(t, int64(1), attemptCount(t, am[metricAttempts], "release", outcomeReleased))
	hist, ok := am[metricRenewDuration].(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, hist.DataPoints, 1)
	assert.Equal(t, uint64(2), hist.DataPoints[0].Count)
	assert.Equal(t, int64(1), attemptCount(t, b.collect(t)[metricAttempts], "acquire", outcomeHeld))
}

func gauge[N int64 | float64](t *testing.T, data metricdata.Aggregation) (N, bool) {
	t.Helper()
	g, ok := data.(metricdata.Gauge[N])
	if !ok || len(g.DataPoints) == 0 {
		return 0, false
	}
	require.Len(t, g.DataPoints, 1)
	assert.Equal(t, attribute.NewSet(attrElection.String("test")), g.DataPoints[0].Attributes)
	return g.DataPoints[0].Value, true
}

func TestGaugesWhileRunning(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")
	a.clock.Step(retry / 2)

	m := a.collect(t)
	leader, ok := gauge[int64](t, m[metricLeader])
	require.True(t, ok)
	assert.Equal(t, int64(1), leader)
	transitions, _ := gauge[int64](t, m[metricTransitions])
	assert.Equal(t, int64(1), transitions)
	first, ok := gauge[float64](t, m[metricTimeToLeadership])
	require.True(t, ok)
	assert.Equal(t, 0.0, first, "led at once on the fake clock")
	since, ok := gauge[float64](t, m[metricSinceLastRenewal])
	require.True(t, ok)
	assert.Equal(t, (retry / 2).Seconds(), since)

	b := newCandidate(t, mem, "b", epoch)
	b.run(t)
	waitFor(t, func() bool { return b.Leader() == "a" }, "b sees a")
	bm := b.collect(t)
	bLeader, _ := gauge[int64](t, bm[metricLeader])
	assert.Equal(t, int64(0), bLeader)
	bTransitions, ok := gauge[int64](t, bm[metricTransitions])
	assert.True(t, ok, "a follower reports the transitions it saw")
	assert.Equal(t, int64(1), bTransitions)
	_, ok = gauge[float64](t, bm[metricSinceLastRenewal])
	assert.False(t, ok, "only a leader reports time since renewal")
}

func TestTermSpanCarriesTheWork(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	workSpan := make(chan trace.SpanContext, 1)
	a := newCandidate(t, mem, "a", epoch, func(c *Config) {
		c.OnStartedLeading = func(ctx context.Context) {
			_, s := trace.SpanFromContext(ctx).TracerProvider().Tracer("user").Start(ctx, "user work")
			s.End()
			workSpan <- s.SpanContext()
			<-ctx.Done()
		}
	})
	r := a.run(t)
	<-workSpan
	r.stop()
	<-r.done
	r.done <- nil // for the cleanup

	var lead, user, release []string
	var leadID trace.SpanID
	for _, s := range a.spans.Ended() {
		switch s.Name() {
		case spanLeadPrefix + "test":
			leadID = s.SpanContext().SpanID()
			lead = append(lead, s.Name())
			attrs := attribute.NewSet(s.Attributes()...)
			reason, _ := attrs.Value(attrEndReason)
			assert.Equal(t, "stopped", reason.AsString())
			tok, _ := attrs.Value(attrTransitions)
			assert.Equal(t, int64(1), tok.AsInt64())
		}
	}
	require.Len(t, lead, 1)
	for _, s := range a.spans.Ended() {
		switch s.Name() {
		case "user work":
			assert.Equal(t, leadID, s.Parent().SpanID(), "the work's spans nest under the term")
			user = append(user, s.Name())
		case spanRelease:
			assert.Equal(t, leadID, s.Parent().SpanID(), "the release belongs to the term")
			release = append(release, s.Name())
		}
	}
	assert.Len(t, user, 1)
	assert.Len(t, release, 1)
}
