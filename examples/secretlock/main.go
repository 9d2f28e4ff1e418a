// Command secretlock runs an election on a custom lock: the record in a
// key of a Secret (see lock.go), written only through the public
// locks.Lock interface. Its test runs the shared lock suite on it.
//
//	go run ./examples/secretlock --kubeconfig ~/.kube/config
package main

import (
	"context"
	"flag"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/examples/internal/cli"
)

func main() {
	f := cli.Register(flag.CommandLine, "default", "secret-lock-example")
	flag.Parse()
	cs, err := f.Client()
	if err != nil {
		cli.Fatal(err)
	}
	cfg := f.Election(NewSecretLock(cs.CoreV1(), f.Namespace, f.Name))
	cfg.OnStartedLeading = func(ctx context.Context) {
		term, _ := election.TermFromContext(ctx)
		cli.Say("%s started leading, term %d", f.Identity, term.FencingToken)
		<-ctx.Done()
		cli.Say("%s stopped leading", f.Identity)
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
}
