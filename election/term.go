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
	// FencingToken is the record's leader transitions count as this term
	// wrote it. Every new term of a lock gets a greater token than the
	// terms before it (unless the lock object was deleted in between), a
	// new term of the same holder included, so a resource that records the
	// highest token it has seen can reject writes from a deposed leader.
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
// still holds: it is still the election's current term and, on the
// election's clock (monotonic, for the real clock), its last renewal was
// sent less than RenewDeadline ago. A context that carries no term is not
// valid.
//
// Call it right before each action taken as leader. The election cancels
// the context when the renew deadline passes, but a process that was
// frozen (SIGSTOP, a long pause) resumes with that timer and the work's
// own timers due at once, in any order: Valid sees the deadline from the
// clock before any timer has run. A suspended VM is different: the
// monotonic clock stops with it, so after a resume Valid cannot tell that
// time passed until the election's next renewal fails or finds the lock
// taken; use fencing tokens where a suspended VM must not write.
//
// Valid does not look at whether the context is done: when Run or Stop
// ends an election, the work's context is cancelled and the term goes on,
// renewed, until the work returns (the wind-down), and Valid keeps saying
// nil while it does. Wind-down code that does not call Valid (a flush, a
// commit) is safe as long as the renewals succeed; if they fail, the term
// ends at the renew deadline, Valid fails, and another candidate may lead
// LeaseDuration after the last renewal it saw. Such code should be short,
// or fenced with Term.FencingToken.
func Valid(ctx context.Context) error {
	v, ok := ctx.Value(termKey{}).(termValue)
	if !ok {
		return fmt.Errorf("%w: the context carries no term", ErrNotLeader)
	}
	return v.e.validTerm(v.term)
}
