package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// ErrNoElections says that a namespace holds no leader election: no Lease
// or ConfigMap there holds a leader election record, and no replica
// announces itself there.
var ErrNoElections = errors.New("no leader elections")

// Client reads and steers the leader elections of one cluster.
type Client struct {
	cs     kubernetes.Interface
	clock  clock.WithTicker
	actor  string
	tracer trace.Tracer
}

// Option configures a Client.
type Option func(*Client)

// WithClock makes the client tell ages, and time its waits, on clk.
func WithClock(clk clock.WithTicker) Option { return func(c *Client) { c.clock = clk } }

// WithActor names who acts in the Events that record each action (default
// "tenure-control"; kubectl-tenure says "kubectl-tenure").
func WithActor(actor string) Option { return func(c *Client) { c.actor = actor } }

// WithTracerProvider makes the client trace each action (move, drain,
// cordon) as a span of tp (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) { c.tracer = tp.Tracer(election.ScopeName) }
}

// New makes a Client of the cluster that cs reaches.
func New(cs kubernetes.Interface, opts ...Option) (*Client, error) {
	if cs == nil {
		return nil, errors.New("control: a Kubernetes client is required")
	}
	c := &Client{cs: cs, clock: clock.RealClock{}, actor: "tenure-control", tracer: otel.GetTracerProvider().Tracer(election.ScopeName)}
	for _, o := range opts {
		o(c)
	}
	if c.clock == nil {
		return nil, errors.New("control: WithClock: nil clock")
	}
	if c.actor == "" {
		return nil, errors.New("control: WithActor: empty actor")
	}
	return c, nil
}

// Status is who leads what in a namespace, and the replicas there.
type Status struct {
	// Namespace is the namespace read; "" for all.
	Namespace string `json:"namespace"`
	// Elections are the leader elections, by namespace and name.
	Elections []Election `json:"elections"`
	// Members are the replicas that announce themselves (see package
	// placement), by namespace and identity.
	Members []Member `json:"members"`
	// Warnings are what could not be read, such as ConfigMaps the caller
	// may not list; what was read is still there.
	Warnings []string `json:"warnings,omitempty"`
}

// Election is one leader election as its lock shows it.
type Election struct {
	// Component is the lock's name: the component's, unless the
	// component sets lock_name.
	Component string `json:"component"`
	// Kind is the lock's kind: lease or configmap.
	Kind locks.Kind `json:"lockKind"`
	// Namespace is the lock's namespace.
	Namespace string `json:"namespace"`
	// Holder is the leader, "" if none.
	Holder string `json:"holder,omitempty"`
	// Term is the record's leader transitions: the fencing token of the
	// holder's term.
	Term int32 `json:"term"`
	// Acquired and Renewed are the holder's acquire and renew times, by
	// the holder's clock.
	Acquired time.Time `json:"acquired,omitzero"`
	Renewed  time.Time `json:"renewed,omitzero"`
	// LeaseDuration is the record's lease.
	LeaseDuration time.Duration `json:"leaseDuration,omitzero"`
	// MovingTo is the replica the holder was asked to hand over to, while
	// the request stands; "" if none.
	MovingTo string `json:"movingTo,omitempty"`
	// HandedOver says that the last holder wrote the record over to
	// Holder, which has not taken it yet.
	HandedOver bool `json:"handedOver,omitempty"`
	// Paused: an operator paused its placement (see Client.Pause);
	// GroupPaused: the placement group of a replica that campaigns for
	// it is paused.
	Paused      bool `json:"paused,omitempty"`
	GroupPaused bool `json:"groupPaused,omitempty"`
	// PlacementGroup is set on the lock of a placement group's
	// coordinator election: that group.
	PlacementGroup string `json:"placementGroup,omitempty"`
	// Candidates are the members that campaign for the election now, by
	// identity (none for elections that no member record names, such as
	// client-go's).
	Candidates []string `json:"candidates,omitempty"`
	// Error says why the record cannot be read, if it cannot.
	Error string `json:"error,omitempty"`

	key string    // its lock's key in member records: kind/namespace/name
	uid types.UID // its lock object's
}

// Lock names the election's lock: "Lease ns/name".
func (e Election) Lock() string {
	kind := "Lease"
	if e.Kind == locks.KindConfigMap {
		kind = "ConfigMap"
	}
	return kind + " " + e.Namespace + "/" + e.Component
}

// Member is one replica, as its member record announces it.
type Member struct {
	// Identity is the replica's identity in every election.
	Identity string `json:"identity"`
	// Namespace is the member record's namespace.
	Namespace string `json:"namespace"`
	// Group is its placement group.
	Group string `json:"group,omitempty"`
	// Components are the locks of the elections it campaigns for now, by
	// name, of kind and namespace too if they are elsewhere
	// ("configmap/other/name").
	Components []string `json:"components,omitempty"`
	// Leads are the elections of the namespace it holds now, by name.
	Leads []string `json:"leads,omitempty"`
	// Started is when it started; Renewed when it last renewed its record.
	Started time.Time `json:"started,omitzero"`
	Renewed time.Time `json:"renewed,omitzero"`
	// Expired says that its record was last renewed more than two of its
	// leases ago, by this client's clock (a lease of tolerance for the
	// clocks' skew): the replica is gone.
	Expired bool `json:"expired,omitempty"`
	// Revision and Zone are what it announces.
	Revision string `json:"revision,omitempty"`
	Zone     string `json:"zone,omitempty"`
	// Cordoned: an operator keeps it from being given leaderships (see
	// Client.Cordon).
	Cordoned bool `json:"cordoned,omitempty"`
	// NeverLead: it is configured never to lead.
	NeverLead bool `json:"neverLead,omitempty"`
	// ShuttingDown: it is stopping, handing its leaderships over.
	ShuttingDown bool `json:"shuttingDown,omitempty"`

	keys []string  // the locks it campaigns for, as keys (see Election)
	uid  types.UID // its member Lease's
}

// Eligible says whether placement may give the member a leadership: it is
// live, not cordoned, not configured never to lead and not stopping.
func (m Member) Eligible() bool {
	return !m.Expired && !m.Cordoned && !m.NeverLead && !m.ShuttingDown
}

// kubeNodeLeases is the namespace of the nodes' heartbeat Leases, which
// hold no election.
const kubeNodeLeases = "kube-node-lease"

// apiserverIdentityLabel marks the API servers' identity Leases, which hold
// no election either.
const apiserverIdentityLabel = "apiserver.kubernetes.io/identity"

// Status reads the leader elections and members of namespace ("" for
// all). A namespace with neither is an error wrapping ErrNoElections; a
// caller that may not list Leases there gets an error that names the
// permission.
func (c *Client) Status(ctx context.Context, namespace string) (*Status, error) {
	leases, err := c.cs.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, apiError("list", "leases", "", "coordination.k8s.io", namespace, err)
	}
	st := &Status{Namespace: namespace}
	members := map[string]*Member{} // by namespace/identity
	named := map[string]bool{}      // lock keys that some member campaigns for
	var elections []*coordinationv1.Lease
	for i := range leases.Items {
		l := &leases.Items[i]
		if l.Namespace == kubeNodeLeases || l.Labels[apiserverIdentityLabel] != "" {
			continue
		}
		if l.Labels[placement.LabelMember] == "true" {
			// A copy of a record under another name is not the
			// identity's (as placement.LeaseRoster reads them).
			if m, ok := c.memberOf(l); ok && l.Name == placement.MemberLeaseName(m.Identity) {
				members[l.Namespace+"/"+m.Identity] = &m
				for _, k := range m.keys {
					named[k] = true
				}
			}
			continue
		}
		elections = append(elections, l)
	}
	for _, l := range elections {
		s := l.Spec
		key := locks.KindLease.Key(l.Namespace, l.Name)
		if s.HolderIdentity == nil && s.AcquireTime == nil && s.LeaseTransitions == nil && !named[key] {
			continue // a Lease that never held an election
		}
		e := Election{Component: l.Name, Kind: locks.KindLease, Namespace: l.Namespace, key: key, uid: l.UID}
		r, _, err := recordIn(l)
		e.fill(r, err, l.Annotations)
		st.Elections = append(st.Elections, e)
	}
	cms, err := c.cs.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{})
	switch {
	case err != nil:
		st.Warnings = append(st.Warnings, "ConfigMap locks are not shown: "+apiError("list", "configmaps", "", "", namespace, err).Error())
	default:
		for i := range cms.Items {
			if e, ok := configMapElection(&cms.Items[i]); ok {
				st.Elections = append(st.Elections, e)
			}
		}
	}
	if len(st.Elections) == 0 && len(members) == 0 {
		if err != nil { // the ConfigMaps could not be read: there may be elections in them
			return nil, apiError("list", "configmaps", "", "", namespace, err)
		}
		return nil, fmt.Errorf("%w in %s: no Lease or ConfigMap there holds a leader election record, and no tenure replica announces itself there", ErrNoElections, where(namespace))
	}

	groups := map[string]string{} // coordinator lock key → group
	for _, m := range members {
		groups[locks.KindLease.Key(m.Namespace, placement.CoordinatorLeaseName(m.Group))] = m.Group
	}
	pausedGroups := map[string]bool{} // namespace/group
	for _, e := range st.Elections {
		if g, ok := groups[e.key]; ok && e.Paused {
			pausedGroups[e.Namespace+"/"+g] = true
		}
	}
	for i := range st.Elections {
		e := &st.Elections[i]
		if g, ok := groups[e.key]; ok {
			e.PlacementGroup = g
		}
		for _, m := range members {
			if slices.Contains(m.keys, e.key) {
				e.Candidates = append(e.Candidates, m.Identity)
				e.GroupPaused = e.GroupPaused || pausedGroups[m.Namespace+"/"+m.Group]
			}
			if e.Holder == m.Identity && e.Namespace == m.Namespace && e.PlacementGroup == "" {
				m.Leads = append(m.Leads, e.Component)
			}
		}
		slices.Sort(e.Candidates)
	}
	for _, m := range members {
		slices.Sort(m.Leads)
		st.Members = append(st.Members, *m)
	}
	slices.SortFunc(st.Elections, func(a, b Election) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Component, b.Component), cmp.Compare(a.Kind, b.Kind))
	})
	slices.SortFunc(st.Members, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Identity, b.Identity))
	})
	return st, nil
}

// fill sets what a record says, or why it cannot be read.
func (e *Election) fill(r locks.Record, err error, annotations map[string]string) {
	if err != nil {
		e.Error = err.Error()
		return
	}
	e.Holder, e.Term = r.HolderIdentity, r.LeaderTransitions
	e.Acquired, e.Renewed, e.LeaseDuration = r.AcquireTime, r.RenewTime, r.LeaseDuration
	e.Paused = annotations[placement.AnnotationPaused] == "true"
	e.MovingTo = cmp.Or(annotations[locks.PreferredHolderAnnotation], r.PreferredHolder)
	if e.MovingTo == e.Holder {
		e.MovingTo = ""
	}
	e.HandedOver = election.HandedOverTo(locks.Observed{Record: r, Annotations: annotations}) != ""
}

// configMapElection is the election that cm's leader annotation holds, if
// it has one.
func configMapElection(cm *corev1.ConfigMap) (Election, bool) {
	r, ok, err := recordIn(cm)
	if !ok {
		return Election{}, false
	}
	e := Election{Component: cm.Name, Kind: locks.KindConfigMap, Namespace: cm.Namespace,
		key: locks.KindConfigMap.Key(cm.Namespace, cm.Name), uid: cm.UID}
	e.fill(r, err, cm.Annotations)
	return e, true
}

// recordIn is the record that a lock object, a Lease or a ConfigMap,
// holds: ok is false for an object that holds none (a ConfigMap without
// the leader annotation), err says why a record cannot be read.
func recordIn(obj runtime.Object) (r locks.Record, ok bool, err error) {
	switch o := obj.(type) {
	case *coordinationv1.Lease:
		r, err = locks.RecordFromLeaseSpec(&o.Spec)
		return r, true, err
	case *corev1.ConfigMap:
		raw, ok := o.Annotations[locks.LeaderAnnotation]
		if !ok {
			return locks.Record{}, false, nil
		}
		r, err = locks.DecodeRecord([]byte(raw))
		return r, true, err
	}
	return locks.Record{}, false, nil
}

// memberOf reads the member record in l.
func (c *Client) memberOf(l *coordinationv1.Lease) (Member, bool) {
	pm, ok := placement.MemberOf(l)
	if !ok {
		return Member{}, false
	}
	a := l.Annotations
	m := Member{
		Identity: pm.Identity, Namespace: l.Namespace, Group: l.Labels[placement.LabelGroup],
		Started: pm.Started, Revision: pm.Revision, Zone: pm.Zone,
		Cordoned:     a[placement.AnnotationCordoned] == "true",
		NeverLead:    a[placement.AnnotationNeverLead] == "true",
		ShuttingDown: pm.ShuttingDown,
		keys:         pm.Components,
		uid:          l.UID,
	}
	for _, k := range pm.Components {
		m.Components = append(m.Components, strings.TrimPrefix(k, locks.KindLease.Key(l.Namespace, "")))
	}
	if rt := l.Spec.RenewTime; rt != nil {
		m.Renewed = rt.Time
		if d := l.Spec.LeaseDurationSeconds; d != nil && *d > 0 {
			m.Expired = c.clock.Since(rt.Time) > 2*time.Duration(*d)*time.Second
		}
	}
	return m, true
}

// span starts the span of an action; end ends it with the action's error.
func (c *Client) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	ctx, sp := c.tracer.Start(ctx, name, trace.WithAttributes(append(attrs, attribute.String("tenure.control.actor", c.actor))...))
	return ctx, func(err error) {
		if err != nil {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
		sp.End()
	}
}

// apiError is err of a request to verb resource (of group) in namespace,
// named name if not "", saying which permission is missing when the API
// server forbids it.
func apiError(verb, resource, name, group, namespace string, err error) error {
	in := "namespace " + namespace
	if namespace == "" {
		in = "all namespaces"
	}
	what := resource
	if name != "" {
		what += "/" + name
	}
	if apierrors.IsForbidden(err) {
		res := resource
		if group != "" {
			res += "." + group
		}
		return fmt.Errorf("forbidden: %s %s in %s needs the %q permission on %s (see deploy/operator): %w", verb, what, in, verb, res, err)
	}
	return fmt.Errorf("%s %s in %s: %w", verb, what, in, err)
}
