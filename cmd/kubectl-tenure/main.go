// Command kubectl-tenure is the kubectl plugin of tenure: it shows who
// leads what and moves leaderships between replicas.
//
//	go install github.com/tenure/tenure/cmd/kubectl-tenure@latest
//	kubectl tenure status -n apps
//	kubectl tenure move billing --to web-7d9f-x4k2q-1a2b3c -n apps
//	kubectl tenure drain web-7d9f-x4k2q-1a2b3c -n apps
//
// It takes kubectl's flags (--kubeconfig, --context, -n, ...) and writes
// only tenure's annotations on the locks and member records, through their
// compare-and-swap (see package control).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
)

func main() {
	// client-go's informers log through klog; their messages as a watch
	// stops are noise in a command's output, and errors reach the user
	// as returned errors.
	klog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}

// run runs the command of args and returns its exit code: 0, or 1 after
// printing the error on streams.ErrOut.
func run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	cmd := newRootCommand(streams)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		// One line: an error that joins several is read as one.
		fmt.Fprintln(streams.ErrOut, "error:", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	return 0
}

// newRootCommand is kubectl-tenure with its subcommands; without one it
// runs status.
func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := newOptions(streams)
	root := &cobra.Command{
		Use:   "kubectl-tenure",
		Short: "Show who leads what, and move leaderships between replicas",
		Long: `kubectl tenure shows the leader elections of a namespace (tenure's, and
client-go's or the Python clients' on the same locks) and the tenure replicas
there, and moves leaderships between replicas: a planned hand-over, in which
the leader's work winds down and returns before the new leader starts.

It writes only tenure's annotations on the locks and member records, through
their compare-and-swap, never a record's holder: two operators at once, or a
move racing a crash, can make a poor move, never two leaders.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.status(cmd.Context(), false)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	o.addFlags(root)
	root.AddCommand(newStatusCommand(o), newMoveCommand(o), newDrainCommand(o), newCordonCommand(o, true), newCordonCommand(o, false),
		newPauseCommand(o, true), newPauseCommand(o, false))
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	return root
}

func newStatusCommand(o *options) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the leader elections and the replicas (the default)",
		Long: `Shows one row per leader election: its component (the lock's name), lock kind,
holder, term (the fencing token), how long it has been held, how long ago it
was renewed, the replica it is moving to, and the tenure replicas that
campaign for it; and one row per tenure replica: what it leads, its share,
age, revision, zone and state (cordoned, never-lead, shutting-down, expired).
Times come from the holders' clocks.`,
		Example: `  kubectl tenure status -n apps
  kubectl tenure status -A -o json
  kubectl tenure status -n apps --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.status(cmd.Context(), watch)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again whenever a Lease of the namespace changes, until interrupted")
	return cmd
}

func newMoveCommand(o *options) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "move COMPONENT --to IDENTITY|any",
		Short: "Move a leadership to another replica: a planned hand-over",
		Long: `Asks the leader of COMPONENT to hand it over to the replica IDENTITY (any: the
live, uncordoned replica that campaigns for it and leads the fewest), and
waits until that replica leads it (--timeout). The leader's work winds down
and returns, then the lock is written over to the target, which starts at
once; the command prints how long the component was without a working
leader, as its watch saw it. COMPONENT is the lock's name, or kind/name
(configmap/billing) where a Lease and a ConfigMap share it.

It refuses an unknown component or replica, an election without a leader,
and a target that is cordoned, stopping, gone or does not campaign for it.
Moving to the current leader does nothing. With placement on, the
coordinator may later move another leadership to even the spread out again.`,
		Example: `  kubectl tenure move billing --to web-7d9f-x4k2q-1a2b3c -n apps
  kubectl tenure move billing --to any -n apps`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.move(cmd.Context(), args[0], to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the replica to move it to, or any (required)")
	o.addTimeout(cmd)
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newDrainCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drain IDENTITY",
		Short: "Cordon a replica and move every leadership it holds to others",
		Long: `Cordons the replica IDENTITY (placement gives it no leadership) and moves
each leadership it holds to another replica, waiting until all have moved
(--timeout). The replica stays cordoned until kubectl tenure uncordon.`,
		Example: `  kubectl tenure drain web-7d9f-x4k2q-1a2b3c -n apps`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.drain(cmd.Context(), args[0])
		},
	}
	o.addTimeout(cmd)
	return cmd
}

func newCordonCommand(o *options, on bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cordon IDENTITY",
		Short: "Keep placement from giving a replica leaderships",
		Long: `Marks the replica IDENTITY cordoned on its member record: placement gives it
no leadership and moves those it leads to other replicas. The mark lasts
until uncordon, or until the replica stops gracefully (it deletes its
member record); a replica restarted after a crash under the same identity
is still cordoned.`,
		Example: `  kubectl tenure cordon web-7d9f-x4k2q-1a2b3c -n apps`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.cordon(cmd.Context(), args[0], on)
		},
	}
	if !on {
		cmd.Use, cmd.Short = "uncordon IDENTITY", "Let placement give a cordoned replica leaderships again"
		cmd.Long = `Removes the cordon of the replica IDENTITY: placement may give it
leaderships again (it moves some there when that evens the spread out).`
		cmd.Example = `  kubectl tenure uncordon web-7d9f-x4k2q-1a2b3c -n apps`
	}
	return cmd
}

func newPauseCommand(o *options, on bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause [COMPONENT]",
		Short: "Stop placement from moving a component, or any in the namespace",
		Long: `Stops placement from moving COMPONENT, or, without one, any component of the
namespace's placement groups: each leadership stays with its holder until
resume. Unlike Patroni's pause, which also stops failover, elections go on:
the leader keeps renewing, a leader that stops still hands over, a crashed
leader is still replaced, and kubectl tenure move still moves it. The
coordinator sees the mark within about a renew interval.`,
		Example: `  kubectl tenure pause billing -n apps
  kubectl tenure pause -n apps`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			component := ""
			if len(args) == 1 {
				component = args[0]
			}
			return o.pause(cmd.Context(), component, on)
		},
	}
	if !on {
		cmd.Use, cmd.Short = "resume [COMPONENT]", "Let placement move a paused component again, or all"
		cmd.Long = `Lets placement move COMPONENT again, or, without one, the components of the
namespace's placement groups (a component paused on its own stays paused
until resumed by name).`
		cmd.Example = `  kubectl tenure resume billing -n apps
  kubectl tenure resume -n apps`
	}
	return cmd
}
