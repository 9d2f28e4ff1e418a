// Command quickstart is the program the README starts with: two
// components, each under its own leader election on a Lease, configured by
// tenure.yaml. Run it in several terminals against the cluster of
// $KUBECONFIG (else ~/.kube/config) and stop one with Ctrl-C: its
// components move to another at once.
//
//	cd examples/quickstart && go run .
//
// Without a cluster, keep the locks in memory (one process only):
//
//	TENURE_LOCK=memory go run .
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
)

func main() {
	fx.New(
		framework.Module,
		framework.ConfigFile("tenure.yaml"),
		framework.Component(newBilling),
		framework.Component(newReports),
		fx.Supply(slog.New(slog.NewTextHandler(os.Stdout, nil))), // tenure logs here too
		framework.ExitOnSecondSignal(),
		fx.StopTimeout(time.Minute), // above the configured shutdown_timeout
	).Run()
}

// newBilling and newReports are component constructors: fx calls them
// with what they ask of the app. A component is a name and the work to do
// while this replica leads it.
func newBilling(log *slog.Logger) components.Component {
	return components.New("billing", func(ctx context.Context) error {
		return every(ctx, 2*time.Second, func(term election.Term) {
			log.Info("sending invoices", "fencing_token", term.FencingToken)
		})
	})
}

func newReports(log *slog.Logger) components.Component {
	return components.New("reports", func(ctx context.Context) error {
		return every(ctx, 5*time.Second, func(term election.Term) {
			log.Info("writing reports", "fencing_token", term.FencingToken)
		})
	})
}

// every acts each period until ctx is done: leadership lost, or the
// program stopping. election.Valid, right before each act, checks on the
// monotonic clock that the term still holds.
func every(ctx context.Context, period time.Duration, act func(election.Term)) error {
	term, _ := election.TermFromContext(ctx) // identity and fencing token
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if election.Valid(ctx) == nil {
				act(term)
			}
		}
	}
}
