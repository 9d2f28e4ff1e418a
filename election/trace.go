package election

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenure/tenure/locks"
)

// ScopeName is the instrumentation scope of the election's tracer.
const ScopeName = "github.com/tenure/tenure/election"

// Span names, one span per attempt.
const (
	SpanAcquire = "acquire lease"
	SpanRenew   = "renew lease"
	SpanRelease = "release lease"
	// SpanLeadPrefix starts the name of a term's span: "lead <election>".
	// The leader work's context carries it, so that the work's own spans
	// nest under the term.
	SpanLeadPrefix = "lead "
)

// Span attribute keys.
const (
	AttrElection    = attribute.Key("tenure.election.name")
	AttrIdentity    = attribute.Key("tenure.election.identity")
	AttrLock        = attribute.Key("tenure.lock.name")
	AttrLockKind    = attribute.Key("tenure.lock.kind")
	AttrNamespace   = attribute.Key("k8s.namespace.name")
	AttrHolder      = attribute.Key("tenure.lease.holder")
	AttrOutcome     = attribute.Key("tenure.outcome")
	AttrTransitions = attribute.Key("tenure.lease.transitions")
	AttrErrorType   = attribute.Key("error.type")
	// AttrEndReason says why a term ended, on its span.
	AttrEndReason = attribute.Key("tenure.term.end_reason")
)

// Outcomes of an attempt, the value of AttrOutcome.
const (
	OutcomeAcquired = "acquired"
	OutcomeRenewed  = "renewed"
	// OutcomeUnchanged: a renewal whose renew time the lock stored no
	// later than the last one's, as two renewals within one second of a
	// ConfigMap lock (which keeps whole seconds) are. No other candidate
	// can tell it from the last, so it does not extend the term.
	OutcomeUnchanged = "unchanged"
	OutcomeReleased  = "released"
	OutcomeHeld      = "held by other"
	// OutcomeMissing: the lock does not exist, and has not been missing
	// for a whole lease yet (see the package documentation).
	OutcomeMissing  = "missing"
	OutcomeConflict = "conflict"
	OutcomeLost     = "lost"
	OutcomeError    = "error"
)

// lockKind is the first part of a lock's description ("leases" of
// "leases/ns/name"), or "custom".
func lockKind(l locks.Lock) string {
	if kind, _, ok := strings.Cut(l.Describe(), "/"); ok {
		return kind
	}
	return "custom"
}

func staticAttributes(cfg Config) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		AttrElection.String(cfg.Name),
		AttrIdentity.String(cfg.Identity),
		AttrLock.String(cfg.Lock.Describe()),
		AttrLockKind.String(lockKind(cfg.Lock)),
	}
	if n, ok := cfg.Lock.(namespaced); ok {
		attrs = append(attrs, AttrNamespace.String(n.Namespace()))
	}
	return attrs
}

// span is one traced and counted attempt; end records what came of it.
type span struct {
	trace.Span
	ctx   context.Context
	e     *Election
	op    string // operationAcquire, operationRenew or operationRelease
	start time.Time
}

func (e *Election) startSpan(ctx context.Context, name, op string) (context.Context, span) {
	ctx, s := e.tracer.Start(ctx, name, trace.WithAttributes(e.attrs...))
	return ctx, span{Span: s, ctx: ctx, e: e, op: op, start: e.cfg.Clock.Now()}
}

// end closes the span with the outcome, the holder observed and the
// record's transitions. A non-nil err marks it failed.
func (s span) end(outcome, holder string, transitions int32, err error) {
	s.SetAttributes(AttrOutcome.String(outcome), AttrHolder.String(holder), AttrTransitions.Int(int(transitions)))
	if err != nil {
		s.SetAttributes(AttrErrorType.String(errorType(err)))
		s.RecordError(err)
		s.SetStatus(codes.Error, err.Error())
	}
	s.End()
	s.e.countAttempt(s.ctx, s.op, outcome, s.e.cfg.Clock.Since(s.start))
}

// errorType is a low-cardinality name for err, for AttrErrorType.
func errorType(err error) string {
	switch {
	case errors.Is(err, locks.ErrConflict):
		return "conflict"
	case errors.Is(err, locks.ErrNotFound):
		return "not_found"
	case errors.Is(err, locks.ErrInvalidRecord):
		return "invalid_record"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	if reason := apierrors.ReasonForError(err); reason != metav1.StatusReasonUnknown {
		return strings.ToLower(string(reason)) // "forbidden", "unauthorized", "timeout"...
	}
	return "_OTHER"
}
