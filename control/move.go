package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/listwatch"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// Errors that Move, Drain and Cordon wrap; match them with errors.Is.
var (
	// ErrUnknownComponent: no election of that name in the namespace.
	ErrUnknownComponent = errors.New("unknown component")
	// ErrUnknownMember: no replica of that identity in the namespace.
	ErrUnknownMember = errors.New("unknown replica")
	// ErrNotEligible: the target cannot take the leadership (cordoned,
	// stopping, gone, or not campaigning for it).
	ErrNotEligible = errors.New("the replica cannot lead it")
	// ErrNoLeader: the election has no leader to move.
	ErrNoLeader = errors.New("no leader")
	// ErrMovedElsewhere: the leadership went to another replica than the
	// one asked for (another move, a crash, a coordinator's redirect).
	ErrMovedElsewhere = errors.New("moved elsewhere")
)

// AnyMember as Move's target lets Move choose: the eligible replica that
// campaigns for the component and leads the fewest elections.
const AnyMember = ""

// Moved is what a move came to.
type Moved struct {
	// Component, Namespace and Kind name the election.
	Component string     `json:"component"`
	Namespace string     `json:"namespace"`
	Kind      locks.Kind `json:"lockKind"`
	// From is the leader asked to hand over, To the replica it went to.
	From string `json:"from"`
	To   string `json:"to"`
	// Already: To led it already, and nothing was asked.
	Already bool `json:"already,omitempty"`
	// Term is To's term, the fencing token.
	Term int32 `json:"term"`
	// Took is from the request to To's term, as this client saw them.
	Took time.Duration `json:"took"`
	// Gap is from the hand-over (From's work had returned) to To's term,
	// as this client's watch saw them: how long, at most, the component
	// had no working leader; zero if the watch did not show the
	// hand-over on its own.
	Gap time.Duration `json:"gap,omitzero"`
	// Warnings are what went wrong without stopping the move, such as an
	// Event that could not be recorded.
	Warnings []string `json:"warnings,omitempty"`

	asked time.Time // when it was asked, by this client's clock
}

// Move asks the leader of component in namespace to hand it over to the
// replica to (AnyMember: Move chooses), and waits until that replica
// leads it or ctx is done. component is the lock's name, or kind/name
// ("configmap/billing") where a Lease and a ConfigMap share it. A move to
// the leader is done at once (Moved.Already).
//
// It refuses, with errors wrapping ErrUnknownComponent, ErrNoLeader,
// ErrUnknownMember or ErrNotEligible, a component or replica that is not
// there, an election without a leader, and a target that is cordoned,
// stopping, gone or not campaigning for the component. If the leadership
// goes elsewhere meanwhile the error wraps ErrMovedElsewhere.
//
// With placement on, the coordinator may later move another leadership
// to even the spread out again: to keep this one where it is, cordon the
// others or pause placement.
func (c *Client) Move(ctx context.Context, namespace, component, to string) (mv Moved, err error) {
	ctx, end := c.span(ctx, "control move", attribute.String("k8s.namespace.name", namespace),
		attribute.String("tenure.election.name", component), attribute.String("tenure.move.to", to))
	defer func() {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("tenure.move.from", mv.From), attribute.String("tenure.move.target", mv.To),
			attribute.Int64("tenure.move.took_ms", mv.Took.Milliseconds()))
		end(err)
	}()
	st, err := c.Status(ctx, namespace)
	if err != nil {
		return Moved{}, err
	}
	e, err := st.election(namespace, component)
	if err != nil {
		return Moved{}, err
	}
	asked, err := c.ask(ctx, st, e, to, "")
	if err != nil || asked.Already {
		return asked, err
	}
	return c.await(ctx, e, asked, false)
}

// election finds component in st.
func (st *Status) election(namespace, component string) (Election, error) {
	kind, name, qualified := strings.Cut(component, "/")
	if !qualified {
		kind, name = "", component
	}
	var found []Election
	var known []string
	for _, e := range st.Elections {
		if e.PlacementGroup == "" {
			known = append(known, e.Component)
		}
		if e.Component == name && (kind == "" || strings.EqualFold(kind, string(e.Kind))) && (namespace == "" || e.Namespace == namespace) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 1:
		if found[0].Error != "" {
			return Election{}, fmt.Errorf("%s: its record cannot be read: %s", found[0].Lock(), found[0].Error)
		}
		return found[0], nil
	case 0:
		slices.Sort(known)
		known = slices.Compact(known)
		return Election{}, fmt.Errorf("%w %q in %s (elections there: %s)", ErrUnknownComponent, component, where(namespace), strings.Join(known, ", "))
	}
	var locks []string
	for _, e := range found {
		locks = append(locks, e.Lock())
	}
	return Election{}, fmt.Errorf("component %q is ambiguous: %s; name it as kind/name, such as %s/%s", component, strings.Join(locks, ", "), found[0].Kind, name)
}

func where(namespace string) string {
	if namespace == "" {
		return "any namespace"
	}
	return "namespace " + namespace
}

// member finds identity among st's members in namespace.
func (st *Status) member(namespace, identity string) (Member, error) {
	var known []string
	for _, m := range st.Members {
		if m.Namespace != namespace {
			continue
		}
		if m.Identity == identity {
			return m, nil
		}
		known = append(known, m.Identity)
	}
	if len(known) == 0 {
		return Member{}, fmt.Errorf("%w %q in %s: no replica announces itself there (replicas announce themselves with placement: balanced)", ErrUnknownMember, identity, where(namespace))
	}
	return Member{}, fmt.Errorf("%w %q in %s (replicas there: %s)", ErrUnknownMember, identity, where(namespace), strings.Join(known, ", "))
}

// target is the replica to move e to: to, checked, or the best eligible
// one if to is AnyMember; never one of avoid.
func (st *Status) target(e Election, to string, avoid ...string) (Member, error) {
	if to != AnyMember {
		m, err := st.member(e.Namespace, to)
		if err != nil {
			return Member{}, err
		}
		why := ""
		switch {
		case m.Expired:
			why = "its member record expired: it is gone"
		case m.ShuttingDown:
			why = "it is shutting down"
		case m.NeverLead:
			why = "it is configured never to lead"
		case m.Cordoned:
			why = "it is cordoned (kubectl tenure uncordon " + m.Identity + ")"
		case !slices.Contains(m.keys, e.key):
			why = "it does not campaign for " + e.Component
			if len(m.Components) > 0 {
				why += " (it campaigns for " + strings.Join(m.Components, ", ") + ")"
			}
		case slices.Contains(avoid, m.Identity):
			why = "it is being drained"
		}
		if why != "" {
			return Member{}, fmt.Errorf("cannot move %s to %s: %w: %s", e.Component, to, ErrNotEligible, why)
		}
		return m, nil
	}
	var best *Member
	for i := range st.Members {
		m := &st.Members[i]
		if m.Namespace != e.Namespace || !m.Eligible() || m.Identity == e.Holder || !slices.Contains(m.keys, e.key) || slices.Contains(avoid, m.Identity) {
			continue
		}
		if best == nil || len(m.Leads) < len(best.Leads) {
			best = m
		}
	}
	if best == nil {
		return Member{}, fmt.Errorf("cannot move %s: %w: no other live, uncordoned replica campaigns for it", e.Component, ErrNotEligible)
	}
	return *best, nil
}

// ask writes the request that e's leader hand over to to (see target),
// records it as an Event, and returns the move asked for, not yet done.
func (c *Client) ask(ctx context.Context, st *Status, e Election, to string, why string, avoid ...string) (Moved, error) {
	mv := Moved{Component: e.Component, Namespace: e.Namespace, Kind: e.Kind, From: e.Holder, asked: c.clock.Now()}
	switch {
	case e.Holder == "":
		return mv, fmt.Errorf("cannot move %s: %w: nobody holds it", e.Lock(), ErrNoLeader)
	case e.HandedOver && to == e.Holder:
		// Under way to it already: wait for it, write nothing.
		mv.From, mv.To = "", to
		return mv, nil
	case e.HandedOver:
		// A write now would make its last holder wait a whole lease
		// before taking it back, should the target not take it.
		return mv, fmt.Errorf("cannot move %s: %w: it was just handed over to %s, which has not taken it yet; run it again in a moment", e.Lock(), ErrMovedElsewhere, e.Holder)
	case to == e.Holder && e.MovingTo != "":
		// Its work may be winding down already, and a term whose work has
		// returned ends: taking the request back would only make the
		// leader release the lock to whoever is first.
		return mv, fmt.Errorf("cannot keep %s with %s: %w: a move to %s is under way (its leader's work may be winding down already); move it back once it is done", e.Component, to, ErrMovedElsewhere, e.MovingTo)
	case to == e.Holder:
		mv.To, mv.Already, mv.Term = to, true, e.Term
		return mv, nil
	}
	if h, err := st.member(e.Namespace, e.Holder); err != nil || !slices.Contains(h.keys, e.key) {
		return mv, fmt.Errorf("cannot move %s: %w: its leader %s is not a tenure replica that campaigns for it (no member record says so), so it would not hand over: the lock moves only when its lease expires", e.Lock(), ErrNotEligible, e.Holder)
	}
	m, err := st.target(e, to, avoid...)
	if err != nil {
		return mv, err
	}
	mv.To = m.Identity
	for i := range st.Members { // so that the next choice counts it
		if st.Members[i].Namespace == e.Namespace && st.Members[i].Identity == m.Identity {
			st.Members[i].Leads = append(st.Members[i].Leads, e.Component)
		}
	}
	lock, err := c.lock(e)
	if err != nil {
		return mv, err
	}
	if _, err := placement.Request(ctx, lock, e.Holder, m.Identity); err != nil {
		if errors.Is(err, placement.ErrStale) {
			return mv, fmt.Errorf("cannot move %s: its leader changed while it was being asked (run it again): %w", e.Component, err)
		}
		return mv, permissionHint(err, "patch", e)
	}
	msg := fmt.Sprintf("%s asked %s to hand %s over to %s", c.actor, e.Holder, e.Component, m.Identity)
	if why != "" {
		msg += " (" + why + ")"
	}
	if err := c.event(ctx, e.object(), "MoveRequested", msg); err != nil {
		mv.Warnings = append(mv.Warnings, err.Error())
	}
	return mv, nil
}

// annotator is a lock that keeps tenure's annotations (see locks.Lock).
type annotator interface {
	Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error)
}

// lock is e's lock, for a request.
func (c *Client) lock(e Election) (locks.Lock, error) {
	if e.Kind == locks.KindConfigMap {
		return locks.NewConfigMapLock(c.cs.CoreV1(), e.Namespace, e.Component)
	}
	return locks.NewLeaseLock(c.cs.CoordinationV1(), e.Namespace, e.Component, locks.WithoutWatch())
}

// permissionHint adds to a failed write of e's lock which permission it
// needs, if the API server forbade it.
func permissionHint(err error, verb string, e Election) error {
	resource, group := "leases", "coordination.k8s.io"
	if e.Kind == locks.KindConfigMap {
		resource, group = "configmaps", ""
	}
	if apierrors.IsForbidden(err) {
		return apiError(verb, resource, e.Component, group, e.Namespace, err)
	}
	return err
}

// object is the reference of e's lock object, for Events.
func (e Election) object() corev1.ObjectReference {
	if e.Kind == locks.KindConfigMap {
		return corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: e.Namespace, Name: e.Component, UID: e.uid}
	}
	return corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Namespace: e.Namespace, Name: e.Component, UID: e.uid}
}

// await watches e's lock until mv.To leads it (anywhere: anyone but
// mv.From), or it goes elsewhere, or ctx is done.
func (c *Client) await(ctx context.Context, e Election, mv Moved, anywhere bool) (Moved, error) {
	asked := mv.asked
	var handedAt time.Time
	var last locks.Record
	done := func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, fmt.Errorf("%s was deleted while it moved", e.Lock())
		}
		r, ok, err := recordIn(ev.Object)
		if !ok || err != nil {
			return false, nil
		}
		last = r
		meta, ok := ev.Object.(metav1.Object)
		if !ok {
			return false, nil
		}
		handed := election.HandedOverTo(locks.Observed{Record: r, Annotations: meta.GetAnnotations()}) != ""
		if anywhere && r.HolderIdentity != "" && r.HolderIdentity != mv.From {
			mv.To = r.HolderIdentity
		}
		switch {
		case r.HolderIdentity == mv.To && handed:
			if handedAt.IsZero() {
				handedAt = c.clock.Now()
			}
			return false, nil
		case r.HolderIdentity == mv.To:
			now := c.clock.Now()
			mv.Term, mv.Took = r.LeaderTransitions, now.Sub(asked)
			if !handedAt.IsZero() {
				mv.Gap = now.Sub(handedAt)
			}
			return true, nil
		case !handedAt.IsZero():
			return false, fmt.Errorf("%s: %w: it was handed over to %s, which did not take it; %s leads it now", e.Component, ErrMovedElsewhere, mv.To, cmp.Or(r.HolderIdentity, "nobody"))
		case r.HolderIdentity != mv.From:
			holder := cmp.Or(r.HolderIdentity, "nobody")
			return false, fmt.Errorf("%s: %w: %s leads it now, not %s (another move, a crash, or the coordinator redirected it)", e.Component, ErrMovedElsewhere, holder, mv.To)
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(ctx, c.watcher(e), objectOf(e), nil, done)
	if err != nil {
		if ctx.Err() == nil {
			return mv, err
		}
		where := "still with " + cmp.Or(last.HolderIdentity, "nobody")
		if last.HolderIdentity == mv.To {
			where = "handed over to " + mv.To + ", which has not taken it"
		}
		why := "within the timeout"
		if errors.Is(ctx.Err(), context.Canceled) {
			why = "before it was interrupted"
		}
		// The request is not taken back: the leader's work may be winding
		// down already, and a withdrawn request would make it release the
		// lock to whoever is first once the work returns.
		stands := ""
		if mv.From != "" && last.HolderIdentity == mv.From {
			stands = "; the request stands: it moves to " + mv.To + " once " + mv.From + "'s work returns"
		}
		return mv, fmt.Errorf("%s did not move to %s %s (%s)%s: %w", e.Component, mv.To, why, where, stands, ctx.Err())
	}
	return mv, nil
}

// watcher lists and watches e's lock object alone.
func (c *Client) watcher(e Election) cache.ListerWatcher {
	selector := fields.OneTermEqualSelector("metadata.name", e.Component).String()
	if e.Kind == locks.KindConfigMap {
		return listwatch.Of(c.cs.CoreV1().ConfigMaps(e.Namespace), "", selector)
	}
	return listwatch.Of(c.cs.CoordinationV1().Leases(e.Namespace), "", selector)
}

func objectOf(e Election) runtime.Object {
	if e.Kind == locks.KindConfigMap {
		return &corev1.ConfigMap{}
	}
	return &coordinationv1.Lease{}
}
