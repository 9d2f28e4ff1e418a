// Command multicomponent runs three components, each under its own leader
// election, against a real cluster, and prints when each starts and stops
// leading. Run several copies (pods of a Deployment, or processes on one
// machine) and stop one: its components move to the others.
//
//	go run ./examples/multicomponent --kubeconfig ~/.kube/config
//
// Each line on standard output is "<time> <component> <identity> started
// leading, term <n>" or "... stopped leading"; logs go to standard error.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/config"
	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/framework"
)

//go:embed tenure.yaml
var defaultConfig []byte

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)")
	flag.DurationVar(&actPeriod, "act-period", 0, "act this often as leader (default: each component's own period)")
	flag.BoolVar(&logActs, "log-acts", false, "print a line for each act as leader")
	flag.DurationVar(&windDown, "wind-down", 0, "once stopping, keep acting (while the term is valid) for a random time up to this long before returning, as a flush would (the term is renewed meanwhile)")
	configPath := flag.String("config", "", "YAML configuration (default: the embedded tenure.yaml)")
	flag.Parse()

	srcs := []config.Source{config.YAML("tenure.yaml (embedded)", defaultConfig)}
	if *configPath != "" {
		srcs = []config.Source{config.File(*configPath)}
	}
	srcs = append(srcs, config.Env(nil))
	if *kubeconfig != "" {
		srcs = append(srcs, config.Values("--kubeconfig", map[string]any{"kubeconfig": *kubeconfig}))
	}
	os.Exit(run(srcs))
}

// run runs the app until SIGTERM or SIGINT and returns the exit code; a
// second signal while it stops exits at once.
func run(srcs []config.Source) int {
	app := fx.New(
		framework.Module,
		framework.Config(srcs...),
		framework.ExitOnSecondSignal(),
		framework.Component(newComponent("billing", time.Second)),
		framework.Component(newComponent("reports", 5*time.Second)),
		framework.Component(newComponent("janitor", 10*time.Second)),
		fx.StopTimeout(time.Minute), // the configured shutdown_timeout bounds the wait
		fx.NopLogger,
	)
	if err := app.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := <-app.Wait()
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return sig.ExitCode
}

var (
	stdout    sync.Mutex
	actPeriod time.Duration
	logActs   bool
	windDown  time.Duration
)

func say(format string, args ...any) { sayAt(time.Now(), format, args...) }

// sayAt prints a line stamped at.
func sayAt(at time.Time, format string, args ...any) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Printf("%s "+format+"\n", append([]any{at.Format("15:04:05.000")}, args...)...)
}

// newComponent returns the constructor of a component that does a unit of
// work every period while it leads.
func newComponent(name string, period time.Duration) func() components.Component {
	return func() components.Component {
		return components.New(name, func(ctx context.Context) error {
			term, _ := election.TermFromContext(ctx)
			say("%s %s started leading, term %d", name, term.Identity, term.FencingToken)
			defer say("%s %s stopped leading, term %d", name, term.Identity, term.FencingToken)
			if actPeriod > 0 {
				period = actPeriod
			}
			tick := time.NewTicker(period)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					// A term that is still valid is winding down (the
					// program stops); one that is over has nothing to
					// finish.
					if windDown > 0 && election.Valid(ctx) == nil {
						finish(ctx, name, term, period, time.Duration(rand.Int64N(int64(windDown))))
					}
					return nil
				case <-tick.C:
					// Check the term right before acting: after a freeze
					// the clock says the term is over before any timer
					// has cancelled ctx. The act is stamped when it is
					// decided, before the check: a process frozen between
					// the check and the act (SIGSTOP, a preempted thread)
					// acts after the freeze on a term that may be over,
					// which no check can see; that is what the fencing
					// token is for. Stamped after the check, such an act
					// shows a term's end as an overlap (the chaos suite
					// saw one, SIGSTOP landing between the two).
					at := time.Now()
					if election.Valid(ctx) != nil {
						continue
					}
					// A real component would reconcile here, passing
					// term.FencingToken to the systems it writes to.
					if logActs {
						sayAt(at, "%s %s acts, term %d", name, term.Identity, term.FencingToken)
					}
				}
			}
		})
	}
}

// finish acts every period for d, as wind-down code that flushes or
// commits does: the election renews the term until it returns. It checks
// the term before each act: if the renewals fail meanwhile (a partition, a
// freeze), the term ends at the renew deadline and another replica may
// lead a lease after the last renewal it saw, so wind-down that kept
// acting would overlap it (placement's hand-overs wind work down at any
// time, partitions included; the chaos suite found exactly that).
func finish(ctx context.Context, name string, term election.Term, period, d time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-end:
			return
		case <-tick.C:
			at := time.Now() // decided now (see newComponent)
			if election.Valid(ctx) != nil {
				return // the term is over: nothing more may be done under it
			}
			if logActs {
				sayAt(at, "%s %s acts, term %d", name, term.Identity, term.FencingToken)
			}
		}
	}
}
