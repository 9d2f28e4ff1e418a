package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tenure/tenure/election"
	"github.com/tenure/tenure/internal/kubeconfig"
	"github.com/tenure/tenure/locks"
	"github.com/tenure/tenure/placement"
)

type scaleResult struct {
	allLed      time.Duration // from start until every election had a leader
	settled     time.Duration // from start until the last term started or move asked before settleQuiet of neither
	shares      []int         // elections led per replica once settled, largest first
	settleMoves int           // placement moves asked until settled (tenure)
	unexpected  int           // terms started in the steady window
	moves       int           // placement moves asked in the steady window (tenure)
	withdrawn   int           // placement moves withdrawn in the steady window (tenure)
	coordinator string        // the placement coordinator at the end (tenure)
	cores       []float64     // CPU cores used per replica in the steady window
	rssMiB      []float64     // resident memory per replica at the end
	err         error
}

// scaleTimings are the scale scenario's: client-go's usual 15s/10s/2s.
var scaleTimings = timings{15 * time.Second, 10 * time.Second, 2 * time.Second, 0}

// The scale scenario is settled once no term started and no move was asked
// for settleQuiet, five retry periods, which must happen within settleLimit
// after every election had a leader.
var settleQuiet = 5 * scaleTimings.retry

const settleLimit = 5 * time.Minute

// The lines a replica of the scale scenario prints on stdout.
const (
	ledLine      = "LED"      // LED <election> <id>: id started leading
	moveLine     = "MOVE"     // MOVE <election> <from> <to>: the coordinator asked a move
	withdrawLine = "WITHDRAW" // WITHDRAW <election> <from> <to>: the coordinator withdrew one, its target gone
)

// scaleGroup is the placement group of the scale replicas (a program's
// default is its name).
const scaleGroup = "bench-scale"

// runReplica is one replica process of the scale scenario: it runs n
// candidates of an implementation, tenure's placed as a program's are by
// default (see runPlacement), and prints a line per term started and
// placement move (see ledLine), until SIGTERM.
func runReplica(args []string) int {
	fs := flag.NewFlagSet("replica", flag.ExitOnError)
	implName := fs.String("impl", "tenure", "tenure or client-go")
	n := fs.Int("n", 1000, "elections")
	ns := fs.String("ns", "", "namespace")
	id := fs.String("id", "", "identity")
	kubeconfigPath := fs.String("kubeconfig", "", "kubeconfig")
	_ = fs.Parse(args)
	cfg, err := kubeconfig.RESTConfig(*kubeconfigPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cs := kubernetes.NewForConfigOrDie(cfg)
	if os.Getenv("BENCH_VERBOSE") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(fields ...string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, strings.Join(fields, " "))
		out.Flush()
	}
	led := make(chan leadEvent, 4096)
	go func() {
		for ev := range led {
			say(ledLine, ev.election, ev.id)
		}
	}()
	t := scaleTimings
	var g group
	stopPlacement := func() {}
	if *implName == clientGo.name {
		for i := range *n {
			g.add(clientGo.start(cs, *ns, fmt.Sprintf("e-%d", i), *id, t, true, blockingReport(led)))
		}
	} else {
		cands := make([]*tenureCandidate, *n)
		for i := range cands {
			cands[i] = newTenureCandidate(cs, *ns, fmt.Sprintf("e-%d", i), *id, t, true, blockingReport(led))
		}
		if stopPlacement, err = runPlacement(cs, *ns, *id, t, cands, say); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, c := range cands { // after the first announcement, as the framework starts them
			c.start()
			g.add(c)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	stopPlacement()
	g.stopAll()
	return 0
}

// runPlacement places the elections of cands over the replicas of
// scaleGroup as a tenure program does by default (see
// framework/placement.go): it announces replica id in its member Lease
// now and every max((lease − retry period)/2, retry period) as the
// framework does, and campaigns for the
// coordinator on the Lease tenure-placement-<group>, whose leader plans a
// round every retry period and says each move it asks or withdraws as a
// line (see moveLine). The elections honour the moves asked on their
// locks by themselves. stop ends the announcements and the coordinator's
// campaign, then deletes the member Lease.
func runPlacement(cs kubernetes.Interface, ns, id string, t timings, cands []*tenureCandidate, say func(...string)) (stop func(), err error) {
	roster, err := placement.NewLeaseRoster(cs.CoordinationV1(), ns, t.lease, placement.WithGroup(scaleGroup))
	if err != nil {
		return nil, err
	}
	byKey := map[string]*tenureCandidate{}
	comps := map[string]placement.Component{}
	member := placement.Member{Identity: id, Started: time.Now()}
	for _, c := range cands {
		key := locks.KindLease.Key(ns, c.name) // by lock, as the framework keys components
		byKey[key], comps[key] = c, placement.Component{Lock: c.lock, Name: c.name}
		member.Components = append(member.Components, key)
	}
	tell := func(line string) func(placement.Move) {
		return func(m placement.Move) { say(line, byKey[m.Component].name, m.From, m.To) }
	}
	coord, err := placement.NewCoordinator(placement.CoordinatorConfig{
		Roster: roster, Components: comps, Interval: t.retry, PendingFor: t.lease, Logger: quiet,
		Holders: func() map[string]string {
			out := make(map[string]string, len(byKey))
			for key, c := range byKey {
				out[key] = c.election.Leader()
			}
			return out
		},
		OnMove: tell(moveLine), OnWithdraw: tell(withdrawLine),
	})
	if err != nil {
		roster.Close()
		return nil, err
	}
	coordName := placement.CoordinatorLeaseName(scaleGroup)
	coordLock, err := locks.NewLeaseLock(cs.CoordinationV1(), ns, coordName, locks.WithIdentity(id))
	if err != nil {
		roster.Close()
		return nil, err
	}
	coordinator, err := election.New(election.Config{
		Lock: coordLock, Name: coordName, Identity: id, Logger: quiet,
		LeaseDuration: t.lease, RenewDeadline: t.deadline, RetryPeriod: t.retry, RenewInterval: t.renew,
		OnStartedLeading: coord.Run,
	})
	if err != nil {
		roster.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	announce := func() {
		actx, cancel := context.WithTimeout(ctx, 2*t.retry)
		defer cancel()
		if err := roster.Announce(actx, member); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "bench: replica", id+":", err)
		}
	}
	announce()
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(max((t.lease-t.retry)/2, t.retry))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				announce()
			}
		}
	})
	wg.Go(func() { _ = coordinator.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
		lctx, cancel := context.WithTimeout(context.Background(), t.deadline)
		defer cancel()
		_ = roster.Leave(lctx, id)
		roster.Close()
	}, nil
}

// blockingReport is a channel that never drops: replicas must report every
// leadership change.
func blockingReport(led chan leadEvent) chan<- leadEvent {
	ch := make(chan leadEvent)
	go func() {
		for ev := range ch {
			led <- ev
		}
	}()
	return ch
}

// scaleRun starts three replica processes with n elections each and
// measures the time until all have a leader and until they have settled
// (placement has moved what it moves at the start; see settleQuiet), the
// shares then, and over window: CPU, memory, terms started and placement
// moves.
func (e *env) scaleRun(impl implementation, n int, window time.Duration) (scaleResult, error) {
	ns := e.namespace("scale-" + impl.name)
	dir, err := os.MkdirTemp("", "tenure-bench-")
	if err != nil {
		return scaleResult{}, err
	}
	defer os.RemoveAll(dir)
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["b"] = &clientcmdapi.Cluster{Server: e.srv.URL, CertificateAuthority: e.srv.CAFile}
	kc.AuthInfos["b"] = &clientcmdapi.AuthInfo{Token: e.srv.AdminToken}
	kc.Contexts["b"] = &clientcmdapi.Context{Cluster: "b", AuthInfo: "b"}
	kc.CurrentContext = "b"
	if err := clientcmd.WriteToFile(*kc, kubeconfigPath); err != nil {
		return scaleResult{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return scaleResult{}, err
	}
	tr := newTracker(n)
	ids := []string{"r0", "r1", "r2"}
	start := time.Now()
	var cmds []*exec.Cmd
	var readers sync.WaitGroup
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
		readers.Wait()
	}()
	for _, id := range ids {
		cmd := exec.Command(self, "-replica", "--", "-impl", impl.name, "-n", strconv.Itoa(n), "-ns", ns, "-id", id, "-kubeconfig", kubeconfigPath)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return scaleResult{}, err
		}
		if err := cmd.Start(); err != nil {
			return scaleResult{}, err
		}
		cmds = append(cmds, cmd)
		readers.Go(func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				switch f := strings.Fields(sc.Text()); {
				case len(f) == 3 && f[0] == ledLine:
					tr.lead(f[1], f[2])
				case len(f) == 4 && (f[0] == moveLine || f[0] == withdrawLine):
					tr.placed(f[0])
				}
			}
		})
	}
	_, allLed, ok := tr.settled(0, 10*time.Minute, ids)
	if !ok {
		return scaleResult{}, fmt.Errorf("only %d of %d elections had a leader after 10 minutes", len(tr.startsBy()), n)
	}
	res := scaleResult{allLed: allLed.Sub(start)}
	shares, last, ok := tr.settled(settleQuiet, settleLimit, ids)
	if !ok {
		return scaleResult{}, fmt.Errorf("not settled %v after every election had a leader: never %v without a term started or a move asked (%d terms started, %d moves asked)",
			settleLimit, settleQuiet, tr.totalStarts(), tr.movesOf(moveLine))
	}
	starts, moves, withdrawn := tr.totalStarts(), tr.movesOf(moveLine), tr.movesOf(withdrawLine)
	res.settled, res.shares, res.settleMoves = last.Sub(start), shares, moves
	cpu0 := make([]float64, len(cmds))
	for i, c := range cmds {
		cpu0[i] = cpuSeconds(c.Process.Pid)
	}
	t0 := time.Now()
	time.Sleep(window)
	for i, c := range cmds {
		res.cores = append(res.cores, (cpuSeconds(c.Process.Pid)-cpu0[i])/time.Since(t0).Seconds())
		res.rssMiB = append(res.rssMiB, rssMiB(c.Process.Pid))
	}
	res.unexpected = tr.totalStarts() - starts
	res.moves, res.withdrawn = tr.movesOf(moveLine)-moves, tr.movesOf(withdrawLine)-withdrawn
	if impl.name == tenure.name {
		lease, err := e.admin.CoordinationV1().Leases(ns).Get(context.Background(), placement.CoordinatorLeaseName(scaleGroup), metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil {
			res.coordinator = *lease.Spec.HolderIdentity
		}
	}
	return res, nil
}

// cpuSeconds is the user and system CPU time of pid, from /proc.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; USER_HZ is 100 on Linux
}

// rssMiB is the resident memory of pid, from /proc.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
