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

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/examples/internal/cli"
	"github.com/tenure/tenure/locks"
)

func main() {
	f := cli.Register(flag.CommandLine, "default", "graceful-example")
	finish := flag.Duration("finish", 2*time.Second, "how long the work takes to finish its batch after it is told to stop")
	flag.Parse()
	cs, err := f.Client()
	if err != nil {
		cli.Fatal(err)
	}
	lock, err := locks.NewLeaseLock(cs.CoordinationV1(), f.Namespace, f.Name)
	if err != nil {
		cli.Fatal(err)
	}
	cfg := f.Election(lock)
	// The renew deadline must leave time to finish: after a lost lease
	// the work is cancelled at RenewDeadline and must be done before
	// LeaseDuration.
	cfg.OnStartedLeading = func(ctx context.Context) {
		term, _ := election.TermFromContext(ctx)
		cli.Say("%s started leading, term %d", f.Identity, term.FencingToken)
		<-ctx.Done()
		cli.Say("%s finishing the current batch", f.Identity)
		time.Sleep(*finish) // stands for flushing, committing, closing
		cli.Say("%s work finished", f.Identity)
	}
	e, err := election.New(cfg)
	if err != nil {
		cli.Fatal(err)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := e.Run(ctx); err != nil {
		cli.Fatal(err)
	}
	// Run returns after the work has returned and the lease is released.
	cli.Say("%s released the lease, exiting", f.Identity)
}
