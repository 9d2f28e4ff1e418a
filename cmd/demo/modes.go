package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/fx"
	"golang.org/x/term"

	"github.com/tenure/tenure/components"
	"github.com/tenure/tenure/framework"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// runMemory runs the simulated replicas with faults until ctx is done,
// then stops them all gracefully.
func runMemory(ctx context.Context, o options, ev *events, logger *slog.Logger, live bool, in *os.File, out io.Writer) error {
	s := newSim(o, ev, logger)
	ev.add("demo: %d replicas × %d components on in-process locks (lease %v); faults every few seconds", o.replicas, o.components, o.lease)
	for _, r := range s.replicas {
		if err := s.start(r); err != nil {
			s.stopAll()
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var auto atomic.Bool
	auto.Store(true)
	faults := make(chan string)
	var wg sync.WaitGroup
	wg.Go(func() { s.schedule(ctx, auto.Load, faults) })

	var tty *terminal
	if live {
		var err error
		if tty, err = rawTerminal(in); err != nil {
			live = false
			ev.out = out
		} else {
			defer tty.restore()
			// Reading the terminal cannot be interrupted; this goroutine
			// ends with the process.
			go tty.keys(func(k byte) {
				switch k {
				case 'g':
					sendFault(ctx, faults, "stop")
				case 'c':
					sendFault(ctx, faults, "crash")
				case 'p':
					sendFault(ctx, faults, "pause")
				case 'r':
					sendFault(ctx, faults, "back")
				case 'a':
					ev.add("demo: automatic faults %s", map[bool]string{true: "on", false: "off"}[!auto.Load()])
					auto.Store(!auto.Load())
				case 'q', 3: // Ctrl-C arrives as a key in raw mode
					cancel()
				}
			})
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case kind := <-faults:
			s.fault(kind)
		case <-tick.C:
			if live {
				fmt.Fprint(out, s.render(o, auto.Load()))
			}
		}
	}
	cancel()
	wg.Wait()
	s.stopAll()
	ev.add("demo: stopped; every lease released")
	if live {
		fmt.Fprint(out, s.render(o, auto.Load()))
	}
	return nil
}

func sendFault(ctx context.Context, faults chan<- string, kind string) {
	select {
	case faults <- kind:
	case <-ctx.Done():
	}
}

// stopAll stops every running replica gracefully, all at once.
func (s *sim) stopAll() {
	var wg sync.WaitGroup
	for _, r := range s.replicas {
		s.resume(r)
		if st := r.getState(); st == stateUp {
			wg.Go(func() { s.stop(r, false) })
		}
	}
	wg.Wait()
}

// render draws the live view.
func (s *sim) render(o options, auto bool) string {
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	fmt.Fprintf(&b, "tenure demo: %d replicas × %d components on in-process locks (lease %v)\n\n", o.replicas, o.components, o.lease)
	fmt.Fprintf(&b, "%-12s %-12s %5s %12s %11s\n", "COMPONENT", "LEADER", "TERM", "TRANSITIONS", "LAST RENEW")
	for _, n := range s.names {
		obs, err := s.lock(n).Get(context.Background())
		if err != nil {
			fmt.Fprintf(&b, "%-12s %v\n", n, err)
			continue
		}
		rec := obs.Record
		leader, renew := rec.HolderIdentity, "-"
		if leader == "" {
			leader = "(none)"
		} else {
			renew = fmt.Sprintf("%.1fs ago", time.Since(rec.RenewTime).Seconds())
		}
		fmt.Fprintf(&b, "%-12s %-12s %5d %12d %11s\n", n, leader, rec.LeaderTransitions, rec.LeaderTransitions, renew)
	}
	fmt.Fprintf(&b, "\n%-12s %-8s %5s %s\n", "REPLICA", "STATE", "SHARE", "LEADS")
	for _, r := range s.replicas {
		r.mu.Lock()
		state, runner := r.state, r.runner
		r.mu.Unlock()
		share, what := leads(runner)
		fmt.Fprintf(&b, "%-12s %-8s %5s %s\n", r.id, state, share, what)
	}
	b.WriteString("\nrecent:\n")
	for _, l := range s.ev.last() {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "\nkeys: g stop gracefully · c crash · p freeze · r bring back · a automatic faults (%s) · q quit\n",
		map[bool]string{true: "on", false: "off"}[auto])
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}

// leads is the share of the components r leads, and which, with the
// replica each is being handed to while a move is under way.
func leads(r *framework.Runner) (share, what string) {
	if r == nil {
		return "-", "-"
	}
	var names []string
	all := r.Status()
	for _, st := range all {
		if st.Leading {
			names = append(names, fmt.Sprintf("%s (term %d%s)", st.Name, st.Term.FencingToken, handingOver(st)))
		}
	}
	share = shareOf(all)
	if len(names) == 0 {
		return share, "standby"
	}
	return share, strings.Join(names, ", ")
}

// handingOver says whom st's leadership is being handed to, if anyone.
func handingOver(st framework.ComponentStatus) string {
	if st.HandOverTo == "" {
		return ""
	}
	return " → " + st.HandOverTo
}

// runCluster runs one replica against a cluster until ctx is done. Its
// log (plain mode) or live view shows its share of the components as it
// changes and each move it makes ("→ replica").
func runCluster(ctx context.Context, o options, ev *events, logger *slog.Logger, live bool, in *os.File, out io.Writer) error {
	var runner *framework.Runner
	opts := []fx.Option{
		framework.Module,
		framework.Config(o.sources(map[string]any{"lock": "lease", "kubeconfig": o.kubeconfig})...),
		fx.Supply(logger),
		framework.ExitOnSecondSignal(), // a second Ctrl-C while the leases are handed over
		fx.Populate(&runner),
		fx.NopLogger,
	}
	for _, n := range names(o.components) {
		opts = append(opts, framework.Component(func() components.Component { return demoComponent(n, ev) }))
	}
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		return err
	}
	if err := app.Start(ctx); err != nil {
		return err
	}
	ev.add("demo: %s campaigns for %d components on Leases; stop it with Ctrl-C", runner.Identity(), o.components)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if live {
		if tty, err := rawTerminal(in); err != nil {
			live = false
			ev.out = out
		} else {
			defer tty.restore()
			keys, err := newClusterKeys(o.kubeconfig, runner, ev)
			if err != nil {
				ev.add("demo: the keys m, d and u are off: %v", err)
			}
			// Reading the terminal cannot be interrupted; this goroutine
			// ends with the process. A key's action runs in it, one at a
			// time, and ends with ctx.
			go tty.keys(func(k byte) {
				switch {
				case k == 'q' || k == 3: // Ctrl-C arrives as a key in raw mode
					cancel()
				case keys != nil:
					keys.press(ctx, k)
				}
			})
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastShare := ""
	update := func() {
		status := runner.Status()
		if share := shareOf(status); share != lastShare {
			ev.add("%s share %s", runner.Identity(), share)
			lastShare = share
		}
		if live {
			fmt.Fprint(out, renderCluster(runner.Identity(), status, ev.last()))
		}
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			update()
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := app.Stop(stopCtx)
	ev.add("demo: %s stopped; its leases handed over (or released)", runner.Identity())
	update()
	return err
}

// shareOf is the share of the components that this replica leads, from
// its status.
func shareOf(status []framework.ComponentStatus) string {
	n := 0
	for _, st := range status {
		if st.Leading {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(status))
}

// renderCluster draws the live view of replica id from its status: each
// component's leader as this replica sees it, and each replica's share,
// with the replica this one hands a leadership to while a move is under
// way. Replicas that lead nothing are not seen, except this one.
func renderCluster(id string, status []framework.ComponentStatus, recent []string) string {
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	fmt.Fprintf(&b, "tenure demo: replica %s on Leases, leading %s (placement spreads them over the replicas)\n\n", id, shareOf(status))
	fmt.Fprintf(&b, "%-12s %-24s %5s %s\n", "COMPONENT", "LEADER", "TERM", "LOCK")
	leads := map[string][]string{id: nil}
	var replicas []string
	for _, st := range status {
		leader, term, what := st.Leader, "-", st.Name
		switch {
		case st.Leading:
			leader = id + " (us)" + handingOver(st)
			term = fmt.Sprint(st.Term.FencingToken)
			what = fmt.Sprintf("%s (term %d%s)", st.Name, st.Term.FencingToken, handingOver(st))
		case leader == "":
			leader = "(none)"
		case st.Observed:
			term = fmt.Sprint(st.Record.LeaderTransitions)
		}
		fmt.Fprintf(&b, "%-12s %-24s %5s %s\n", st.Name, leader, term, st.Lock)
		holder := st.Leader
		if st.Leading {
			holder = id
		}
		if holder == "" {
			continue
		}
		if _, ok := leads[holder]; !ok {
			replicas = append(replicas, holder)
		}
		leads[holder] = append(leads[holder], what)
	}
	slices.Sort(replicas)
	fmt.Fprintf(&b, "\n%-24s %5s %s\n", "REPLICA", "SHARE", "LEADS")
	for _, r := range append([]string{id}, replicas...) {
		name, what := r, strings.Join(leads[r], ", ")
		if r == id {
			name += " (us)"
		}
		if what == "" {
			what = "standby"
		}
		fmt.Fprintf(&b, "%-24s %5s %s\n", name, fmt.Sprintf("%d/%d", len(leads[r]), len(status)), what)
	}
	b.WriteString("\nrecent:\n")
	for _, l := range recent {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("\nkeys: m move one of ours to another replica, d drain us, u uncordon us, q quit (as kubectl tenure does)\n")
	return b.String()
}
