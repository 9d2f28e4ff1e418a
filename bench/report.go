package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

type benchReport struct {
	started  time.Time
	opts     options
	handover map[string][]time.Duration
	crash    map[string][]time.Duration
	requests map[string]requestResult
	scale    map[string]scaleResult
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f×", a/b)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown"
}

func (r *benchReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Benchmarks: tenure against client-go")
	w("")
	w("Written by `go run ./bench` on %s (took %v). Both implementations ran in the same run against the same", r.started.Format("2006-01-02 15:04 MST"), time.Since(r.started).Round(time.Second))
	w("kube-apiserver %s and etcd on loopback, client-go %s's `tools/leaderelection` against tenure's `election` with", "v1.37.2", "v0.37.2")
	w("Lease locks; each candidate has its own client (no client-side rate limit for either); tenure's candidates read")
	w("through their own watch cache (`locks.WithWatcher`), as the framework does by default.")
	w("")
	w("Machine: %s, %d cores (GOMAXPROCS %d), %s/%s, %s.", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	w("The API server, etcd and the candidates share these cores, so absolute numbers include their contention;")
	w("the ratios compare the two implementations under the same conditions.")
	w("")
	w("## Graceful hand-over")
	w("")
	w("The leader stops (tenure: `Run`'s context is cancelled; client-go: `ReleaseOnCancel`), both release the Lease;")
	w("measured from the stop to the other candidate's `OnStartedLeading`. Timings 15s/10s/2s, %d hand-overs each.", r.opts.handovers)
	w("")
	w("| | p50 | p90 | p99 | max |")
	w("| --- | --- | --- | --- | --- |")
	for _, impl := range []string{"tenure", "client-go"} {
		d := r.handover[impl]
		w("| %s | %s | %s | %s | %s |", impl, ms(percentile(d, .5)), ms(percentile(d, .9)), ms(percentile(d, .99)), ms(slices.Max(d)))
	}
	t, c := r.handover["tenure"], r.handover["client-go"]
	w("| tenure / client-go | %s | %s | %s | %s |", ratio(float64(percentile(t, .5)), float64(percentile(c, .5))), ratio(float64(percentile(t, .9)), float64(percentile(c, .9))),
		ratio(float64(percentile(t, .99)), float64(percentile(c, .99))), ratio(float64(slices.Max(t)), float64(slices.Max(c))))
	w("")
	w("## Crash take-over")
	w("")
	w("The leader stops without releasing, as a crashed process; measured from its lease's expiry (its last `renewTime`")
	w("plus `leaseDurationSeconds`) to the other candidate's `OnStartedLeading`. Timings 6s/4s/2s, %d crashes each.", r.opts.crashes)
	w("")
	w("| | p50 | max |")
	w("| --- | --- | --- |")
	for _, impl := range []string{"tenure", "client-go"} {
		d := r.crash[impl]
		w("| %s | %s | %s |", impl, ms(percentile(d, .5)), ms(slices.Max(d)))
	}
	t, c = r.crash["tenure"], r.crash["client-go"]
	w("| tenure / client-go | %s | %s |", ratio(float64(percentile(t, .5)), float64(percentile(c, .5))), ratio(float64(slices.Max(t)), float64(slices.Max(c))))
	w("")
	w("## API requests in steady state")
	w("")
	w("3 replicas × %d elections, timings 15s/10s/2s, counted on the client side by a counting `http.RoundTripper`", r.opts.elections)
	w("over %v after every election had a leader; per election per minute, all replicas together.", r.opts.steady)
	w("")
	verbs := map[string]bool{}
	for _, res := range r.requests {
		for v := range res.byVerb {
			verbs[v] = true
		}
	}
	vs := slices.Sorted(func(yield func(string) bool) {
		for v := range verbs {
			if !yield(v) {
				return
			}
		}
	})
	w("| | total | %s |", strings.Join(vs, " | "))
	w("| --- | --- |%s", strings.Repeat(" --- |", len(vs)))
	for _, impl := range []string{"tenure", slowRenewName, "client-go"} {
		res := r.requests[impl]
		var cells []string
		for _, v := range vs {
			cells = append(cells, fmt.Sprintf("%.2f", res.byVerb[v]))
		}
		w("| %s | %.2f | %s |", impl, res.perElectionMinute, strings.Join(cells, " | "))
	}
	w("| tenure / client-go | %s | |", ratio(r.requests["tenure"].perElectionMinute, r.requests["client-go"].perElectionMinute))
	w("| tenure (renew_interval 5s) / client-go | %s | |", ratio(r.requests[slowRenewName].perElectionMinute, r.requests["client-go"].perElectionMinute))
	w("")
	if len(r.scale) > 0 {
		w("## %d elections × 3 replicas", r.opts.scale)
		w("")
		w("Each replica is a process of its own running %d candidates (timings 15s/10s/2s); measured: the time from", r.opts.scale)
		w("starting the processes until every election had a leader, then over %v of steady state: CPU cores", r.opts.scaleSteady)
		w("and resident memory per replica, and leadership changes (any is unexpected: nothing failed).")
		w("")
		w("| | all led after | CPU cores per replica | RSS per replica | unexpected changes |")
		w("| --- | --- | --- | --- | --- |")
		for _, impl := range []string{"tenure", "client-go"} {
			res, ok := r.scale[impl]
			if !ok {
				continue
			}
			if res.err != nil {
				w("| %s | failed: %v | | | |", impl, res.err)
				continue
			}
			w("| %s | %v | %s | %s | %d |", impl, res.allLed.Round(100*time.Millisecond), floats(res.cores, "%.2f"), floats(res.rssMiB, "%.0f MiB"), res.unexpected)
		}
		w("")
	}
	return b.String()
}

func floats(fs []float64, format string) string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf(format, f))
	}
	return strings.Join(s, ", ")
}
