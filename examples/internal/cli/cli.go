// Package cli holds what the single-election examples share: flags for the
// cluster, the lock and the timings, and the client they make.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubeconfig"
	"github.com/tenure/tenure/locks"
)

// Flags are the common command-line options.
type Flags struct {
	Kubeconfig, Namespace, Name, Identity     string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Register defines the flags, with the given defaults for the lock's
// namespace and name.
func Register(fs *flag.FlagSet, namespace, name string) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)")
	fs.StringVar(&f.Namespace, "namespace", namespace, "namespace of the lock")
	fs.StringVar(&f.Name, "name", name, "name of the lock")
	fs.StringVar(&f.Identity, "identity", defaultIdentity(), "this candidate's identity (default: $POD_NAME, else the host name)")
	fs.DurationVar(&f.LeaseDuration, "lease-duration", 15*time.Second, "lease duration")
	fs.DurationVar(&f.RenewDeadline, "renew-deadline", 10*time.Second, "renew deadline")
	fs.DurationVar(&f.RetryPeriod, "retry-period", 2*time.Second, "retry period")
	return f
}

func defaultIdentity() string {
	if id := os.Getenv("POD_NAME"); id != "" {
		return id
	}
	h, _ := os.Hostname()
	return h
}

// Client makes a clientset from --kubeconfig, else $KUBECONFIG, else
// ~/.kube/config, else in-cluster, as kubectl does.
func (f *Flags) Client() (kubernetes.Interface, error) {
	cfg, err := kubeconfig.RESTConfig(f.Kubeconfig)
	if errors.Is(err, kubeconfig.ErrNoCluster) {
		return nil, fmt.Errorf("%w: pass --kubeconfig, set $KUBECONFIG, or run in a cluster", err)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// Election returns an election configuration on lock with the flags'
// identity and timings.
func (f *Flags) Election(lock locks.Lock) election.Config {
	return election.Config{
		Lock: lock, Identity: f.Identity,
		LeaseDuration: f.LeaseDuration, RenewDeadline: f.RenewDeadline, RetryPeriod: f.RetryPeriod,
	}
}

// Main is an example's main: it registers the common flags with the
// given defaults for the lock, parses the command line, makes the client,
// lets configure make the election's configuration, and runs the election
// until SIGTERM or SIGINT; the election then cancels the leader work, waits
// for it and releases the lock. It exits 1 on error.
func Main(namespace, name string, configure func(f *Flags, cs kubernetes.Interface) (election.Config, error)) {
	f := Register(flag.CommandLine, namespace, name)
	flag.Parse()
	if err := f.run(configure); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func (f *Flags) run(configure func(f *Flags, cs kubernetes.Interface) (election.Config, error)) error {
	cs, err := f.Client()
	if err != nil {
		return err
	}
	cfg, err := configure(f, cs)
	if err != nil {
		return err
	}
	e, err := election.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return e.Run(ctx)
}

// Say prints a line on standard output, time-stamped.
func Say(format string, args ...any) {
	fmt.Printf("%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
