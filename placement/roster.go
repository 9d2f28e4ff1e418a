package placement

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Roster is where the replicas of a program announce themselves and find
// each other: a LeaseRoster in a cluster, a MemoryRoster in one process.
type Roster interface {
	// Announce writes m as the member record of m.Identity, making it if
	// need be; announcing again renews it. A record not announced again
	// within the roster's lease expires.
	Announce(ctx context.Context, m Member) error
	// Leave deletes the member record of identity.
	Leave(ctx context.Context, identity string) error
	// Members returns the members whose records are live, by identity.
	Members() []Member
}

// MemoryRoster is a Roster in memory, for the replicas of one process
// (tests, and the demo's simulated replicas). Its zero value is not
// usable: make one with NewMemoryRoster.
type MemoryRoster struct {
	clock clock.PassiveClock
	lease time.Duration

	mu      sync.Mutex
	members map[string]memoryMember
}

type memoryMember struct {
	m       Member
	renewed time.Time
}

// NewMemoryRoster makes an empty roster whose records expire lease after
// they were last announced on clk (clock.RealClock{} if nil).
func NewMemoryRoster(clk clock.PassiveClock, lease time.Duration) *MemoryRoster {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &MemoryRoster{clock: clk, lease: lease, members: map[string]memoryMember{}}
}

// Announce implements Roster.
func (r *MemoryRoster) Announce(ctx context.Context, m Member) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m.Components = slices.Clone(m.Components)
	r.members[m.Identity] = memoryMember{m: m, renewed: r.clock.Now()}
	return nil
}

// Leave implements Roster.
func (r *MemoryRoster) Leave(ctx context.Context, identity string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, identity)
	return nil
}

// Members implements Roster.
func (r *MemoryRoster) Members() []Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	var out []Member
	for _, mm := range r.members {
		if now.Sub(mm.renewed) < r.lease {
			m := mm.m
			m.Components = slices.Clone(m.Components)
			out = append(out, m)
		}
	}
	sortMembers(out)
	return out
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Identity, b.Identity) })
}
