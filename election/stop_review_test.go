package election

// Adversarial tests of the stop that stops waiting and of Check's
// "work outlives its term" rule (issue 15 review 3).

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tenure/tenure/locks"
)

// blockingSpans holds up the end of every "renew lease" span while armed,
// as a TracerProvider with a synchronous exporter to a slow collector
// does, and says when one is held.
type blockingSpans struct {
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (b *blockingSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (b *blockingSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == spanRenew && b.armed.Load() {
		b.held <- struct{}{}
		<-b.release
	}
}
func (b *blockingSpans) Shutdown(context.Context) error   { return nil }
func (b *blockingSpans) ForceFlush(context.Context) error { return nil }

// TestCheckPassesWhileALostTermEnds: a renewal finds the record replaced
// by another writer; the attempt marks the term over (lose) before Run's
// hold sees its answer and records when the term ended. In between (here
// held open by a slow span export), the leader work has not even been
// cancelled yet, and Check must not say it "runs on" for ever after its
// term ended: termEnded is still zero (or the end of an older term).
func TestCheckPassesWhileALostTermEnds(t *testing.T) {
	noLeaks(t)
	mem := freeLock(t)
	spans := &blockingSpans{held: make(chan struct{}), release: make(chan struct{})}
	a := newCandidate(t, mem, "a", epoch, func(c *Config) {
		c.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	})
	a.run(t)
	waitFor(t, a.IsLeader, "a leads")

	obs, err := mem.Get(context.Background())
	require.NoError(t, err)
	_, err = mem.Update(context.Background(), obs.Version, locks.Record{
		HolderIdentity: "x", LeaseDuration: lease, AcquireTime: epoch, RenewTime: epoch, LeaderTransitions: 7,
	})
	require.NoError(t, err)
	spans.armed.Store(true)
	a.waitTimers(t, 2)
	a.clock.Step(retry)
	select {
	case <-spans.held:
	case <-time.After(5 * time.Second):
		t.Fatal("no renewal")
	}
	assert.False(t, a.IsLeader(), "the renewal lost the term")
	assert.NoError(t, a.Check(time.Second), "Check within a moment of the term's end")
	spans.armed.Store(false)
	close(spans.release)
	waitFor(t, func() bool { return a.stoppedLeading() == 1 }, "the term ends")
}

// TestStopsThatGiveUpThenRenewalsFail: two concurrent Stops with ended
// contexts return at once while the work winds down; renewals then fail,
// the term ends at its deadline, b takes over after the lease, and the
// work returns: a leaves b's record alone, Run returns, and a Stop called
// from OnStoppedLeading with an ended context returns too.
func TestStopsThatGiveUpThenRenewalsFail(t *testing.T) {
	noLeaks(t)
	mem, lock, w, a, b, workCtx := windDownSetUp(t)
	require.False(t, b.try(t))
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- a.Stop(gone) }()
	}
	for range 2 {
		select {
		case err := <-errs:
			require.Error(t, err)
		case <-time.After(3 * time.Second):
			t.Fatal("Stop with an ended context did not return")
		}
	}
	<-w.cancelled
	lock.failUpdates.Store(true)
	a.waitTimers(t, 2)
	a.clock.Step(deadline)
	waitFor(t, func() bool { return Valid(workCtx) != nil }, "the term ends at its deadline")
	b.clock.Step(lease)
	require.True(t, b.try(t), "b takes over once the lease has expired")
	lock.failUpdates.Store(false)
	w.end()
	waitFor(t, func() bool { return a.stoppedLeading() == 1 }, "a's term ends")
	assert.Equal(t, "b", holderOf(t, mem).HolderIdentity, "a leaves b's record alone")
	require.NoError(t, a.Stop(context.Background()), "Run has returned")
}
