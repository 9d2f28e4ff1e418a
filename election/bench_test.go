package election

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tenure/tenure/locks"
)

// BenchmarkTryAcquireOrRenew is one renewal of a held MemoryLock: the
// election's own cost per attempt, without a network.
func BenchmarkTryAcquireOrRenew(b *testing.B) {
	space := locks.NewMemorySpace()
	e, err := New(Config{
		Lock: space.Lock("bench"), Identity: "a",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: noop.NewMeterProvider(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if ok, err := e.TryAcquireOrRenew(ctx); !ok || err != nil {
		b.Fatal(ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := e.TryAcquireOrRenew(ctx); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkTryAcquireHeldByOther is one attempt of a follower on a lock
// held by another candidate.
func BenchmarkTryAcquireHeldByOther(b *testing.B) {
	space := locks.NewMemorySpace()
	newElection := func(id string) *Election {
		e, err := New(Config{
			Lock: space.Lock("bench"), Identity: id,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: noop.NewMeterProvider(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	ctx := context.Background()
	if ok, _ := newElection("a").TryAcquireOrRenew(ctx); !ok {
		b.Fatal("a did not acquire")
	}
	follower := newElection("b")
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := follower.TryAcquireOrRenew(ctx); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
