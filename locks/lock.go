// Package locks stores leader election records: the Lock interface that an
// election reads and writes, and its implementations.
//
// Start with NewLeaseLock: a coordination.k8s.io Lease, the recommended
// lock, which election.New takes as its Config.Lock. NewConfigMapLock keeps
// the record in a ConfigMap annotation instead (legacy, shared with
// programs that use client-go before v0.24 or the Python clients), and
// NewMemoryLock in process memory, for tests. A program's configuration
// chooses among the three by Kind. To keep the record anywhere else,
// implement Lock and run the suite of package locks/lockstest on your type.
//
// While an election runs on a LeaseLock, the lock follows its Lease through
// a watch shared by every LeaseLock of the same client and namespace: a
// standby learns of a release at once and reads from the watch's cache
// instead of the API server. The watch needs list and watch on leases in
// the lock's namespace (see LeaseLock.Permissions); WithoutWatch makes a
// lock poll instead, as client-go's does.
//
// Records are kept in client-go's format, so a tenure candidate and a
// client-go candidate can compete for the same lock.
package locks

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors returned, wrapped, by every Lock. Match them with
// errors.Is; the wrapping error says which object and why.
var (
	// ErrNotFound means the lock object, or its record, does not exist.
	ErrNotFound = errors.New("locks: not found")
	// ErrConflict means another writer changed or created the lock since
	// the version the caller read: re-read and decide again.
	ErrConflict = errors.New("locks: conflict")
	// ErrInvalidRecord means a stored record cannot be read faithfully: it
	// is corrupted, or holds values no candidate can act on.
	ErrInvalidRecord = errors.New("locks: invalid leader election record")
)

// Observed is a record as it was read from, or written to, a lock.
type Observed struct {
	// Record is the decoded record: decoded from what was stored, not the
	// Record the caller passed to a write (whose times carry the writer's
	// monotonic clock reading and its full precision). It is the zero
	// Record when the stored record could not be decoded (see Lock.Get).
	Record Record
	// Raw is the record as stored. Two observations with equal Raw saw the
	// same record; a changed Raw means somebody wrote. Callers must not
	// modify it.
	Raw []byte
	// Version is the lock's optimistic concurrency token (a Kubernetes
	// resourceVersion). Pass it to Update.
	Version string
	// Annotations are the annotations of the lock object that tenure owns
	// (keys with the AnnotationPrefix), nil if there are none or the lock
	// keeps none. They are not part of the record: writing them is no
	// renewal, and Raw does not change with them.
	Annotations map[string]string
}

// Annotations of a lock object that tenure owns. A lock that keeps them
// (see Lock) writes them only through Annotate, conditional on the version
// read, and no other write of the lock touches them.
const (
	// AnnotationPrefix begins every annotation tenure owns.
	AnnotationPrefix = "tenure.dev/"
	// PreferredHolderAnnotation asks the leader to hand the lock over to
	// the candidate it names, once: the leader's work winds down, then the
	// leader writes the record over to that candidate (see
	// HandOverAnnotation). The next acquisition of the lock clears it.
	// Kubernetes' coordinated leader election asks the same through the
	// Lease's spec.preferredHolder (Record.PreferredHolder), which an
	// election honours too; this annotation works on every lock that keeps
	// annotations and whether or not the API server serves that field.
	PreferredHolderAnnotation = AnnotationPrefix + "preferred-holder"
	// HandOverAnnotation marks a record that its last holder wrote over to
	// the candidate named in it, after its work had returned: that
	// candidate takes the lock at once, and every other candidate sees a
	// held lock and waits for it to expire. Its value is JSON written by
	// package election; the next acquisition clears it.
	HandOverAnnotation = AnnotationPrefix + "handover"
)

// validAnnotations checks that every key of set is one tenure owns.
func validAnnotations(set map[string]string) error {
	for k := range set {
		if !strings.HasPrefix(k, AnnotationPrefix) || len(k) == len(AnnotationPrefix) {
			return fmt.Errorf("annotation %q is not one of tenure's (%s...)", k, AnnotationPrefix)
		}
	}
	return nil
}

// ownAnnotations returns the annotations of all that tenure owns, nil if
// none.
func ownAnnotations(all map[string]string) map[string]string {
	var own map[string]string
	for k, v := range all {
		if strings.HasPrefix(k, AnnotationPrefix) {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	return own
}

// Lock is where a leader election record lives. Implementations must be
// safe for concurrent use; a lock holds no state about its record between
// calls, so several candidates may share one.
//
// Implement it to keep a record on another resource; the suite in
// package locks/lockstest checks that an implementation behaves as the
// election expects. An election also uses these methods when a lock has
// them, as the locks of this package do:
//
//	// Watch: wake on changes instead of polling (see LeaseLock.Watch).
//	Watch() (changes <-chan struct{}, stop func())
//	// GetFromServer: read past a cache that Get may answer from.
//	GetFromServer(ctx context.Context) (Observed, error)
//	// TimeResolution: how finely the record's times are stored.
//	TimeResolution() time.Duration
//	// Annotate: write tenure's annotations (see PreferredHolderAnnotation)
//	// and, if r is not nil, the record, in one write conditional on
//	// version. A key set to "" is removed; other annotations and fields
//	// are left alone. Keys must have the AnnotationPrefix. It fails as
//	// Update does. Without it, an election hands over by releasing.
//	Annotate(ctx context.Context, version string, r *Record, set map[string]string) (Observed, error)
//
// A wrapper that embeds the Lock interface hides them: embed the concrete
// type instead to keep them.
type Lock interface {
	// Get reads the record. A missing object or record is an error
	// wrapping ErrNotFound. A record that cannot be decoded is an error
	// wrapping ErrInvalidRecord returned together with an Observed whose
	// Raw and Version are set, so that a caller can still watch it for
	// change and replace it with Update.
	Get(ctx context.Context) (Observed, error)
	// Create stores the record in a new object. It fails with ErrConflict
	// if a record already exists.
	Create(ctx context.Context, r Record) (Observed, error)
	// Update replaces the record if the lock is still at version, the
	// Version of an earlier Observed. It fails with ErrConflict if somebody
	// wrote since, and with ErrNotFound if the object is gone. It leaves
	// every part of the object that is not the record untouched.
	Update(ctx context.Context, version string, r Record) (Observed, error)
	// Describe names the lock for logs and traces, such as
	// "leases/default/my-lock".
	Describe() string
}
