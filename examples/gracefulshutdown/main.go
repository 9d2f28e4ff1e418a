// Command gracefulshutdown shows SIGTERM handling when the leader work
// needs time to finish: on SIGTERM the work's context is cancelled, the
// work finishes its batch, and only then is the lease released and the
// program exits, so that a standby takes over at once and never while the
// old leader still writes.
//
//	go run ./examples/gracefulshutdown --kubeconfig ~/.kube/config
package main

import (
	"context"
	"flag"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/examples/internal/cli"
	"github.com/tenure/tenure/locks"
)

var finish = flag.Duration("finish", 2*time.Second, "how long the work takes to finish its batch after it is told to stop")

func main() {
	cli.Main("default", "graceful-example", configure)
	// Run returned: the work has returned and the lease is released.
	cli.Say("released the lease, exiting")
}

func configure(f *cli.Flags, cs kubernetes.Interface) (election.Config, error) {
	lock, err := locks.NewLeaseLock(cs.CoordinationV1(), f.Namespace, f.Name)
	if err != nil {
		return election.Config{}, err
	}
	cfg := f.Election(lock)
	// On SIGTERM the term goes on, renewed, until the work returns, however
	// long it winds down. When the term itself is over (renewals failed
	// for RenewDeadline), ctx is cancelled too, but Valid says the term is
	// gone: another candidate may lead soon, so finish nothing then.
	cfg.OnStartedLeading = func(ctx context.Context) {
		term, _ := election.TermFromContext(ctx)
		cli.Say("%s started leading, term %d", f.Identity, term.FencingToken)
		<-ctx.Done()
		if err := election.Valid(ctx); err != nil {
			cli.Say("%s term over, not finishing: %v", f.Identity, err)
			return
		}
		cli.Say("%s finishing the current batch", f.Identity)
		time.Sleep(*finish) // stands for flushing, committing, closing
		cli.Say("%s work finished", f.Identity)
	}
	return cfg, nil
}
