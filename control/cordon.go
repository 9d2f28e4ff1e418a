package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"

	"go.opentelemetry.io/otel/attribute"

	"github.com/tenure/tenure/placement"
)

// Cordoned is what a cordon or uncordon came to.
type Cordoned struct {
	Identity  string `json:"identity"`
	Namespace string `json:"namespace"`
	// Changed: the member record was written; false if it already said so.
	Changed  bool     `json:"changed"`
	Warnings []string `json:"warnings,omitempty"`
}

// Cordon marks the replica identity in namespace cordoned (on) or not:
// placement gives a cordoned replica no leadership and moves those it
// leads to others (see package placement). It writes the annotation
// placement.AnnotationCordoned on the replica's member record,
// conditional on the version read; the replica's own announcements never
// write it. The mark lasts as long as the record: until the replica stops
// gracefully (it deletes its record) or its record expires and is
// deleted; a replica restarted under the same identity after a crash
// finds it still there.
func (c *Client) Cordon(ctx context.Context, namespace, identity string, on bool) (out Cordoned, err error) {
	name := map[bool]string{true: "control cordon", false: "control uncordon"}[on]
	ctx, end := c.span(ctx, name, attribute.String("k8s.namespace.name", namespace), attribute.String("tenure.member", identity))
	defer func() { end(err) }()
	out = Cordoned{Identity: identity, Namespace: namespace}
	leases := c.cs.CoordinationV1().Leases(namespace)
	name = placement.MemberLeaseName(identity)
	value := map[bool]*string{true: new("true"), false: nil}[on]
	for range 5 {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			st, serr := c.Status(ctx, namespace)
			if serr != nil {
				return out, fmt.Errorf("%w %q in %s: %w", ErrUnknownMember, identity, where(namespace), serr)
			}
			if _, err := st.member(namespace, identity); err != nil {
				return out, err
			}
			continue // its record appeared meanwhile
		}
		if err != nil {
			return out, apiError("get", "leases", name, "coordination.k8s.io", namespace, err)
		}
		if _, ok := placement.MemberOf(l); !ok {
			return out, fmt.Errorf("%w %q in %s: lease %s is not a member record", ErrUnknownMember, identity, where(namespace), name)
		}
		if (l.Annotations[placement.AnnotationCordoned] == "true") == on {
			return out, nil
		}
		// A merge patch that names the version read is conditional on it.
		var p struct {
			Metadata struct {
				ResourceVersion string             `json:"resourceVersion"`
				Annotations     map[string]*string `json:"annotations"`
			} `json:"metadata"`
		}
		p.Metadata.ResourceVersion = l.ResourceVersion
		p.Metadata.Annotations = map[string]*string{placement.AnnotationCordoned: value}
		body, err := json.Marshal(p)
		if err != nil {
			return out, err
		}
		_, err = leases.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
		if apierrors.IsConflict(err) {
			continue // its replica renewed it meanwhile
		}
		if err != nil {
			return out, apiError("patch", "leases", name, "coordination.k8s.io", namespace, err)
		}
		out.Changed = true
		reason, msg := "Cordoned", c.actor+" cordoned "+identity+": placement gives it no leadership and moves those it leads"
		if !on {
			reason, msg = "Uncordoned", c.actor+" uncordoned "+identity
			if l.Annotations[placement.AnnotationNeverLead] == "true" {
				out.Warnings = append(out.Warnings, identity+" is configured never to lead: uncordon does not change that")
			}
		}
		ref := corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Namespace: namespace, Name: name, UID: l.UID}
		if err := c.event(ctx, ref, reason, msg); err != nil {
			out.Warnings = append(out.Warnings, err.Error())
		}
		return out, nil
	}
	return out, fmt.Errorf("cordon %s: its member record kept changing", identity)
}

// Drained is what a drain came to: the cordon, and a move of each
// leadership the replica held.
type Drained struct {
	Cordoned Cordoned `json:"cordoned"`
	Moves    []Moved  `json:"moves"`
	// Coordinates are the placement groups whose coordinator election
	// the replica still leads: it holds no component, and coordinating
	// is no leadership of one.
	Coordinates []string `json:"coordinates,omitempty"`
}

// Drain cordons the replica identity in namespace and moves every
// leadership it holds to other replicas (as Move with AnyMember), waiting
// until each has moved or ctx is done. Leaderships that no other replica
// can take stay, and are an error; the replica stays cordoned until
// Cordon(..., false).
func (c *Client) Drain(ctx context.Context, namespace, identity string) (out Drained, err error) {
	ctx, end := c.span(ctx, "control drain", attribute.String("k8s.namespace.name", namespace), attribute.String("tenure.member", identity))
	defer func() { end(err) }()
	if out.Cordoned, err = c.Cordon(ctx, namespace, identity, true); err != nil {
		return out, err
	}
	st, err := c.Status(ctx, namespace)
	if err != nil {
		return out, err
	}
	var errs []error
	var asked []Moved
	var elections []Election
	for _, e := range st.Elections {
		if e.Namespace != namespace || e.Holder != identity {
			continue
		}
		if e.PlacementGroup != "" {
			out.Coordinates = append(out.Coordinates, e.PlacementGroup)
			continue
		}
		mv, err := c.ask(ctx, st, e, AnyMember, "draining "+identity, identity)
		if errors.Is(err, placement.ErrStale) {
			// It left meanwhile (the coordinator saw the cordon, or
			// another operator moved it): drained already, unless it
			// came back.
			if holder, herr := c.holderOf(ctx, e); herr == nil && holder != identity {
				out.Moves = append(out.Moves, Moved{Component: e.Component, Namespace: e.Namespace, Kind: e.Kind, From: identity, To: holder})
				continue
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		asked, elections = append(asked, mv), append(elections, e)
	}
	moves := make([]Moved, len(asked))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range asked {
		wg.Go(func() {
			mv, err := c.await(ctx, elections[i], asked[i], true) // wherever the coordinator sends it too
			mu.Lock()
			defer mu.Unlock()
			moves[i] = mv
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	out.Moves = append(out.Moves, moves...)
	slices.SortFunc(out.Moves, func(a, b Moved) int { return strings.Compare(a.Component, b.Component) })
	if len(errs) == 0 {
		return out, nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	slices.Sort(msgs)
	// One line, as every error of this package: each error's text, and
	// the first error for errors.Is (they share their sentinels).
	return out, fmt.Errorf("drain %s: %w", identity, joined{errs, strings.Join(msgs, "; ")})
}

// joined is errors that read as one line.
type joined struct {
	errs []error
	msg  string
}

func (j joined) Error() string   { return j.msg }
func (j joined) Unwrap() []error { return j.errs }

// holderOf reads who holds e's lock now.
func (c *Client) holderOf(ctx context.Context, e Election) (string, error) {
	l, err := c.lock(e)
	if err != nil {
		return "", err
	}
	obs, err := l.Get(ctx)
	if err != nil {
		return "", err
	}
	return obs.Record.HolderIdentity, nil
}
