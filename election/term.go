package election

import (
	"context"
	"time"
)

// Term is one leadership term of one candidate: from the write that
// acquired the lock to the end of its leader work.
type Term struct {
	// Election is the election's name.
	Election string
	// Identity is the leader's identity.
	Identity string
	// FencingToken is the lock's leader transitions count for this term.
	// Every new term of a lock has a greater token than the terms before
	// it (unless the lock object was deleted in between), so a resource
	// that records the highest token it has seen can reject writes from
	// a deposed leader.
	FencingToken int32
	// Started is when the write that acquired the lock was sent, on the
	// election's clock.
	Started time.Time
}

type termKey struct{}

// TermFromContext returns the Term that the leader work's context carries.
func TermFromContext(ctx context.Context) (Term, bool) {
	t, ok := ctx.Value(termKey{}).(Term)
	return t, ok
}

func withTerm(ctx context.Context, t Term) context.Context {
	return context.WithValue(ctx, termKey{}, t)
}
