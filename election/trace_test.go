package election

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tenure/tenure/locks"
)

type wantSpan struct {
	name        string
	identity    string
	outcome     string
	holder      string
	transitions int
	errType     string // "" for no error
}

func checkSpan(t *testing.T, s sdktrace.ReadOnlySpan, want wantSpan) {
	t.Helper()
	assert.Equal(t, want.name, s.Name())
	assert.Equal(t, ScopeName, s.InstrumentationScope().Name)
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	assert.Equal(t, "test", attrs[attrElection].AsString())
	assert.Equal(t, want.identity, attrs[attrIdentity].AsString())
	assert.Equal(t, "memory/l", attrs[attrLock].AsString())
	assert.Equal(t, "memory", attrs[attrLockKind].AsString())
	assert.Equal(t, want.outcome, attrs[attrOutcome].AsString(), "outcome of %s", want.name)
	assert.Equal(t, want.holder, attrs[attrHolder].AsString(), "holder of %s", want.name)
	assert.Equal(t, int64(want.transitions), attrs[attrTransitions].AsInt64(), "transitions of %s", want.name)
	if want.errType == "" {
		assert.Equal(t, codes.Unset, s.Status().Code, "status of %s", want.name)
		assert.NotContains(t, attrs, attrErrorType)
		return
	}
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.NotEmpty(t, s.Status().Description)
	assert.Equal(t, want.errType, attrs[attrErrorType].AsString())
	require.Len(t, s.Events(), 1)
	assert.Equal(t, "exception", s.Events()[0].Name)
}

func TestSpansOfEachAttempt(t *testing.T) {
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	bLock := &testLock{Lock: mem}
	b := newCandidate(t, bLock, "b", epoch)

	require.True(t, a.try(t))  // acquire
	a.clock.Step(time.Second)  // the record keeps whole seconds
	require.True(t, a.try(t))  // renew
	require.False(t, b.try(t)) // held by other
	b.clock.Step(lease)
	bLock.beforeUpdate = func() { require.True(t, a.try(t)) } // a renews under b's feet
	require.False(t, b.try(t))                                // conflict
	bLock.beforeUpdate = nil

	raw, err := locks.Record{HolderIdentity: "c", LeaseDuration: lease, LeaderTransitions: 2}.Encode()
	require.NoError(t, err)
	mem.Put(raw)
	require.False(t, a.try(t)) // a finds c's record: lost

	mem.Put([]byte("{corrupt"))
	_, err = b.TryAcquireOrRenew(context.Background()) // error
	require.ErrorIs(t, err, locks.ErrInvalidRecord)

	aSpans := a.spans.Ended()
	require.Len(t, aSpans, 4, "acquire, renew, renew (inside b's conflict), renew (lost)")
	checkSpan(t, aSpans[0], wantSpan{name: spanAcquire, identity: "a", outcome: outcomeAcquired, holder: "a", transitions: 1})
	checkSpan(t, aSpans[1], wantSpan{name: spanRenew, identity: "a", outcome: outcomeRenewed, holder: "a", transitions: 1})
	checkSpan(t, aSpans[3], wantSpan{name: spanRenew, identity: "a", outcome: outcomeLost, holder: "c", transitions: 2})

	bSpans := b.spans.Ended()
	require.Len(t, bSpans, 3)
	checkSpan(t, bSpans[0], wantSpan{name: spanAcquire, identity: "b", outcome: outcomeHeld, holder: "a", transitions: 1})
	checkSpan(t, bSpans[1], wantSpan{name: spanAcquire, identity: "b", outcome: outcomeConflict, holder: "a", transitions: 1})
	checkSpan(t, bSpans[2], wantSpan{name: spanAcquire, identity: "b", outcome: outcomeHeld, errType: "invalid_record"})
}

func TestSpanOfRelease(t *testing.T) {
	mem := freeLock(t)
	a := newCandidate(t, mem, "a", epoch)
	require.True(t, a.try(t))
	for range 2 {
		require.True(t, a.try(t))
	}
	release(t, a.Election)
	spans := a.spans.Ended()
	require.Len(t, spans, 4)
	checkSpan(t, spans[3], wantSpan{name: spanRelease, identity: "a", outcome: outcomeReleased, holder: "", transitions: 1})

	// A failing release is an error span.
	b := newCandidate(t, &testLock{Lock: mem}, "b", epoch)
	require.True(t, b.try(t))
	b.cfg.Lock.(*testLock).failUpdates.Store(true)
	_, err := b.release(context.Background())
	require.ErrorIs(t, err, errInjected)
	bSpans := b.spans.Ended()
	checkSpan(t, bSpans[len(bSpans)-1], wantSpan{name: spanRelease, identity: "b", outcome: outcomeError, holder: "b", transitions: 2, errType: "_OTHER"})
}

func TestErrorTypes(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "l", errors.New("no"))
	for err, want := range map[error]string{
		fmt.Errorf("update: %w", locks.ErrConflict):     "conflict",
		fmt.Errorf("get: %w", locks.ErrNotFound):        "not_found",
		fmt.Errorf("get: %w", locks.ErrInvalidRecord):   "invalid_record",
		fmt.Errorf("get: %w", context.DeadlineExceeded): "deadline_exceeded",
		fmt.Errorf("lease ns/l: %w", forbidden):         "forbidden",
		errors.New("boom"):                              "_OTHER",
	} {
		assert.Equal(t, want, errorType(err), "%v", err)
	}
}
