package locks

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// LeaseLock keeps the record in the spec of a coordination.k8s.io/v1
// Lease, with the fields mapped as client-go's resourcelock.LeaseLock maps
// them. It is the recommended lock.
//
// Writes are JSON merge patches conditional on the resourceVersion read,
// so an update never touches labels, annotations, spec.strategy or
// spec.preferredHolder, and never overwrites a write it has not seen.
type LeaseLock struct {
	objectRef
	client  coordinationv1client.LeasesGetter
	changes chan struct{} // with a watcher: a change of the Lease
	fresh   freshness     // with a watcher: what the cache must be newer than
}

// NewLeaseLock returns a lock on the Lease namespace/name, which it creates
// on first acquisition. It validates the names but does not contact the
// API server.
func NewLeaseLock(client coordinationv1client.LeasesGetter, namespace, name string, opts ...Option) (*LeaseLock, error) {
	if client == nil {
		return nil, fmt.Errorf("leases lock %s/%s: client is nil", namespace, name)
	}
	ref, err := newObjectRef("leases", namespace, name, opts)
	if err != nil {
		return nil, err
	}
	l := &LeaseLock{objectRef: ref, client: client}
	if w := ref.watcher; w != nil {
		l.changes = w.subscribe(namespace, name)
		// Locks have no Close: a lock that is gone (garbage) leaves the
		// watcher's subscribers, so that making locks over time does not
		// grow the list. The cleanup must not keep l alive: it gets the
		// channel alone.
		runtime.AddCleanup(l, func(ch chan struct{}) { w.unsubscribe(namespace, name, ch) }, l.changes)
	}
	return l, nil
}

// Changes is a channel that receives when the Lease changes, if the lock
// has a watcher (see WithWatcher); nil otherwise. An election waits on it
// instead of its next poll.
func (l *LeaseLock) Changes() <-chan struct{} { return l.changes }

// Get implements Lock. With a watcher it reads the cache when the cache
// is at least as new as what this lock has seen, else the API server.
func (l *LeaseLock) Get(ctx context.Context) (Observed, error) {
	if err := ctx.Err(); err != nil {
		return Observed{}, l.apiError("get", err)
	}
	if l.watcher != nil {
		lease, found, usable := l.watcher.cached(l.namespace, l.name)
		if usable && l.fresh.trusts(found, versionOf(lease)) {
			if !found {
				return Observed{}, fmt.Errorf("get %s: %w", l.Describe(), ErrNotFound)
			}
			return l.observe(lease)
		}
	}
	return l.GetFromServer(ctx)
}

// GetFromServer reads the record from the API server, past the watcher's
// cache. An election reads this way when the holder it observes has been
// silent for longer than its renewals take: a watch can be established
// and still deliver nothing (a half-open connection), and the cache then
// only looks quiet.
func (l *LeaseLock) GetFromServer(ctx context.Context) (Observed, error) {
	lease, err := l.client.Leases(l.namespace).Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			l.fresh.gone()
		}
		return Observed{}, l.apiError("get", err)
	}
	l.fresh.saw(lease.ResourceVersion)
	return l.observe(lease)
}

func versionOf(lease *coordinationv1.Lease) string {
	if lease == nil {
		return ""
	}
	return lease.ResourceVersion
}

// Create implements Lock.
func (l *LeaseLock) Create(ctx context.Context, r Record) (Observed, error) {
	if err := r.Validate(); err != nil {
		return Observed{}, fmt.Errorf("create %s: %w", l.Describe(), err)
	}
	p := leasePatchOf(r)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: l.namespace, Name: l.name, Labels: l.labels},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       &p.Spec.HolderIdentity,
			LeaseDurationSeconds: p.Spec.LeaseDurationSeconds,
			AcquireTime:          p.Spec.AcquireTime,
			RenewTime:            p.Spec.RenewTime,
			LeaseTransitions:     &p.Spec.LeaseTransitions,
		},
	}
	created, err := l.client.Leases(l.namespace).Create(ctx, lease, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			l.fresh.conflicted("")
		}
		return Observed{}, l.apiError("create", err)
	}
	l.fresh.saw(created.ResourceVersion)
	return l.observe(created)
}

// Update implements Lock.
func (l *LeaseLock) Update(ctx context.Context, version string, r Record) (Observed, error) {
	if version == "" {
		return Observed{}, fmt.Errorf("update %s: %w", l.Describe(), errNoVersion)
	}
	if err := r.Validate(); err != nil {
		return Observed{}, fmt.Errorf("update %s: %w", l.Describe(), err)
	}
	p := leasePatchOf(r)
	p.Metadata.ResourceVersion = version
	p.Metadata.Labels = l.labels
	body, err := json.Marshal(p)
	if err != nil {
		return Observed{}, fmt.Errorf("update %s: %w", l.Describe(), err)
	}
	updated, err := l.client.Leases(l.namespace).Patch(ctx, l.name, types.MergePatchType, body, metav1.PatchOptions{})
	if err != nil {
		switch {
		case apierrors.IsConflict(err):
			l.fresh.conflicted(version)
		case apierrors.IsNotFound(err):
			l.fresh.gone()
		}
		return Observed{}, l.apiError("update", err)
	}
	l.fresh.saw(updated.ResourceVersion)
	return l.observe(updated)
}

// leasePatch is a JSON merge patch of the Lease fields the record owns.
// Nil times and a nil duration are written as null, which removes them,
// as client-go's zero times do.
type leasePatch struct {
	Metadata struct {
		ResourceVersion string            `json:"resourceVersion,omitempty"`
		Labels          map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		HolderIdentity       string            `json:"holderIdentity"`
		LeaseDurationSeconds *int32            `json:"leaseDurationSeconds"`
		AcquireTime          *metav1.MicroTime `json:"acquireTime"`
		RenewTime            *metav1.MicroTime `json:"renewTime"`
		LeaseTransitions     int32             `json:"leaseTransitions"`
	} `json:"spec"`
}

func leasePatchOf(r Record) leasePatch {
	var p leasePatch
	p.Spec.HolderIdentity = r.HolderIdentity
	// The API server rejects a zero duration; a record without a holder
	// may have none, which is stored as an absent field.
	if s := durationSeconds(r.LeaseDuration); s > 0 {
		secs := int32(s)
		p.Spec.LeaseDurationSeconds = &secs
	}
	p.Spec.AcquireTime = microTime(r.AcquireTime)
	p.Spec.RenewTime = microTime(r.RenewTime)
	p.Spec.LeaseTransitions = r.LeaderTransitions
	return p
}

func microTime(t time.Time) *metav1.MicroTime {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewMicroTime(t)
	return &mt
}

// observe turns a Lease read from the API server into an Observed. Raw is
// the JSON of the whole spec, so any change to the record shows.
func (l *LeaseLock) observe(lease *coordinationv1.Lease) (Observed, error) {
	raw, err := json.Marshal(lease.Spec)
	if err != nil {
		return Observed{}, fmt.Errorf("%s: encode spec: %w", l.Describe(), err)
	}
	obs := Observed{Raw: raw, Version: lease.ResourceVersion}
	r, err := RecordFromLeaseSpec(&lease.Spec)
	if err != nil {
		return obs, fmt.Errorf("%s: %w", l.Describe(), err)
	}
	obs.Record = r
	return obs, nil
}

// RecordFromLeaseSpec maps a Lease spec to a Record as client-go does,
// except that a spec no candidate can act on (a holder without a lease
// duration, a negative duration or transition count) is an error wrapping
// ErrInvalidRecord that names the field, where client-go reads zero.
func RecordFromLeaseSpec(spec *coordinationv1.LeaseSpec) (Record, error) {
	var r Record
	if spec.HolderIdentity != nil {
		r.HolderIdentity = *spec.HolderIdentity
	}
	if d := spec.LeaseDurationSeconds; d != nil {
		if *d < 0 {
			return Record{}, invalidf("spec.leaseDurationSeconds", "%d is negative", *d)
		}
		r.LeaseDuration = time.Duration(*d) * time.Second
	} else if r.HolderIdentity != "" {
		return Record{}, invalidf("spec.leaseDurationSeconds", "is missing while spec.holderIdentity is %q", r.HolderIdentity)
	}
	if n := spec.LeaseTransitions; n != nil {
		if *n < 0 {
			return Record{}, invalidf("spec.leaseTransitions", "%d is negative", *n)
		}
		r.LeaderTransitions = *n
	}
	if spec.AcquireTime != nil {
		r.AcquireTime = spec.AcquireTime.Time
	}
	if spec.RenewTime != nil {
		r.RenewTime = spec.RenewTime.Time
	}
	if spec.Strategy != nil {
		r.Strategy = string(*spec.Strategy)
	}
	if spec.PreferredHolder != nil {
		r.PreferredHolder = *spec.PreferredHolder
	}
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("spec: %w", err)
	}
	return r, nil
}

// Permissions returns the API requests the lock makes: with a watcher,
// also list and watch of the leases in its namespace.
func (l *LeaseLock) Permissions() []Permission {
	perms := l.permissions("coordination.k8s.io")
	if l.watcher != nil {
		for _, verb := range []string{"list", "watch"} {
			perms = append(perms, Permission{Verb: verb, Group: "coordination.k8s.io", Resource: "leases", Namespace: l.namespace})
		}
	}
	return perms
}

// TimeResolution is how finely the lock stores a record's times:
// microseconds (a MicroTime). An election does not count a renewal that stores the same renew
// time as the last, and checks its timings against it.
func (l *LeaseLock) TimeResolution() time.Duration { return time.Microsecond }
