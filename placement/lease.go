package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/tenure/tenure/internal/listwatch"
	"github.com/tenure/tenure/locks"
)

// Labels and annotations of member records.
const (
	// LabelMember marks a Lease as a tenure member record.
	LabelMember = locks.AnnotationPrefix + "member"
	// LabelGroup is the placement group of a member record: replicas of
	// one group are placed together, by one coordinator (see WithGroup).
	LabelGroup = locks.AnnotationPrefix + "placement-group"
	// Member record annotations: what the replica announces.
	AnnotationComponents   = locks.AnnotationPrefix + "components"    // comma-separated
	AnnotationStarted      = locks.AnnotationPrefix + "started"       // RFC 3339
	AnnotationRevision     = locks.AnnotationPrefix + "revision"      // e.g. a pod-template-hash
	AnnotationZone         = locks.AnnotationPrefix + "zone"          // topology zone
	AnnotationNeverLead    = locks.AnnotationPrefix + "never-lead"    // "true": configured never to lead
	AnnotationShuttingDown = locks.AnnotationPrefix + "shutting-down" // "true"
	// AnnotationCordoned is an operator's: "true" keeps the replica from
	// being chosen. A replica's announcements never write it.
	AnnotationCordoned = locks.AnnotationPrefix + "cordoned"
	// AnnotationPaused is an operator's, on a component's lock or on a
	// placement group's coordinator Lease: "true" keeps the coordinator
	// from asking moves of that component, or of any of the group's (see
	// CoordinatorConfig.Paused). A move asked before goes on: withdrawn
	// while the leader's work winds down, it would end in a release.
	AnnotationPaused = locks.AnnotationPrefix + "placement-paused"
)

// LeaseRoster keeps member records as Leases labelled LabelMember and
// LabelGroup in one namespace, and reads them from a watch of its own (one
// list and watch per replica, whatever the number of components). A
// record is live for its lease duration after this roster last saw it
// change, judged on this roster's clock, as an election judges a lock; a
// record this roster has not yet seen change is live only while its own
// renew time, plus its lease, is still ahead (a replica killed an hour ago
// left a record that says so).
type LeaseRoster struct {
	client    coordinationv1client.LeasesGetter
	namespace string
	group     string
	lease     time.Duration
	clock     clock.PassiveClock
	owner     *metav1.OwnerReference

	informer cache.SharedIndexInformer
	stop     chan struct{}
	done     chan struct{}

	mu   sync.Mutex
	seen map[string]sighting // Lease name → its current version, as first seen
}

// sighting is a version of a member record, and when this roster first saw
// it; changed says that the roster saw the record change to it.
type sighting struct {
	version string
	at      time.Time
	changed bool
}

// LeaseRosterOption configures a LeaseRoster.
type LeaseRosterOption func(*LeaseRoster)

// WithOwner makes the member records this roster creates owned by owner,
// such as the replica's Pod, so that they are deleted with it.
func WithOwner(owner metav1.OwnerReference) LeaseRosterOption {
	return func(r *LeaseRoster) { r.owner = &owner }
}

// WithClock makes the roster judge expiry on clk.
func WithClock(clk clock.PassiveClock) LeaseRosterOption {
	return func(r *LeaseRoster) { r.clock = clk }
}

// WithGroup makes the roster announce and read the members of placement
// group group (a label value; default ""), so that two programs in one
// namespace are placed apart.
func WithGroup(group string) LeaseRosterOption {
	return func(r *LeaseRoster) { r.group = group }
}

// NewLeaseRoster makes a roster of member Leases in namespace whose
// records expire lease after they last changed, and starts its watch; Close
// stops it.
func NewLeaseRoster(client coordinationv1client.LeasesGetter, namespace string, lease time.Duration, opts ...LeaseRosterOption) (*LeaseRoster, error) {
	if client == nil {
		return nil, errors.New("placement: lease roster: client is nil")
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf("placement: lease roster: namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if lease < time.Second {
		return nil, fmt.Errorf("placement: lease roster: lease %v is under a second, the least a Lease keeps", lease)
	}
	r := &LeaseRoster{client: client, namespace: namespace, lease: lease, clock: clock.RealClock{}, seen: map[string]sighting{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	if err := ValidateGroup(r.group); err != nil {
		return nil, fmt.Errorf("placement: lease roster: %w", err)
	}
	selector := labels.Set{LabelMember: "true", LabelGroup: r.group}.String()
	r.informer = cache.NewSharedIndexInformer(listwatch.Of(client.Leases(namespace), selector, ""), &coordinationv1.Lease{}, 0, cache.Indexers{})
	// Sightings are timed when the watch delivers them, not when Members
	// reads them: a replica that reads its roster only as it stops must
	// not take a record that changed an hour ago for one that changed now.
	// A record made after the first list is a change seen: its writer was
	// alive then, whatever its clock says.
	if _, err := r.informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { r.sight(obj, !initial) },
		UpdateFunc: func(_, obj any) { r.sight(obj, true) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if lease, ok := obj.(*coordinationv1.Lease); ok {
				r.mu.Lock()
				delete(r.seen, lease.Name)
				r.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("placement: lease roster: %w", err)
	}
	go func() {
		defer close(r.done)
		r.informer.Run(r.stop)
	}()
	return r, nil
}

// ValidateGroup says why group cannot name a placement group, if it cannot:
// it is a label value.
func ValidateGroup(group string) error {
	if errs := validation.IsValidLabelValue(group); len(errs) > 0 {
		return fmt.Errorf("placement group %q: %s", group, strings.Join(errs, "; "))
	}
	return nil
}

// sight records obj's version as seen now, if it is new; changed says
// that it replaced a version seen, or was made after the first list.
func (r *LeaseRoster) sight(obj any, changed bool) {
	lease, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.seen[lease.Name]; ok && s.version == lease.ResourceVersion {
		return
	}
	r.seen[lease.Name] = sighting{version: lease.ResourceVersion, at: r.clock.Now(), changed: changed}
}

// Close stops the roster's watch and waits for it.
func (r *LeaseRoster) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// Synced says whether the roster has listed the member records once.
func (r *LeaseRoster) Synced() bool { return r.informer.HasSynced() }

// MemberLeaseName is the name of the Lease that holds identity's member
// record: "tenure-member-", the identity made a valid name, and a hash of
// the identity, so that no two identities share one.
func MemberLeaseName(identity string) string { return hashedName(MemberLeasePrefix, identity) }

// MemberLeasePrefix starts the name of every member record's Lease.
const MemberLeasePrefix = "tenure-member-"

// CoordinatorLeaseName is the name of the lock of placement group group's
// coordinator election: "tenure-placement" for the group "",
// "tenure-placement-" and the group if it is lower-case letters, digits
// and inner dashes (for a Role's resourceNames), else "tenure-placement-",
// the group made a valid name, and a hash of it.
func CoordinatorLeaseName(group string) string {
	const prefix = "tenure-placement"
	switch {
	case group == "":
		return prefix
	case len(validation.IsDNS1123Label(group)) == 0:
		return prefix + "-" + group
	}
	return hashedName(prefix+"-", group)
}

// hashedName is prefix, s made lower-case letters, digits and dashes (at
// most 200 of them, none at either end), a dash, and a 64-bit hash of s:
// a valid name of an object, distinct for distinct s.
func hashedName(prefix, s string) string {
	name := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			return c
		case c >= 'A' && c <= 'Z':
			return c - 'A' + 'a'
		}
		return '-'
	}, s)
	if len(name) > 200 {
		name = name[:200]
	}
	name = strings.Trim(name, "-")
	h := fnv.New64a()
	h.Write([]byte(s))
	if name == "" {
		return fmt.Sprintf("%s%016x", prefix, h.Sum64())
	}
	return fmt.Sprintf("%s%s-%016x", prefix, name, h.Sum64())
}

// Announce implements Roster: one merge patch of the member Lease, or a
// create the first time.
func (r *LeaseRoster) Announce(ctx context.Context, m Member) error {
	if err := m.validate(); err != nil {
		return err
	}
	name := MemberLeaseName(m.Identity)
	now := metav1.NewMicroTime(r.clock.Now())
	secs := int32((r.lease + time.Second - 1) / time.Second) // whole seconds, rounded up as the locks do
	ann := announcement(m)
	patch := map[string]any{
		"metadata": map[string]any{"labels": r.labels(), "annotations": ann},
		"spec":     map[string]any{"holderIdentity": m.Identity, "leaseDurationSeconds": secs, "renewTime": now},
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("placement: announce %s: %w", m.Identity, err)
	}
	leases := r.client.Leases(r.namespace)
	_, err = leases.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
	if !apierrors.IsNotFound(err) {
		return r.apiError("patch", name, err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.namespace, Labels: r.labels(), Annotations: map[string]string{}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &m.Identity, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	for k, v := range ann {
		if v != nil {
			lease.Annotations[k] = *v
		}
	}
	if r.owner != nil {
		lease.OwnerReferences = []metav1.OwnerReference{*r.owner}
	}
	_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // made meanwhile: patch it
		_, err = leases.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
		return r.apiError("patch", name, err)
	}
	return r.apiError("create", name, err)
}

// labels are the labels of this roster's member records.
func (r *LeaseRoster) labels() map[string]string {
	return map[string]string{LabelMember: "true", LabelGroup: r.group}
}

func (r *LeaseRoster) apiError(verb, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("placement: %s leases/%s/%s: %w", verb, r.namespace, name, err)
}

// announcement is the annotations that announce m; nil values remove a
// key (a merge patch's null).
func announcement(m Member) map[string]*string {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	flag := func(b bool) *string {
		if !b {
			return nil
		}
		return str("true")
	}
	started := ""
	if !m.Started.IsZero() {
		started = m.Started.UTC().Format(time.RFC3339Nano)
	}
	return map[string]*string{
		AnnotationComponents:   str(strings.Join(m.Components, ",")),
		AnnotationStarted:      str(started),
		AnnotationRevision:     str(m.Revision),
		AnnotationZone:         str(m.Zone),
		AnnotationNeverLead:    flag(m.Cordoned),
		AnnotationShuttingDown: flag(m.ShuttingDown),
	}
}

// MemberOf reads the member record in lease, false if it holds none: a
// Lease labelled LabelMember with a holder. Cordoned is set whether the
// replica is configured never to lead or an operator cordoned it.
func MemberOf(lease *coordinationv1.Lease) (Member, bool) {
	if lease.Labels[LabelMember] != "true" || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return Member{}, false
	}
	a := lease.Annotations
	m := Member{
		Identity:     *lease.Spec.HolderIdentity,
		Revision:     a[AnnotationRevision],
		Zone:         a[AnnotationZone],
		Cordoned:     a[AnnotationNeverLead] == "true" || a[AnnotationCordoned] == "true",
		ShuttingDown: a[AnnotationShuttingDown] == "true",
	}
	if c := a[AnnotationComponents]; c != "" {
		m.Components = strings.Split(c, ",")
	}
	if t, err := time.Parse(time.RFC3339Nano, a[AnnotationStarted]); err == nil {
		m.Started = t
	}
	return m, true
}

// leaseOf is how long lease's member record lives after it changes: as
// its spec says, else def.
func leaseOf(lease *coordinationv1.Lease, def time.Duration) time.Duration {
	if s := lease.Spec.LeaseDurationSeconds; s != nil && *s > 0 {
		return time.Duration(*s) * time.Second
	}
	return def
}

// Leave implements Roster.
func (r *LeaseRoster) Leave(ctx context.Context, identity string) error {
	name := MemberLeaseName(identity)
	err := r.client.Leases(r.namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return r.apiError("delete", name, err)
}

// Members implements Roster, from the roster's watch. A Lease that holds
// an identity's record under another name than MemberLeaseName(identity),
// a copy or a leftover, is not that identity's record and is ignored.
func (r *LeaseRoster) Members() []Member {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Member
	for _, obj := range r.informer.GetStore().List() {
		lease, ok := obj.(*coordinationv1.Lease)
		if !ok {
			continue
		}
		m, ok := MemberOf(lease)
		if !ok || lease.Name != MemberLeaseName(m.Identity) {
			continue
		}
		s, ok := r.seen[lease.Name]
		if !ok || s.version != lease.ResourceVersion {
			// The store is ahead of the handlers: a change, just now.
			s = sighting{version: lease.ResourceVersion, at: now, changed: true}
		}
		d := leaseOf(lease, r.lease)
		if now.Sub(s.at) >= d {
			continue
		}
		// A version seen in the first list, rather than seen to replace
		// another, may be a record nobody renews any more: its renew time,
		// on its writer's clock, tells. A writer's clock behind this
		// roster's by more than the lease, less the time since its last
		// renewal, delays the member until its next renewal.
		if !s.changed && (lease.Spec.RenewTime == nil || !now.Before(lease.Spec.RenewTime.Add(d))) {
			continue
		}
		out = append(out, m)
	}
	sortMembers(out)
	return out
}
