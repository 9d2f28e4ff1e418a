// Command demo shows tenure at work. Without a cluster it simulates
// several replicas, each running several components under their own
// elections on in-process locks, injects faults (graceful stop, crash,
// freeze) and shows the hand-overs live:
//
//	go run ./cmd/demo
//
// With --kubeconfig (or in a cluster) it is one replica on real Leases;
// start it in three terminals and stop one with Ctrl-C. Placement spreads
// the components over the replicas; each shows every replica's share, as
// it sees the leaders, and each hand-over ("→ replica"):
//
//	go run ./cmd/demo --kubeconfig ~/.kube/config
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tenure/tenure/config"
)

//go:embed demo.yaml
var defaultConfig []byte

// options are the demo's command-line options.
type options struct {
	replicas, components int
	configFile           string
	kubeconfig           string
	duration             time.Duration
	plain                bool
	verbose              bool
	lease                time.Duration // from the configuration
}

// sources returns the configuration layers with overrides last.
func (o options) sources(overrides map[string]any) []config.Source {
	srcs := []config.Source{config.YAML("demo.yaml (embedded)", defaultConfig)}
	if o.configFile != "" {
		srcs = []config.Source{config.File(o.configFile)}
	}
	srcs = append(srcs, config.Values("demo", overrides), config.Env(nil))
	return srcs
}

func main() {
	var o options
	flag.IntVar(&o.replicas, "replicas", 3, "simulated replicas (without a cluster)")
	flag.IntVar(&o.components, "components", 4, "components per replica")
	flag.StringVar(&o.configFile, "config", "", "YAML configuration (default: the embedded demo.yaml)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "run one replica against this cluster on Lease locks")
	flag.DurationVar(&o.duration, "duration", 0, "exit after this long (default: run until Ctrl-C)")
	flag.BoolVar(&o.plain, "plain", false, "print the log of transitions only, no live view")
	flag.BoolVar(&o.verbose, "v", false, "also print tenure's own logs to standard error")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if err := run(ctx, o, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run runs the demo until ctx is done.
func run(ctx context.Context, o options, in *os.File, out io.Writer) error {
	if o.replicas < 1 || o.components < 1 {
		return errors.New("--replicas and --components must be at least 1")
	}
	cfg, err := config.Load(o.sources(nil)...)
	if err != nil {
		return err
	}
	o.lease = cfg.Defaults.LeaseDuration
	f, isFile := out.(*os.File)
	live := !o.plain && isFile && isTerminal(f)
	ev := &events{keep: 12}
	if !live {
		ev.out = out
	}
	var logs slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if o.verbose {
		logs = slog.NewTextHandler(os.Stderr, nil)
	}
	logger := slog.New(newHandOverLog(logs, ev, names(o.components)))
	if o.kubeconfig != "" || inCluster() {
		return runCluster(ctx, o, ev, logger, live, in, out)
	}
	return runMemory(ctx, o, ev, logger, live, in, out)
}

func inCluster() bool { return os.Getenv("KUBERNETES_SERVICE_HOST") != "" }
