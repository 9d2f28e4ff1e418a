package election

import (
	"context"
	"errors"
	"fmt"
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

// termValue is what the leader work's context carries.
type termValue struct {
	term Term
	e    *Election
}

// TermFromContext returns the Term that the leader work's context carries.
func TermFromContext(ctx context.Context) (Term, bool) {
	v, ok := ctx.Value(termKey{}).(termValue)
	return v.term, ok
}

func withTerm(ctx context.Context, e *Election, t Term) context.Context {
	return context.WithValue(ctx, termKey{}, termValue{term: t, e: e})
}

// ErrNotLeader is returned by Valid when the term is over.
var ErrNotLeader = errors.New("election: not the leader")

// Valid reports whether the term that the leader work's context carries
// still holds: the context is not done, the term is still the election's
// current one, and, on the election's clock (monotonic, for the real
// clock), its last renewal was sent less than RenewDeadline ago.
//
// Call it right before each action taken as leader. The election cancels
// the context when the renew deadline passes, but a process that was
// frozen (SIGSTOP, a suspended VM, a long pause) resumes with that timer
// and the work's own timers due at once, in any order: Valid sees the
// deadline from the clock before any timer has run.
func Valid(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, ok := ctx.Value(termKey{}).(termValue)
	if !ok {
		return fmt.Errorf("%w: the context carries no term", ErrNotLeader)
	}
	return v.e.validTerm(v.term)
}
