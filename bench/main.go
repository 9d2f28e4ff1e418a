// Command bench measures tenure's elections against client-go's
// tools/leaderelection in the same run, on a real kube-apiserver and etcd
// started on loopback (built as the tests build them), and writes the
// report BENCHMARKS.md:
//
//	go run ./bench                 # every scenario (about 15 minutes)
//	go run ./bench -scale 0        # without the 1000-election scenario
//
// Each candidate has its own client, as it would in its own pod; both
// implementations get the same timings. See BENCHMARKS.md for the method.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenure/tenure/internal/kubetest"
)

type options struct {
	handovers, crashes, elections, scale int
	steady, scaleSteady                  time.Duration
	out, only, impl                      string
}

func main() {
	var o options
	flag.IntVar(&o.handovers, "handovers", 50, "graceful hand-overs per implementation")
	flag.IntVar(&o.crashes, "crashes", 20, "crashes per implementation")
	flag.IntVar(&o.elections, "elections", 50, "elections per replica in the request-count scenario")
	flag.DurationVar(&o.steady, "steady", time.Minute, "steady-state window of the request-count scenario")
	flag.IntVar(&o.scale, "scale", 1000, "elections per replica in the scale scenario (0: skip)")
	flag.DurationVar(&o.scaleSteady, "scale-steady", 10*time.Minute, "steady-state window of the scale scenario")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report file")
	flag.StringVar(&o.only, "only", "", "run only this scenario: handover, crash, requests, placement or scale")
	flag.StringVar(&o.impl, "impl", "", "run only this implementation: tenure or client-go")
	replica := flag.Bool("replica", false, "internal: run as one replica of the scale scenario")
	flag.Parse()
	if *replica {
		os.Exit(runReplica(flag.Args()))
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// env is the API server and what the scenarios share.
type env struct {
	srv   *kubetest.Server
	admin kubernetes.Interface
}

// counter counts API requests by verb.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func newCounter() *counter { return &counter{n: map[string]int{}} }

func (c *counter) add(verb string) {
	c.mu.Lock()
	c.n[verb]++
	c.mu.Unlock()
}

func (c *counter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

type countingTransport struct {
	next http.RoundTripper
	c    *counter
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	verb := req.Method
	if req.URL.Query().Get("watch") == "true" {
		verb = "WATCH"
	} else if req.Method == http.MethodGet && !strings.Contains(strings.TrimPrefix(req.URL.Path, "/apis/coordination.k8s.io/v1/namespaces/"), "/leases/") {
		verb = "LIST"
	}
	t.c.add(verb)
	return t.next.RoundTrip(req)
}

// client makes a client of its own (its own connections), counting its
// requests in c if c is not nil.
func (e *env) client(c *counter) kubernetes.Interface {
	cfg := rest.CopyConfig(e.srv.Config())
	cfg.QPS, cfg.Burst = 1000, 2000 // no client-side throttling for either implementation
	if c != nil {
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, c} }
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func (e *env) namespace(prefix string) string {
	ns, err := e.admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	return ns.Name
}

// start starts a candidate with a client of its own.
func (e *env) start(impl implementation, c *counter, ns, lease, id string, t timings, release bool, led chan<- leadEvent) candidate {
	return impl.start(e.client(c), ns, lease, id, t, release, led)
}

func run(o options) error {
	ctx := context.Background()
	bins, err := kubetest.EnsureBinaries(ctx, func(msg string) { fmt.Fprintln(os.Stderr, "bench:", msg) })
	if err != nil {
		return err
	}
	srv, err := kubetest.Start(ctx, bins)
	if err != nil {
		return err
	}
	defer srv.Stop()
	e := &env{srv: srv}
	e.admin = e.client(nil)
	rep := &benchReport{started: time.Now(), opts: o, handover: map[string][]time.Duration{}, crash: map[string][]time.Duration{},
		requests: map[string]requestResult{}, scale: map[string]scaleResult{}, placement: map[string]placementResult{}}
	impls := []implementation{tenure, clientGo}
	if o.impl != "" {
		impls = slices.DeleteFunc(impls, func(i implementation) bool { return i.name != o.impl })
	}
	want := func(s string) bool { return o.only == "" || o.only == s }

	for _, impl := range impls {
		if !want("handover") {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: %s: %d graceful hand-overs\n", impl.name, o.handovers)
		rep.handover[impl.name] = e.handovers(impl, o.handovers)
	}
	for _, impl := range impls {
		if !want("crash") {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: %s: %d crashes\n", impl.name, o.crashes)
		rep.crash[impl.name] = e.crashes(impl, o.crashes)
	}
	for _, impl := range impls {
		if !want("requests") {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: %s: requests, 3 replicas × %d elections, %v\n", impl.name, o.elections, o.steady)
		rep.requests[impl.name] = e.requests(impl, o.elections, o.steady, 0)
	}
	if want("requests") && o.impl != clientGo.name {
		fmt.Fprintf(os.Stderr, "bench: tenure: requests with renew_interval %v\n", slowRenew)
		rep.requests[slowRenewName] = e.requests(tenure, o.elections, o.steady, slowRenew)
	}
	for _, impl := range impls {
		if !want("placement") {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: %s: placement, 3 replicas × %d components, two rolling updates\n", impl.name, placedComponents)
		rep.placement[impl.name] = e.placement(impl, o.steady)
	}
	if o.scale > 0 && want("scale") {
		for _, impl := range impls {
			fmt.Fprintf(os.Stderr, "bench: %s: scale, 3 replicas × %d elections, %v\n", impl.name, o.scale, o.scaleSteady)
			res, err := e.scaleRun(impl, o.scale, o.scaleSteady)
			if err != nil {
				res = scaleResult{err: err}
			}
			rep.scale[impl.name] = res
		}
	}
	return os.WriteFile(o.out, []byte(rep.markdown()), 0o644)
}

// waitLead waits for the next lead event, up to timeout.
func waitLead(led <-chan leadEvent, timeout time.Duration) (leadEvent, bool) {
	select {
	case ev := <-led:
		return ev, true
	case <-time.After(timeout):
		return leadEvent{}, false
	}
}

// handovers measures, n times, from a leader's graceful stop to another
// candidate leading, with client-go's usual 15s/10s/2s.
func (e *env) handovers(impl implementation, n int) []time.Duration {
	t := timings{15 * time.Second, 10 * time.Second, 2 * time.Second, 0}
	ns := e.namespace("handover-" + impl.name)
	led := make(chan leadEvent, 16)
	cands := map[string]candidate{}
	cands["a"] = e.start(impl, nil, ns, "handover", "a", t, true, led)
	first, ok := waitLead(led, time.Minute)
	if !ok {
		panic("no first leader")
	}
	cands["b"] = e.start(impl, nil, ns, "handover", "b", t, true, led)
	leader := first.id
	var out []time.Duration
	for range n {
		time.Sleep(500 * time.Millisecond) // the restarted candidate settles
		t0 := time.Now()
		cands[leader].stop()
		next, ok := waitLead(led, time.Minute)
		if !ok {
			panic("no hand-over")
		}
		out = append(out, next.at.Sub(t0))
		cands[leader] = e.start(impl, nil, ns, "handover", leader, t, true, led)
		leader = next.id
	}
	for _, c := range cands {
		c.stop()
	}
	return out
}

// crashes measures, n times, how long after the crashed leader's lease
// expired (its last renewTime plus the lease) another candidate leads,
// with 6s/4s/2s.
func (e *env) crashes(impl implementation, n int) []time.Duration {
	t := timings{6 * time.Second, 4 * time.Second, 2 * time.Second, 0}
	ns := e.namespace("crash-" + impl.name)
	led := make(chan leadEvent, 16)
	cands := map[string]candidate{}
	cands["a"] = e.start(impl, nil, ns, "crash", "a", t, false, led)
	first, ok := waitLead(led, time.Minute)
	if !ok {
		panic("no first leader")
	}
	cands["b"] = e.start(impl, nil, ns, "crash", "b", t, false, led)
	leader := first.id
	var out []time.Duration
	for range n {
		time.Sleep(time.Second)
		cands[leader].stop() // no release: a crash
		lease, err := e.admin.CoordinationV1().Leases(ns).Get(context.Background(), "crash", metav1.GetOptions{})
		if err != nil {
			panic(err)
		}
		expiry := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
		next, ok := waitLead(led, time.Minute)
		if !ok {
			panic("no take-over")
		}
		out = append(out, next.at.Sub(expiry))
		cands[leader] = e.start(impl, nil, ns, "crash", leader, t, false, led)
		leader = next.id
	}
	for _, c := range cands {
		c.stop()
	}
	return out
}

// slowRenew is the renew interval of the requests scenario's third row.
const (
	slowRenew     = 5 * time.Second
	slowRenewName = "tenure, renew_interval 5s"
)

type requestResult struct {
	perElectionMinute float64
	byVerb            map[string]float64 // per election per minute
}

// requests counts the API requests of 3 replicas × n elections in steady
// state over window, with 15s/10s/2s.
func (e *env) requests(impl implementation, n int, window time.Duration, renew time.Duration) requestResult {
	t := timings{15 * time.Second, 10 * time.Second, 2 * time.Second, renew}
	ns := e.namespace("requests-" + impl.name)
	led := make(chan leadEvent, 3*n)
	c := newCounter()
	var g group
	for r := range 3 {
		cs := e.client(c)
		for i := range n {
			g.add(impl.start(cs, ns, fmt.Sprintf("election-%d", i), fmt.Sprintf("r%d", r), t, true, led))
		}
	}
	seen := map[string]bool{}
	for len(seen) < n {
		ev, ok := waitLead(led, 2*time.Minute)
		if !ok {
			panic("elections without a leader")
		}
		seen[ev.election] = true
	}
	time.Sleep(5 * time.Second)
	c.reset()
	time.Sleep(window)
	counts := c.reset()
	g.stopAll()
	res := requestResult{byVerb: map[string]float64{}}
	total := 0
	for verb, k := range counts {
		total += k
		res.byVerb[verb] = float64(k) / float64(n) / window.Minutes()
	}
	res.perElectionMinute = float64(total) / float64(n) / window.Minutes()
	return res
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := int(p * float64(len(s)-1))
	return s[i]
}
