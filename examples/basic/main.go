// Command basic is the seed's "Basic Leader Election": one Lease, one
// election; the leader logs that it works every few seconds. Run two and
// stop the leader: the other leads at once, because the lease is released.
//
//	go run ./examples/basic --kubeconfig ~/.kube/config --identity a
package main

import (
	"context"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/examples/internal/cli"
	"github.com/tenure/tenure/locks"
)

func main() { cli.Main("default", "basic-example", configure) }

func configure(f *cli.Flags, cs kubernetes.Interface) (election.Config, error) {
	lock, err := locks.NewLeaseLock(cs.CoordinationV1(), f.Namespace, f.Name)
	if err != nil {
		return election.Config{}, err
	}
	cfg := f.Election(lock)
	cfg.OnStartedLeading = func(ctx context.Context) {
		term, _ := election.TermFromContext(ctx)
		cli.Say("%s started leading, term %d", f.Identity, term.FencingToken)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				cli.Say("%s is working as the leader, term %d", f.Identity, term.FencingToken)
			}
		}
	}
	cfg.OnStoppedLeading = func() { cli.Say("%s stopped leading", f.Identity) }
	cfg.OnNewLeader = func(id string) { cli.Say("%s sees a new leader: %s", f.Identity, id) }
	return cfg, nil
}
