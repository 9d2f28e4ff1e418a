package locks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
	client coordinationv1client.LeasesGetter
	fresh  freshness // what the watch cache must be at least as new as

	mu        sync.Mutex
	following int             // subscriptions to the watch (see Watch)
	watch     *namespaceWatch // while following
}

// NewLeaseLock returns a lock on the Lease namespace/name, which it creates
// on first acquisition. It validates the names but does not contact the
// API server.
//
// While an election runs on the lock, the lock follows its Lease through a
// watch shared by every LeaseLock of the same client and namespace (see
// Watch), so that a standby learns of a release or a renewal at once and
// reads without requests. That needs list and watch on leases in the
// namespace, besides get, create and patch on the Lease (see
// Permissions); WithoutWatch turns it off.
func NewLeaseLock(client coordinationv1client.LeasesGetter, namespace, name string, opts ...Option) (*LeaseLock, error) {
	if client == nil {
		return nil, fmt.Errorf("leases lock %s/%s: client is nil", namespace, name)
	}
	ref, err := newObjectRef("leases", namespace, name, opts)
	if err != nil {
		return nil, err
	}
	return &LeaseLock{objectRef: ref, client: client}, nil
}

// WithoutWatch makes a LeaseLock read from the API server every time and
// never watch: an election on it then polls every retry period, as
// client-go's does, and needs no list or watch permission. Other locks
// ignore it.
func WithoutWatch() Option {
	return optionFunc(func(o *objectOptions) { o.noWatch = true })
}

// Watch makes the lock follow its Lease until stop is called, and returns
// a channel that receives after the Lease changes. Meanwhile Get reads from
// the watch's cache whenever that is at least as new as what this lock
// has read or written, and from the API server otherwise (while the watch
// is down, not yet listed, or behind). Every LeaseLock of the same client
// and namespace shares one watch, which starts with the first
// subscription and stops with the last: stop waits until it has stopped
// if it was the last. An election calls Watch for as long as Run or
// Acquire runs; a lock made WithoutWatch returns a nil channel.
func (l *LeaseLock) Watch() (changes <-chan struct{}, stop func()) {
	if l.noWatch {
		return nil, func() {}
	}
	nw, ch := watches.subscribe(l.client, l, l.namespace, l.name)
	l.mu.Lock()
	l.following++
	l.watch = nw
	l.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			if l.following--; l.following == 0 {
				l.watch = nil
			}
			l.mu.Unlock()
			watches.unsubscribe(nw, l.name, ch)
		})
	}
}

// followed returns the watch the lock follows, or nil.
func (l *LeaseLock) followed() *namespaceWatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watch
}

// Get implements Lock. While the lock follows its Lease (see Watch), it
// reads the watch's cache when that is at least as new as what this lock
// has seen, else the API server.
func (l *LeaseLock) Get(ctx context.Context) (Observed, error) {
	if err := ctx.Err(); err != nil {
		return Observed{}, l.apiError("get", err)
	}
	if nw := l.followed(); nw != nil {
		lease, found, usable := watches.cached(nw, l.name)
		if usable && l.fresh.trusts(found, versionOf(lease)) {
			if !found {
				return Observed{}, fmt.Errorf("get %s: %w", l.Describe(), ErrNotFound)
			}
			return l.observe(lease)
		}
	}
	return l.GetFromServer(ctx)
}

// GetFromServer reads the record from the API server, past the watch's
// cache. An election reads this way when the holder it observes has been
// silent for longer than its renewals take: a watch can be established
// and still deliver nothing (a half-open connection), and the cache then
// only looks quiet.
func (l *LeaseLock) GetFromServer(ctx context.Context) (Observed, error) {
	lease, err := l.client.Leases(l.namespace).Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			l.fresh.gone("")
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
	return l.write(ctx, "update", version, &r, nil)
}

// Annotate writes tenure's annotations and, if r is not nil, the record,
// in one merge patch conditional on version (see Lock): annotations of
// others, labels and spec.strategy and spec.preferredHolder are left
// alone.
func (l *LeaseLock) Annotate(ctx context.Context, version string, r *Record, set map[string]string) (Observed, error) {
	if err := validAnnotations(set); err != nil {
		return Observed{}, fmt.Errorf("annotate %s: %w", l.Describe(), err)
	}
	return l.write(ctx, "annotate", version, r, set)
}

// write patches the record (if r is not nil) and the annotations in set
// ("" removes one) if the Lease is at version.
func (l *LeaseLock) write(ctx context.Context, op, version string, r *Record, set map[string]string) (Observed, error) {
	if version == "" {
		return Observed{}, fmt.Errorf("%s %s: %w", op, l.Describe(), errNoVersion)
	}
	var p leasePatch
	if r != nil {
		if err := r.Validate(); err != nil {
			return Observed{}, fmt.Errorf("%s %s: %w", op, l.Describe(), err)
		}
		p.Spec = leasePatchOf(*r).Spec
	}
	p.Metadata.ResourceVersion = version
	p.Metadata.Labels = l.labels
	p.Metadata.Annotations = annotationPatch(set)
	body, err := json.Marshal(p)
	if err != nil {
		return Observed{}, fmt.Errorf("%s %s: %w", op, l.Describe(), err)
	}
	updated, err := l.client.Leases(l.namespace).Patch(ctx, l.name, types.MergePatchType, body, metav1.PatchOptions{})
	if err != nil {
		switch {
		case apierrors.IsConflict(err):
			l.fresh.conflicted(version)
		case apierrors.IsNotFound(err):
			l.fresh.gone(version)
		}
		return Observed{}, l.apiError(op, err)
	}
	l.fresh.saw(updated.ResourceVersion)
	return l.observe(updated)
}

// annotationPatch is set as the annotations of a JSON merge patch: an
// empty value is null, which removes the annotation.
func annotationPatch(set map[string]string) map[string]*string {
	if len(set) == 0 {
		return nil
	}
	p := make(map[string]*string, len(set))
	for k, v := range set {
		if v != "" {
			p[k] = &v
		} else {
			p[k] = nil
		}
	}
	return p
}

// leasePatch is a JSON merge patch of the Lease fields the record owns
// and of tenure's annotations. Nil times and a nil duration are written as
// null, which removes them, as client-go's zero times do.
type leasePatch struct {
	Metadata struct {
		ResourceVersion string             `json:"resourceVersion,omitempty"`
		Labels          map[string]string  `json:"labels,omitempty"`
		Annotations     map[string]*string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec *leaseSpecPatch `json:"spec,omitempty"`
}

// leaseSpecPatch is the record's part of a leasePatch.
type leaseSpecPatch struct {
	HolderIdentity       string            `json:"holderIdentity"`
	LeaseDurationSeconds *int32            `json:"leaseDurationSeconds"`
	AcquireTime          *metav1.MicroTime `json:"acquireTime"`
	RenewTime            *metav1.MicroTime `json:"renewTime"`
	LeaseTransitions     int32             `json:"leaseTransitions"`
}

func leasePatchOf(r Record) leasePatch {
	p := leasePatch{Spec: &leaseSpecPatch{}}
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
	obs := Observed{Raw: raw, Version: lease.ResourceVersion, Annotations: ownAnnotations(lease.Annotations)}
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

// Permissions returns the API requests the lock makes: get, create and
// patch of its Lease and, unless made WithoutWatch, list and watch of the
// leases in its namespace.
func (l *LeaseLock) Permissions() []Permission {
	perms := l.permissions("coordination.k8s.io")
	if !l.noWatch {
		for _, verb := range []string{"list", "watch"} {
			perms = append(perms, Permission{Verb: verb, Group: "coordination.k8s.io", Resource: "leases", Namespace: l.namespace})
		}
	}
	return perms
}

// TimeResolution is how finely the lock stores a record's times:
// microseconds (a MicroTime). An election does not count a renewal that
// stores the same bytes as the last, steps its renew times by it when the
// wall clock is behind them, and checks its timings against it.
func (l *LeaseLock) TimeResolution() time.Duration { return time.Microsecond }
