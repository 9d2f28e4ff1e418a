package election

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names, in OpenTelemetry's style; the package documentation
// lists them with their Prometheus names for dashboards. Their only
// attributes are the election's name and, for attempts, the operation and
// outcome: cardinality stays bounded.
const (
	metricLeader           = "tenure.election.leader"
	metricTransitions      = "tenure.election.leader_transitions"
	metricAttempts         = "tenure.election.attempts"
	metricRenewDuration    = "tenure.election.renew.duration"
	metricTimeToLeadership = "tenure.election.time_to_first_leadership"
	metricSinceLastRenewal = "tenure.election.since_last_renewal"
	attrOperation          = attribute.Key("tenure.operation")
	operationAcquire       = "acquire"
	operationRenew         = "renew"
	operationRelease       = "release"
)

// instruments are an election's metric instruments.
type instruments struct {
	meter         metric.Meter
	attempts      metric.Int64Counter
	renewDuration metric.Float64Histogram
	leader        metric.Int64ObservableGauge
	transitions   metric.Int64ObservableGauge
	firstLeader   metric.Float64ObservableGauge
	sinceRenewal  metric.Float64ObservableGauge
}

func newInstruments(mp metric.MeterProvider) (instruments, error) {
	m := mp.Meter(ScopeName)
	var ins instruments
	var errs [6]error
	ins.meter = m
	ins.attempts, errs[0] = m.Int64Counter(metricAttempts, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts to acquire, renew or release the lock, by operation and outcome."))
	ins.renewDuration, errs[1] = m.Float64Histogram(metricRenewDuration, metric.WithUnit("s"),
		metric.WithDescription("Latency of lock renewals."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	ins.leader, errs[2] = m.Int64ObservableGauge(metricLeader, metric.WithUnit("{leader}"),
		metric.WithDescription("1 while this candidate leads the election, else 0."))
	ins.transitions, errs[3] = m.Int64ObservableGauge(metricTransitions, metric.WithUnit("{transition}"),
		metric.WithDescription("Leader transitions of the lock's record, as last observed."))
	ins.firstLeader, errs[4] = m.Float64ObservableGauge(metricTimeToLeadership, metric.WithUnit("s"),
		metric.WithDescription("Time from the start of Run to this candidate's first leadership."))
	ins.sinceRenewal, errs[5] = m.Float64ObservableGauge(metricSinceLastRenewal, metric.WithUnit("s"),
		metric.WithDescription("Time since this leader's last successful renewal; only while leading."))
	return ins, errors.Join(errs[:]...)
}

// attempt counts one attempt.
func (e *Election) countAttempt(ctx context.Context, operation, outcome string, took time.Duration) {
	e.ins.attempts.Add(ctx, 1, metric.WithAttributes(attrElection.String(e.cfg.Name), attrOperation.String(operation), attrOutcome.String(outcome)))
	if operation == operationRenew {
		e.ins.renewDuration.Record(ctx, took.Seconds(), metric.WithAttributes(attrElection.String(e.cfg.Name)))
	}
}

// observeGauges registers the callback of the gauges while Run runs; the
// returned function unregisters it.
func (e *Election) observeGauges(started time.Time) (func(), error) {
	attrs := metric.WithAttributes(attrElection.String(e.cfg.Name))
	reg, err := e.ins.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.mu.Lock()
		holding, lastWrite, first := e.holding, e.lastWrite, e.firstLeadership
		transitions, seen := e.obs.record.LeaderTransitions, e.obs.seen && e.obs.valid
		e.mu.Unlock()
		leader := int64(0)
		if holding {
			leader = 1
			o.ObserveFloat64(e.ins.sinceRenewal, e.cfg.Clock.Since(lastWrite).Seconds(), attrs)
		}
		o.ObserveInt64(e.ins.leader, leader, attrs)
		if seen {
			o.ObserveInt64(e.ins.transitions, int64(transitions), attrs)
		}
		if !first.IsZero() {
			o.ObserveFloat64(e.ins.firstLeader, first.Sub(started).Seconds(), attrs)
		}
		return nil
	}, e.ins.leader, e.ins.transitions, e.ins.firstLeader, e.ins.sinceRenewal)
	if err != nil {
		return func() {}, err
	}
	return func() { _ = reg.Unregister() }, nil
}
