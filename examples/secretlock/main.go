// Command secretlock runs an election on a custom lock: the record in a
// key of a Secret (see lock.go), written only through the public
// locks.Lock interface. Its test runs the shared lock suite on it.
//
//	go run ./examples/secretlock --kubeconfig ~/.kube/config
package main

import (
	"context"

	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/examples/internal/cli"
)

func main() { cli.Main("default", "secret-lock-example", configure) }

func configure(f *cli.Flags, cs kubernetes.Interface) (election.Config, error) {
	cfg := f.Election(NewSecretLock(cs.CoreV1(), f.Namespace, f.Name))
	cfg.OnStartedLeading = func(ctx context.Context) {
		term, _ := election.TermFromContext(ctx)
		cli.Say("%s started leading, term %d", f.Identity, term.FencingToken)
		<-ctx.Done()
		cli.Say("%s stopped leading", f.Identity)
	}
	return cfg, nil
}
