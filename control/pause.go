package control

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"

	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

// Paused is what a pause or resume came to.
type Paused struct {
	Namespace string `json:"namespace"`
	// Component is the component paused or resumed; "" for a whole
	// namespace's placement groups, listed in Groups.
	Component string   `json:"component,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	// Changed: a mark was written; false if every one already said so.
	Changed  bool     `json:"changed"`
	Warnings []string `json:"warnings,omitempty"`
}

// Pause stops placement from moving component in namespace (on) or lets
// it again, or, with component "", every component of every placement
// group there. It writes placement.AnnotationPaused on the component's
// lock or on each group's coordinator Lease, conditional on the version
// read. A paused leadership stays with its holder: the leader keeps
// renewing, a leader that stops still hands over, a crashed one is still
// replaced by an election, and Move still moves it. A move asked before
// goes on (withdrawn while the leader's work winds down, it would end in
// a release), and is named in a warning. The coordinator sees the mark at
// its elections' next read of the lock, within about a renew interval.
func (c *Client) Pause(ctx context.Context, namespace, component string, on bool) (out Paused, err error) {
	name := map[bool]string{true: "control pause", false: "control resume"}[on]
	ctx, end := c.span(ctx, name, attribute.String("k8s.namespace.name", namespace), attribute.String("tenure.election.name", component))
	defer func() { end(err) }()
	out = Paused{Namespace: namespace, Component: component}
	st, err := c.Status(ctx, namespace)
	if err != nil {
		return out, err
	}
	var targets []Election
	if component != "" {
		e, err := st.election(namespace, component)
		if err != nil {
			return out, err
		}
		out.Component = e.Component
		targets = append(targets, e)
	} else {
		byKey := map[string]Election{}
		for _, e := range st.Elections {
			byKey[e.key] = e
		}
		for _, m := range st.Members {
			if m.Namespace != namespace || slices.Contains(out.Groups, m.Group) {
				continue
			}
			e, ok := byKey[locks.KindLease.Key(namespace, placement.CoordinatorLeaseName(m.Group))]
			if !ok {
				return out, fmt.Errorf("placement group %q in %s has no coordinator Lease yet", m.Group, where(namespace))
			}
			out.Groups = append(out.Groups, m.Group)
			targets = append(targets, e)
		}
		if len(targets) == 0 {
			return out, fmt.Errorf("no placement group in %s: no tenure replica announces itself there (placement: balanced)", where(namespace))
		}
		slices.Sort(out.Groups)
	}
	value, reason, verb := "", "PlacementResumed", "resumed placement of "
	if on {
		value, reason, verb = "true", "PlacementPaused", "paused placement of "
	}
	if on {
		for _, e := range st.Elections {
			underWay := e.MovingTo != "" && e.Namespace == namespace &&
				(e.Component == out.Component || component == "" && e.PlacementGroup == "" && len(e.Candidates) > 0)
			if underWay {
				out.Warnings = append(out.Warnings, fmt.Sprintf("a move of %s from %s to %s asked before goes on", e.Component, e.Holder, e.MovingTo))
			}
		}
	}
	for _, e := range targets {
		changed, err := c.mark(ctx, e, placement.AnnotationPaused, value)
		if err != nil {
			return out, err
		}
		if !changed {
			continue
		}
		out.Changed = true
		what := e.Component
		if e.PlacementGroup != "" {
			what = "placement group " + e.PlacementGroup
		}
		if err := c.event(ctx, e.object(), reason, c.actor+" "+verb+what); err != nil {
			out.Warnings = append(out.Warnings, err.Error())
		}
	}
	return out, nil
}

// mark sets annotation key of e's lock to value ("" removes it), unless it
// says so already, conditional on the version read; it reports whether it
// wrote.
func (c *Client) mark(ctx context.Context, e Election, key, value string) (bool, error) {
	l, err := c.lock(e)
	if err != nil {
		return false, err
	}
	a, ok := l.(annotator)
	if !ok {
		return false, fmt.Errorf("%s keeps no annotations", e.Lock())
	}
	for range 5 {
		obs, err := l.Get(ctx)
		if err != nil && !errors.Is(err, locks.ErrInvalidRecord) {
			return false, permissionHint(err, "get", e)
		}
		if obs.Annotations[key] == value {
			return false, nil
		}
		_, err = a.Annotate(ctx, obs.Version, nil, map[string]string{key: value})
		if errors.Is(err, locks.ErrConflict) {
			continue // renewed meanwhile
		}
		if err != nil {
			return false, permissionHint(err, "patch", e)
		}
		return true, nil
	}
	return false, fmt.Errorf("%s kept changing", e.Lock())
}
