package election

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenure/tenure/locks"
)

// Timings of the unit tests, client-go's usual values.
const (
	lease    = 15 * time.Second
	deadline = 10 * time.Second
	retry    = 3 * time.Second
)

var epoch = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

var errInjected = errors.New("injected failure")

// testLock wraps a lock to count calls and inject failures.
type testLock struct {
	locks.Lock
	updates, gets atomic.Int32
	failUpdates   atomic.Bool
	failGets      atomic.Bool
	hangUpdates   atomic.Bool
	// beforeUpdate, if set, runs before each Update reaches the lock.
	beforeUpdate func()
}

func (l *testLock) Get(ctx context.Context) (locks.Observed, error) {
	l.gets.Add(1)
	if l.failGets.Load() {
		return locks.Observed{}, errInjected
	}
	return l.Lock.Get(ctx)
}

func (l *testLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	l.updates.Add(1)
	if l.beforeUpdate != nil {
		l.beforeUpdate()
	}
	if l.hangUpdates.Load() {
		<-ctx.Done()
		return locks.Observed{}, ctx.Err()
	}
	if l.failUpdates.Load() {
		return locks.Observed{}, errInjected
	}
	return l.Lock.Update(ctx, version, r)
}

// candidate is an election under test with its own clock and spans.
type candidate struct {
	*Election
	clock *clocktesting.FakeClock
	spans *tracetest.SpanRecorder

	mu       sync.Mutex
	leaders  []string
	stopped  int
	workRuns int
	metrics  *sdkmetric.ManualReader
}

type option func(*Config)

func newCandidate(t *testing.T, lock locks.Lock, id string, start time.Time, opts ...option) *candidate {
	t.Helper()
	c := &candidate{clock: clocktesting.NewFakeClock(start), spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	cfg := Config{
		Lock: lock, Identity: id, Name: "test",
		LeaseDuration: lease, RenewDeadline: deadline, RetryPeriod: retry,
		Clock:          c.clock,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c.spans)),
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(c.metrics)),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnNewLeader: func(id string) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.leaders = append(c.leaders, id)
		},
		OnStoppedLeading: func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.stopped++
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	e.jitter = func(d time.Duration) time.Duration { return d }
	c.Election = e
	return c
}

func (c *candidate) try(t *testing.T) bool {
	t.Helper()
	ok, _ := c.TryAcquireOrRenew(context.Background())
	return ok
}

func (c *candidate) newLeaders() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.leaders...)
}

func (c *candidate) stoppedLeading() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// running is a Run in a goroutine, stopped and joined at the test's end.
type running struct {
	done chan error
	stop func()
}

func (c *candidate) run(t *testing.T) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{done: make(chan error, 1), stop: cancel}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitFor polls cond until it holds; it waits on goroutines of the
// election reacting to a clock step, never for time to pass.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 100*time.Microsecond, "waiting for: %s", what)
}

// waitTimers waits until the election's goroutines have armed n timers
// on the fake clock, so that a step cannot overtake them.
func (c *candidate) waitTimers(t *testing.T, n int) {
	t.Helper()
	waitFor(t, func() bool { return c.clock.Waiters() == n }, "timers armed")
}

func holderOf(t *testing.T, l locks.Lock) locks.Record {
	t.Helper()
	obs, err := l.Get(context.Background())
	require.NoError(t, err)
	return obs.Record
}

// noLeaks fails t if goroutines started during t outlive it, checked
// after every other cleanup (cleanups run last first).
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// freeLock returns a lock whose record exists and is held by nobody, as
// after a release, so that the first candidate acquires it at once with
// fencing token 1.
func freeLock(t *testing.T) *locks.MemoryLock {
	t.Helper()
	l := locks.NewMemoryLock("l")
	_, err := l.Create(context.Background(), locks.Record{})
	require.NoError(t, err)
	return l
}

// spansNamed returns the ended spans of c named name.
func spansNamed(c *candidate, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range c.spans.Ended() {
		if sp.Name() == name {
			out = append(out, sp)
		}
	}
	return out
}

// release releases e's lock as Run does when a term ends, and reports
// whether that handed it over.
func release(t *testing.T, e *Election) bool {
	t.Helper()
	handedOver, err := e.release(context.Background())
	require.NoError(t, err)
	return handedOver
}
