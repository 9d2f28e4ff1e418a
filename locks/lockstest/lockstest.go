// Package lockstest checks that a locks.Lock behaves as an election relies
// on: not-found, create, read back, optimistic updates that conflict on a
// stale version, exactly one winner among racing writers, stable Raw and
// Version between writes, clear errors for a corrupted record, and
// requests that return when cancelled while the server hangs; and, for a
// lock with an Annotate method (see locks.Lock), that tenure's annotations
// are written with it alone, atomically with the record, and survive
// record updates.
//
// Every lock in tenure passes it; run it on your own:
//
//	func TestMyLock(t *testing.T) {
//		lockstest.Run(t, func(t *testing.T) lockstest.Subject {
//			return lockstest.Subject{Lock: newMyLock(t), ...}
//		})
//	}
package lockstest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/locks"
)

// Subject is one lock under test, on an object that does not exist yet.
type Subject struct {
	// Lock is the lock under test.
	Lock locks.Lock
	// Other is a second, independent handle on the same object, as another
	// candidate would hold. Required.
	Other locks.Lock
	// Corrupt stores a record that cannot be decoded, bypassing the lock,
	// and returns the Raw that Get should then report (nil if the lock has
	// no byte-exact form to report). Optional: the corruption tests are
	// skipped without it.
	Corrupt func(t *testing.T) []byte
	// Delete removes the object, bypassing the lock. Optional: the
	// deletion test is skipped without it.
	Delete func(t *testing.T)
	// Hang makes the backend stop answering: requests sent and to come get
	// neither an answer nor an error, as from a server that hangs
	// mid-request or across a half-open connection, until the returned
	// function heals it. Optional: the hang test is skipped without it.
	Hang func(t *testing.T) (heal func())
	// Eventual says that a read may lag behind writes made through
	// another handle or bypassing the lock, as reads from a watch cache
	// do; the suite then waits up to five seconds for them. A handle's
	// reads must never lag behind what it has itself read or written.
	Eventual bool
}

// read reads l until ok accepts the result, at once unless s.Eventual.
func read(t *testing.T, s Subject, l locks.Lock, ok func(locks.Observed, error) bool) (locks.Observed, error) {
	t.Helper()
	obs, err := l.Get(ctx(t))
	if !s.Eventual || ok(obs, err) {
		return obs, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !ok(obs, err) {
		time.Sleep(10 * time.Millisecond)
		obs, err = l.Get(ctx(t))
	}
	return obs, err
}

// Run runs the suite; newSubject is called once per test case and must
// return a lock on a fresh object.
func Run(t *testing.T, newSubject func(t *testing.T) Subject) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s Subject)
	}{
		{"GetMissingIsNotFound", testGetMissing},
		{"UpdateMissingIsNotFound", testUpdateMissing},
		{"CreateThenGet", testCreateThenGet},
		{"CreateExistingConflicts", testCreateExisting},
		{"UpdateAtCurrentVersion", testUpdateCurrent},
		{"UpdateAtStaleVersionConflicts", testUpdateStale},
		{"RacingUpdatesHaveOneWinner", testRacingUpdates},
		{"RacingCreatesHaveOneWinner", testRacingCreates},
		{"ReadsAreStableBetweenWrites", testStableReads},
		{"ReleasedRecordRoundTrips", testReleased},
		{"CorruptedRecordIsReportedAndReplaceable", testCorrupted},
		{"DeletedObjectIsNotFound", testDeleted},
		{"CancelledContextFails", testCancelled},
		{"RequestsReturnWhenCancelledWhileTheServerHangs", testHang},
		{"DescribeNamesTheLock", testDescribe},
		{"AnnotationsAreWrittenOnlyByAnnotate", testAnnotations},
		{"AnnotateWritesTheRecordWithTheAnnotations", testAnnotateRecord},
		{"AnnotateAtStaleVersionConflicts", testAnnotateStale},
		{"AnnotateRefusesForeignKeys", testAnnotateForeign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSubject(t)
			require.NotNil(t, s.Lock, "Subject.Lock")
			require.NotNil(t, s.Other, "Subject.Other")
			tc.run(t, s)
		})
	}
}

// at is a fixed time with whole seconds, the precision every lock keeps.
var at = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Held returns a record held by holder, renewed at renew.
func Held(holder string, renew time.Time, transitions int32) locks.Record {
	return locks.Record{
		HolderIdentity:    holder,
		LeaseDuration:     15 * time.Second,
		AcquireTime:       at,
		RenewTime:         renew,
		LeaderTransitions: transitions,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// assertRecord compares records at the second, the precision of the JSON
// record format.
func assertRecord(t *testing.T, want, got locks.Record) {
	t.Helper()
	assert.Equal(t, want.HolderIdentity, got.HolderIdentity, "HolderIdentity")
	assert.Equal(t, want.LeaseDuration, got.LeaseDuration, "LeaseDuration")
	assert.True(t, want.AcquireTime.Equal(got.AcquireTime), "AcquireTime: want %v, got %v", want.AcquireTime, got.AcquireTime)
	assert.True(t, want.RenewTime.Equal(got.RenewTime), "RenewTime: want %v, got %v", want.RenewTime, got.RenewTime)
	assert.Equal(t, want.LeaderTransitions, got.LeaderTransitions, "LeaderTransitions")
}

func testGetMissing(t *testing.T, s Subject) {
	_, err := s.Lock.Get(ctx(t))
	require.ErrorIs(t, err, locks.ErrNotFound)
}

func testUpdateMissing(t *testing.T, s Subject) {
	_, err := s.Lock.Update(ctx(t), "1", Held("a", at, 0))
	require.ErrorIs(t, err, locks.ErrNotFound)
}

func testCreateThenGet(t *testing.T, s Subject) {
	want := Held("a", at, 3)
	created, err := s.Lock.Create(ctx(t), want)
	require.NoError(t, err)
	assertRecord(t, want, created.Record)
	assert.NotEmpty(t, created.Version, "Version")
	assert.NotEmpty(t, created.Raw, "Raw")

	got, err := read(t, s, s.Other, func(o locks.Observed, err error) bool { return err == nil && o.Version == created.Version })
	require.NoError(t, err)
	assertRecord(t, want, got.Record)
	assert.Equal(t, created.Version, got.Version, "Version after Create and Get")
	assert.Equal(t, created.Raw, got.Raw, "Raw after Create and Get")
}

func testCreateExisting(t *testing.T, s Subject) {
	_, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	_, err = s.Other.Create(ctx(t), Held("b", at, 0))
	require.ErrorIs(t, err, locks.ErrConflict)
	got, err := s.Lock.Get(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, "a", got.Record.HolderIdentity, "a failed Create must not change the record")
}

func testUpdateCurrent(t *testing.T, s Subject) {
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	want := Held("a", at.Add(2*time.Second), 0)
	updated, err := s.Lock.Update(ctx(t), created.Version, want)
	require.NoError(t, err)
	assertRecord(t, want, updated.Record)
	assert.NotEqual(t, created.Version, updated.Version, "Update must make a new version")
	assert.NotEqual(t, created.Raw, updated.Raw, "a renewed record must have new Raw")

	got, err := read(t, s, s.Other, func(o locks.Observed, err error) bool { return err == nil && o.Version == updated.Version })
	require.NoError(t, err)
	assertRecord(t, want, got.Record)
	assert.Equal(t, updated.Version, got.Version)
	assert.Equal(t, updated.Raw, got.Raw)
}

func testUpdateStale(t *testing.T, s Subject) {
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	_, err = s.Other.Update(ctx(t), created.Version, Held("b", at, 1))
	require.NoError(t, err)
	_, err = s.Lock.Update(ctx(t), created.Version, Held("a", at.Add(time.Second), 0))
	require.ErrorIs(t, err, locks.ErrConflict)
	got, err := s.Lock.Get(ctx(t))
	require.NoError(t, err)
	assertRecord(t, Held("b", at, 1), got.Record)
}

// race runs n writers at once and returns how many succeeded and the
// errors of the others.
func race(n int, write func(i int) error) (wins int, errs []error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			err := write(i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins, errs
}

func testRacingUpdates(t *testing.T, s Subject) {
	created, err := s.Lock.Create(ctx(t), Held("", at, 0))
	require.NoError(t, err)
	handles := []locks.Lock{s.Lock, s.Other}
	wins, errs := race(8, func(i int) error {
		_, err := handles[i%2].Update(ctx(t), created.Version, Held(string(rune('a'+i)), at, 1))
		return err
	})
	assert.Equal(t, 1, wins, "exactly one racing Update must win")
	for _, err := range errs {
		assert.ErrorIs(t, err, locks.ErrConflict)
	}
}

func testRacingCreates(t *testing.T, s Subject) {
	handles := []locks.Lock{s.Lock, s.Other}
	wins, errs := race(8, func(i int) error {
		_, err := handles[i%2].Create(ctx(t), Held(string(rune('a'+i)), at, 0))
		return err
	})
	assert.Equal(t, 1, wins, "exactly one racing Create must win")
	for _, err := range errs {
		assert.ErrorIs(t, err, locks.ErrConflict)
	}
}

func testStableReads(t *testing.T, s Subject) {
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	first, err := s.Lock.Get(ctx(t))
	require.NoError(t, err)
	second, err := read(t, s, s.Other, func(o locks.Observed, err error) bool { return err == nil && o.Version == created.Version })
	require.NoError(t, err)
	assert.Equal(t, first.Raw, second.Raw, "Raw must not change without a write")
	assert.Equal(t, first.Version, second.Version, "Version must not change without a write")
}

func testReleased(t *testing.T, s Subject) {
	created, err := s.Lock.Create(ctx(t), Held("a", at, 4))
	require.NoError(t, err)
	// How client-go releases: no holder, a one-second lease.
	released := locks.Record{LeaseDuration: time.Second, AcquireTime: at, RenewTime: at.Add(time.Second), LeaderTransitions: 4}
	updated, err := s.Lock.Update(ctx(t), created.Version, released)
	require.NoError(t, err)
	got, err := read(t, s, s.Other, func(o locks.Observed, err error) bool { return err == nil && o.Version == updated.Version })
	require.NoError(t, err)
	assertRecord(t, released, got.Record)
}

func testCorrupted(t *testing.T, s Subject) {
	if s.Corrupt == nil {
		t.Skip("Subject.Corrupt not set")
	}
	_, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	wantRaw := s.Corrupt(t)
	invalid := func(_ locks.Observed, err error) bool { return errors.Is(err, locks.ErrInvalidRecord) }

	obs, err := read(t, s, s.Lock, invalid)
	require.ErrorIs(t, err, locks.ErrInvalidRecord)
	assert.Contains(t, err.Error(), s.Lock.Describe(), "the error must name the object")
	assert.NotEmpty(t, obs.Version, "a corrupted record must still report its Version")
	assert.NotEmpty(t, obs.Raw, "a corrupted record must still report its Raw")
	if wantRaw != nil {
		assert.Equal(t, wantRaw, obs.Raw)
	}
	again, err := read(t, s, s.Other, invalid)
	require.ErrorIs(t, err, locks.ErrInvalidRecord)
	assert.Equal(t, obs.Raw, again.Raw, "Raw of an unchanged corrupted record must be stable")

	want := Held("b", at, 1)
	replaced, err := s.Other.Update(ctx(t), obs.Version, want)
	require.NoError(t, err, "a corrupted record must be replaceable at its version")
	assertRecord(t, want, replaced.Record)
}

func testDeleted(t *testing.T, s Subject) {
	if s.Delete == nil {
		t.Skip("Subject.Delete not set")
	}
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	s.Delete(t)
	_, err = read(t, s, s.Lock, func(_ locks.Observed, err error) bool { return errors.Is(err, locks.ErrNotFound) })
	require.ErrorIs(t, err, locks.ErrNotFound)
	_, err = s.Lock.Update(ctx(t), created.Version, Held("a", at.Add(time.Second), 0))
	require.Error(t, err)
	assert.True(t, errors.Is(err, locks.ErrNotFound) || errors.Is(err, locks.ErrConflict),
		"Update of a deleted object must fail with ErrNotFound or ErrConflict, got %v", err)
}

func testCancelled(t *testing.T, s Subject) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Lock.Get(c)
	require.Error(t, err)
	_, err = s.Lock.Create(c, Held("a", at, 0))
	require.Error(t, err)
	_, err = s.Lock.Get(ctx(t))
	require.ErrorIs(t, err, locks.ErrNotFound, "a cancelled Create must not have written")
}

// testHang: a request to a server that never answers returns once its
// context is done. An election cancels its work at the renew deadline
// whatever a request does, but a request that never returns holds up the
// release of the lock and the election's Run.
func testHang(t *testing.T, s Subject) {
	if s.Hang == nil {
		t.Skip("Subject.Hang is not set")
	}
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	heal := s.Hang(t)
	healed := false
	defer func() {
		if !healed {
			heal()
		}
	}()
	for _, op := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"Get", func(c context.Context) error { _, err := s.Lock.Get(c); return err }},
		{"Update", func(c context.Context) error {
			_, err := s.Lock.Update(c, created.Version, Held("a", at.Add(time.Second), 0))
			return err
		}},
	} {
		c, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- op.do(c) }()
		select {
		case err := <-done:
			assert.Error(t, err, "%s got no answer: it must fail", op.name)
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not return within 10s of its context's end while the server hung", op.name)
		}
		cancel()
	}
	heal()
	healed = true
	// The lock works again once the server answers (a client may need a
	// moment to drop the dead connection).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = s.Lock.Get(ctx(t))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, err, "the lock works again after the server heals")
}

func testDescribe(t *testing.T, s Subject) {
	assert.NotEmpty(t, s.Lock.Describe())
	assert.Equal(t, s.Lock.Describe(), s.Other.Describe(), "two handles on one object describe it alike")
}

// annotator is a lock that keeps tenure's annotations (see locks.Lock).
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

// annotating returns s.Lock and s.Other as annotators, skipping the test
// for a lock without Annotate.
func annotating(t *testing.T, s Subject) (annotator, annotator) {
	t.Helper()
	a, ok := s.Lock.(annotator)
	if !ok {
		t.Skip("the lock has no Annotate method")
	}
	b, ok := s.Other.(annotator)
	require.True(t, ok, "Subject.Other must be a lock of the same kind as Subject.Lock")
	return a, b
}

func testAnnotations(t *testing.T, s Subject) {
	a, _ := annotating(t, s)
	_, err := a.Annotate(ctx(t), "1", nil, map[string]string{locks.PreferredHolderAnnotation: "b"})
	require.ErrorIs(t, err, locks.ErrNotFound, "Annotate of a missing object")

	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	assert.Empty(t, created.Annotations, "a new lock has no annotations")
	noted, err := a.Annotate(ctx(t), created.Version, nil, map[string]string{locks.PreferredHolderAnnotation: "b"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{locks.PreferredHolderAnnotation: "b"}, noted.Annotations)
	assert.Equal(t, created.Raw, noted.Raw, "an annotation is not part of the record")
	assertRecord(t, Held("a", at, 0), noted.Record)
	assert.NotEqual(t, created.Version, noted.Version, "Annotate must make a new version")

	got, err := read(t, s, s.Other, func(o locks.Observed, err error) bool { return err == nil && o.Version == noted.Version })
	require.NoError(t, err)
	assert.Equal(t, noted.Annotations, got.Annotations, "another handle reads the annotation")

	renewed, err := s.Other.Update(ctx(t), got.Version, Held("a", at.Add(time.Second), 0))
	require.NoError(t, err)
	assert.Equal(t, noted.Annotations, renewed.Annotations, "Update must keep the annotations")

	cleared, err := a.Annotate(ctx(t), renewed.Version, nil, map[string]string{locks.PreferredHolderAnnotation: ""})
	require.NoError(t, err)
	assert.Empty(t, cleared.Annotations, "an empty value removes the annotation")
	assert.Equal(t, renewed.Raw, cleared.Raw, "removing an annotation leaves the record")
}

func testAnnotateRecord(t *testing.T, s Subject) {
	a, _ := annotating(t, s)
	created, err := s.Lock.Create(ctx(t), Held("a", at, 2))
	require.NoError(t, err)
	noted, err := a.Annotate(ctx(t), created.Version, nil, map[string]string{locks.PreferredHolderAnnotation: "b"})
	require.NoError(t, err)

	handed := Held("b", at.Add(time.Second), 2)
	written, err := a.Annotate(ctx(t), noted.Version, &handed, map[string]string{
		locks.PreferredHolderAnnotation: "",
		locks.HandOverAnnotation:        `{"to":"b"}`,
	})
	require.NoError(t, err)
	assertRecord(t, handed, written.Record)
	assert.Equal(t, map[string]string{locks.HandOverAnnotation: `{"to":"b"}`}, written.Annotations)
	assert.NotEqual(t, noted.Raw, written.Raw, "the record was written")

	got, err := read(t, s, s.Other, func(o locks.Observed, err error) bool { return err == nil && o.Version == written.Version })
	require.NoError(t, err)
	assertRecord(t, handed, got.Record)
	assert.Equal(t, written.Annotations, got.Annotations)
	assert.Equal(t, written.Raw, got.Raw)
}

func testAnnotateStale(t *testing.T, s Subject) {
	a, b := annotating(t, s)
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	renewed, err := s.Other.Update(ctx(t), created.Version, Held("a", at.Add(time.Second), 0))
	require.NoError(t, err)

	taken := Held("c", at, 1)
	_, err = a.Annotate(ctx(t), created.Version, &taken, map[string]string{locks.HandOverAnnotation: "x"})
	require.ErrorIs(t, err, locks.ErrConflict)
	_, err = b.Annotate(ctx(t), created.Version, nil, map[string]string{locks.PreferredHolderAnnotation: "c"})
	require.ErrorIs(t, err, locks.ErrConflict)

	got, err := read(t, s, s.Lock, func(o locks.Observed, err error) bool { return err == nil && o.Version == renewed.Version })
	require.NoError(t, err)
	assertRecord(t, Held("a", at.Add(time.Second), 0), got.Record)
	assert.Empty(t, got.Annotations, "a conflicting Annotate must not write")
}

func testAnnotateForeign(t *testing.T, s Subject) {
	a, _ := annotating(t, s)
	created, err := s.Lock.Create(ctx(t), Held("a", at, 0))
	require.NoError(t, err)
	for _, key := range []string{"example.com/owner", locks.AnnotationPrefix, "leader"} {
		_, err = a.Annotate(ctx(t), created.Version, nil, map[string]string{key: "x"})
		require.Error(t, err, "key %q", key)
		assert.NotErrorIs(t, err, locks.ErrConflict)
		assert.Contains(t, err.Error(), key)
	}
	got, err := s.Lock.Get(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, created.Version, got.Version, "a refused Annotate must not write")
}
