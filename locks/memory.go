package locks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MemoryLock is a Lock kept in process memory, with the versioning of a
// Kubernetes object: every write makes a new version, a write at a stale
// version conflicts, and a missing record is not found. Candidates that
// share one MemoryLock compete for it as they would for a Lease. It is safe
// for concurrent use.
//
// It serves unit tests and the demo; it cannot coordinate processes.
type MemoryLock struct {
	name string

	mu       sync.Mutex
	exists   bool
	raw      []byte
	notes    map[string]string // tenure's annotations (see Annotate)
	version  uint64
	watchers []chan struct{} // see Watch
}

// Watch returns a channel that receives after each write to the lock,
// until stop is called, as LeaseLock.Watch does: an election waits on it
// instead of its next poll.
func (m *MemoryLock) Watch() (changes <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.watchers = append(m.watchers, ch)
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.watchers = slices.DeleteFunc(m.watchers, func(c chan struct{}) bool { return c == ch })
	}
}

// wrote tells the watchers of a write; m.mu must be held.
func (m *MemoryLock) wrote() { wake(m.watchers) }

// NewMemoryLock returns an empty MemoryLock (no record yet) named name.
func NewMemoryLock(name string) *MemoryLock {
	return &MemoryLock{name: name}
}

// Get implements Lock.
func (m *MemoryLock) Get(ctx context.Context) (Observed, error) {
	if err := ctx.Err(); err != nil {
		return Observed{}, fmt.Errorf("get %s: %w", m.Describe(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return Observed{}, fmt.Errorf("get %s: %w", m.Describe(), ErrNotFound)
	}
	return m.observe()
}

// observe decodes the stored record; m.mu must be held.
func (m *MemoryLock) observe() (Observed, error) {
	obs := Observed{Raw: m.raw, Version: strconv.FormatUint(m.version, 10), Annotations: maps.Clone(m.notes)}
	r, err := DecodeRecord(m.raw)
	if err != nil {
		return obs, fmt.Errorf("%s: %w", m.Describe(), err)
	}
	obs.Record = r
	return obs, nil
}

// Create implements Lock.
func (m *MemoryLock) Create(ctx context.Context, r Record) (Observed, error) {
	if err := ctx.Err(); err != nil {
		return Observed{}, fmt.Errorf("create %s: %w", m.Describe(), err)
	}
	raw, err := r.Encode()
	if err != nil {
		return Observed{}, fmt.Errorf("create %s: %w", m.Describe(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exists {
		return Observed{}, fmt.Errorf("create %s: already exists: %w", m.Describe(), ErrConflict)
	}
	m.store(raw)
	return m.observe()
}

// Update implements Lock.
func (m *MemoryLock) Update(ctx context.Context, version string, r Record) (Observed, error) {
	if err := ctx.Err(); err != nil {
		return Observed{}, fmt.Errorf("update %s: %w", m.Describe(), err)
	}
	raw, err := r.Encode()
	if err != nil {
		return Observed{}, fmt.Errorf("update %s: %w", m.Describe(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.at("update", version); err != nil {
		return Observed{}, err
	}
	m.store(raw)
	return m.observe()
}

// at checks that the lock exists at version before a write op; m.mu must
// be held.
func (m *MemoryLock) at(op, version string) error {
	if !m.exists {
		return fmt.Errorf("%s %s: %w", op, m.Describe(), ErrNotFound)
	}
	if current := strconv.FormatUint(m.version, 10); version != current {
		return fmt.Errorf("%s %s: version %q is stale, current is %q: %w", op, m.Describe(), version, current, ErrConflict)
	}
	return nil
}

// Annotate writes tenure's annotations and, if r is not nil, the record,
// in one write at version (see Lock). Other writes keep the annotations.
func (m *MemoryLock) Annotate(ctx context.Context, version string, r *Record, set map[string]string) (Observed, error) {
	if err := ctx.Err(); err != nil {
		return Observed{}, fmt.Errorf("annotate %s: %w", m.Describe(), err)
	}
	if err := validAnnotations(set); err != nil {
		return Observed{}, fmt.Errorf("annotate %s: %w", m.Describe(), err)
	}
	var raw []byte
	if r != nil {
		var err error
		if raw, err = r.Encode(); err != nil {
			return Observed{}, fmt.Errorf("annotate %s: %w", m.Describe(), err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.at("annotate", version); err != nil {
		return Observed{}, err
	}
	notes := maps.Clone(m.notes)
	for k, v := range set {
		if v == "" {
			delete(notes, k)
			continue
		}
		if notes == nil {
			notes = map[string]string{}
		}
		notes[k] = v
	}
	if len(notes) == 0 {
		notes = nil
	}
	m.notes = notes
	if raw == nil {
		raw = m.raw
	}
	m.store(raw)
	return m.observe()
}

// store writes raw as a new version; m.mu must be held.
func (m *MemoryLock) store(raw []byte) {
	m.exists = true
	m.raw = raw
	m.version++
	m.wrote()
}

// Name returns the name the lock was made with.
func (m *MemoryLock) Name() string { return m.name }

// Describe implements Lock.
func (m *MemoryLock) Describe() string {
	return "memory/" + m.name
}

// Delete removes the record, as if the object had been deleted.
func (m *MemoryLock) Delete() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exists = false
	m.raw = nil
	m.notes = nil
	m.version++
	m.wrote()
}

// Put stores raw as the record, as another writer could, bypassing
// encoding: tests use it to simulate foreign or corrupted records.
func (m *MemoryLock) Put(raw []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store(append([]byte(nil), raw...))
}

// MemorySpace is a set of MemoryLocks by name, so that several candidates
// in one process, such as the simulated replicas of the demo, find the
// same lock under the same name. It is safe for concurrent use.
type MemorySpace struct {
	mu    sync.Mutex
	locks map[string]*MemoryLock
}

// NewMemorySpace returns an empty MemorySpace.
func NewMemorySpace() *MemorySpace {
	return &MemorySpace{locks: map[string]*MemoryLock{}}
}

// Lock returns the lock named name, making it on first use with a free
// record (no holder), so that the first candidate takes it at once: in one
// process there is no deleted lock whose leader might still be working.
func (s *MemorySpace) Lock(name string) *MemoryLock {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[name]
	if !ok {
		l = NewMemoryLock(name)
		// A new lock has no record, and the zero Record encodes: this
		// cannot fail.
		_, _ = l.Create(context.Background(), Record{})
		s.locks[name] = l
	}
	return l
}

// TimeResolution is how finely the lock stores a record's times:
// whole seconds, in client-go's record format. An election does not count a renewal that
// stores the same bytes as the last, steps its renew times by it when the
// wall clock is behind them, and checks its timings against it.
func (m *MemoryLock) TimeResolution() time.Duration { return time.Second }
