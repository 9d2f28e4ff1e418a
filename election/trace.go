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

// ScopeName is the instrumentation scope of the election's tracer and
// meter.
const ScopeName = "github.com/tenure/tenure/election"

// Span names, one span per attempt (see the package documentation).
const (
	spanAcquire = "acquire lease"
	spanRenew   = "renew lease"
	spanRelease = "release lease"
	// spanMove is a release that hands the lock over to another
	// candidate (see handover.go).
	spanMove = "move lease"
	// spanLeadPrefix starts the name of a term's span: "lead <election>".
	// The leader work's context carries it, so that the work's own spans
	// nest under the term.
	spanLeadPrefix = "lead "
)

// Span attribute keys.
const (
	attrElection    = attribute.Key("tenure.election.name")
	attrIdentity    = attribute.Key("tenure.election.identity")
	attrLock        = attribute.Key("tenure.lock.name")
	attrLockKind    = attribute.Key("tenure.lock.kind")
	attrNamespace   = attribute.Key("k8s.namespace.name")
	attrHolder      = attribute.Key("tenure.lease.holder")
	attrOutcome     = attribute.Key("tenure.outcome")
	attrTransitions = attribute.Key("tenure.lease.transitions")
	attrErrorType   = attribute.Key("error.type")
	// attrEndReason says why a term ended, on its span.
	attrEndReason = attribute.Key("tenure.term.end_reason")
	// A move's span names who it moved from and to, and who asked.
	attrMoveFrom   = attribute.Key("tenure.move.from")
	attrMoveTo     = attribute.Key("tenure.move.to")
	attrMoveReason = attribute.Key("tenure.move.reason")
)

// Outcomes of an attempt, the value of attrOutcome.
const (
	outcomeAcquired = "acquired"
	outcomeRenewed  = "renewed"
	// outcomeUnchanged: a renewal that stored the record's bytes as they
	// were, as two renewals within one second of a ConfigMap lock (which
	// keeps whole seconds) do. No other candidate can tell it from the
	// last, so it does not extend the term.
	outcomeUnchanged = "unchanged"
	outcomeReleased  = "released"
	// outcomeHandedOver: a release that wrote the lock over to the
	// candidate a move asked for (see handover.go).
	outcomeHandedOver = "handed over"
	outcomeHeld       = "held by other"
	// outcomeMissing: the lock does not exist, and has not been missing
	// for a whole lease yet (see the package documentation).
	outcomeMissing  = "missing"
	outcomeConflict = "conflict"
	outcomeLost     = "lost"
	outcomeError    = "error"
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
		attrElection.String(cfg.Name),
		attrIdentity.String(cfg.Identity),
		attrLock.String(cfg.Lock.Describe()),
		attrLockKind.String(lockKind(cfg.Lock)),
	}
	if n, ok := cfg.Lock.(namespaced); ok {
		attrs = append(attrs, attrNamespace.String(n.Namespace()))
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
	s.SetAttributes(attrOutcome.String(outcome), attrHolder.String(holder), attrTransitions.Int(int(transitions)))
	if err != nil {
		s.SetAttributes(attrErrorType.String(errorType(err)))
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
