package main

import (
	"context"
	"errors"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/control"
	"github.com/tenure/tenure/framework"
	"github.com/tenure/tenure/internal/kubeconfig"
)

// clusterKeys are the keys of --kubeconfig mode's live view: each an
// operation of package control on this replica, as kubectl tenure runs
// it.
type clusterKeys struct {
	c      *control.Client
	ns, id string
	ev     *events
}

// newClusterKeys makes the keys of runner's replica, reaching the cluster
// as the framework does (see internal/kubeconfig): the kubeconfig file at
// path, else $KUBECONFIG, ~/.kube/config or in-cluster configuration.
func newClusterKeys(path string, runner *framework.Runner, ev *events) (*clusterKeys, error) {
	cfg, err := kubeconfig.RESTConfig(path)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	status := runner.Status()
	if len(status) == 0 {
		return nil, errors.New("no components")
	}
	c, err := control.New(cs, control.WithActor("tenure-demo"))
	if err != nil {
		return nil, err
	}
	return &clusterKeys{c: c, ns: status[0].Namespace, id: runner.Identity(), ev: ev}, nil
}

// press runs the action of key k and logs what it came to.
func (k *clusterKeys) press(ctx context.Context, key byte) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch key {
	case 'm':
		st, err := k.c.Status(ctx, k.ns)
		if err != nil {
			k.ev.add("demo: move: %v", err)
			return
		}
		for _, e := range st.Elections {
			if e.Holder != k.id || e.PlacementGroup != "" {
				continue
			}
			mv, err := k.c.Move(ctx, k.ns, e.Component, control.AnyMember)
			if err != nil {
				k.ev.add("demo: move: %v", err)
				return
			}
			k.ev.add("demo: moved %s: %s → %s, term %d, in %v", mv.Component, mv.From, mv.To, mv.Term, mv.Took.Round(time.Millisecond))
			return
		}
		k.ev.add("demo: move: %s leads nothing", k.id)
	case 'd':
		d, err := k.c.Drain(ctx, k.ns, k.id)
		for _, mv := range d.Moves {
			if mv.To != "" && mv.To != k.id {
				k.ev.add("demo: drained %s: %s → %s in %v", mv.Component, mv.From, mv.To, mv.Took.Round(time.Millisecond))
			}
		}
		if err != nil {
			k.ev.add("demo: drain: %v", err)
			return
		}
		k.ev.add("demo: %s is drained and cordoned (u uncordons it)", k.id)
	case 'u':
		if _, err := k.c.Cordon(ctx, k.ns, k.id, false); err != nil {
			k.ev.add("demo: uncordon: %v", err)
			return
		}
		k.ev.add("demo: %s uncordoned", k.id)
	}
}
