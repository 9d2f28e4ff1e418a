package main

import (
	"bufio"
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

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tenure/tenure/internal/kubeconfig"
)

type scaleResult struct {
	allLed     time.Duration // from start until every election had a leader
	unexpected int           // leadership changes in the steady window
	cores      []float64     // CPU cores used per replica in the steady window
	rssMiB     []float64     // resident memory per replica at the end
	err        error
}

// runReplica is one replica process of the scale scenario: it runs n
// candidates of an implementation and prints "LED <election> <id>" when one
// starts leading, until SIGTERM.
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
	impl := tenure
	if *implName == clientGo.name {
		impl = clientGo
	}
	led := make(chan leadEvent, 4096)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	go func() {
		for ev := range led {
			mu.Lock()
			fmt.Fprintf(out, "LED %s %s\n", ev.election, ev.id)
			out.Flush()
			mu.Unlock()
		}
	}()
	t := timings{15 * time.Second, 10 * time.Second, 2 * time.Second, 0}
	var g group
	for i := range *n {
		g.add(impl.start(cs, *ns, fmt.Sprintf("e-%d", i), *id, t, true, blockingReport(led)))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	g.stopAll()
	return 0
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
// measures the time until all have a leader, then CPU, memory and
// unexpected leadership changes over window.
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
	var (
		mu        sync.Mutex
		leaders   = map[string]bool{}
		changes   int
		allLedAt  time.Time
		allLedSig = make(chan struct{})
	)
	start := time.Now()
	var cmds []*exec.Cmd
	var readers sync.WaitGroup
	for r := range 3 {
		cmd := exec.Command(self, "-replica", "--", "-impl", impl.name, "-n", strconv.Itoa(n), "-ns", ns, "-id", fmt.Sprintf("r%d", r), "-kubeconfig", kubeconfigPath)
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
				f := strings.Fields(sc.Text())
				if len(f) != 3 || f[0] != "LED" {
					continue
				}
				mu.Lock()
				changes++
				if !leaders[f[1]] {
					leaders[f[1]] = true
					if len(leaders) == n {
						allLedAt = time.Now()
						close(allLedSig)
					}
				}
				mu.Unlock()
			}
		})
	}
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
		readers.Wait()
	}()
	select {
	case <-allLedSig:
	case <-time.After(10 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		return scaleResult{}, fmt.Errorf("only %d of %d elections had a leader after 10 minutes", len(leaders), n)
	}
	time.Sleep(10 * time.Second) // settle
	mu.Lock()
	before := changes
	mu.Unlock()
	cpu0 := make([]float64, len(cmds))
	for i, c := range cmds {
		cpu0[i] = cpuSeconds(c.Process.Pid)
	}
	t0 := time.Now()
	time.Sleep(window)
	res := scaleResult{allLed: allLedAt.Sub(start)}
	for i, c := range cmds {
		res.cores = append(res.cores, (cpuSeconds(c.Process.Pid)-cpu0[i])/time.Since(t0).Seconds())
		res.rssMiB = append(res.rssMiB, rssMiB(c.Process.Pid))
	}
	mu.Lock()
	res.unexpected = changes - before
	mu.Unlock()
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
