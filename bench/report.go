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
	started   time.Time
	opts      options
	handover  map[string][]time.Duration
	crash     map[string][]time.Duration
	requests  map[string]requestResult
	scale     map[string]scaleResult
	placement map[string]placementResult
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
	w("through the watch each Lease lock follows by default (`locks.LeaseLock.Watch`, shared per client and namespace).")
	w("")
	w("Machine: %s, %d cores (GOMAXPROCS %d), %s/%s, %s.", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	w("The API server, etcd and the candidates share these cores, so absolute numbers include their contention;")
	w("the ratios compare the two implementations under the same conditions.")
	w("")
	if len(r.placement) == 2 {
		r.placementMarkdown(w)
	}
	if len(r.handover) == 2 {
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
	}
	if len(r.crash) == 2 {
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
		t, c := r.crash["tenure"], r.crash["client-go"]
		w("| tenure / client-go | %s | %s |", ratio(float64(percentile(t, .5)), float64(percentile(c, .5))), ratio(float64(slices.Max(t)), float64(slices.Max(c))))
		w("")
	}
	if len(r.requests) == 3 {
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
	}
	if len(r.scale) > 0 {
		w("## %d elections × 3 replicas", r.opts.scale)
		w("")
		w("Each replica is a process of its own running %d candidates (timings 15s/10s/2s). tenure's are placed as a", r.opts.scale)
		w("program's are by default: each replica announces itself in its member Lease, campaigns for the coordinator")
		w("(`tenure-placement-%s`, a round every retry period) and its elections honour the moves asked; client-go's", scaleGroup)
		w("are bare elections. Measured from starting the processes: the time until every election had a leader, and")
		w("until the last term started or placement move asked before %v of neither (settled, with the moves asked", settleQuiet)
		w("until then); the elections each replica led then, largest first; then over %v of steady state: CPU cores", r.opts.scaleSteady)
		w("and resident memory per replica, terms started (leadership changes: any is unexpected, nothing failed; a")
		w("move starts one too) and placement moves asked (any is unexpected: nothing changed).")
		w("")
		w("| | all led after | settled after | shares once settled | CPU cores per replica | RSS per replica | leadership changes | placement moves |")
		w("| --- | --- | --- | --- | --- | --- | --- | --- |")
		for _, impl := range []string{"tenure", "client-go"} {
			res, ok := r.scale[impl]
			if !ok {
				continue
			}
			if res.err != nil {
				w("| %s | failed: %v | | | | | | |", impl, res.err)
				continue
			}
			settled, moves := res.settled.Round(100*time.Millisecond).String(), "- (no placement)"
			if impl == "tenure" {
				settled += fmt.Sprintf(", %d moves", res.settleMoves)
				moves = fmt.Sprint(res.moves)
				if res.withdrawn > 0 {
					moves += fmt.Sprintf(" (%d withdrawn)", res.withdrawn)
				}
			}
			w("| %s | %v | %v | %s | %s | %s | %d | %s |", impl, res.allLed.Round(100*time.Millisecond), settled, shareString(res.shares),
				floats(res.cores, "%.2f"), floats(res.rssMiB, "%.0f MiB"), res.unexpected, moves)
		}
		if c := r.scale["tenure"].coordinator; c != "" {
			w("")
			w("tenure's replicas are r0, r1, r2 in that order; %s was the placement coordinator at the end.", c)
		}
		w("")
	}
	r.targets(w)
	return b.String()
}

// targets compares the results with the targets of the performance issue
// and explains the misses.
func (r *benchReport) targets(w func(string, ...any)) {
	w("## Against the targets")
	w("")
	w("| target | measured | met |")
	w("| --- | --- | --- |")
	yes := map[bool]string{true: "yes", false: "**no**"}
	if h := r.handover["tenure"]; len(h) > 0 {
		p50, p99 := percentile(h, .5), percentile(h, .99)
		w("| graceful hand-over p50 ≤ 30 ms, p99 ≤ 100 ms | %s, %s | %s |", ms(p50), ms(p99), yes[p50 <= 30*time.Millisecond && p99 <= 100*time.Millisecond])
	}
	if c := r.crash["tenure"]; len(c) > 0 {
		p50 := percentile(c, .5)
		w("| crash take-over ≤ 50 ms past expiry (median) | %s | %s |", ms(p50), yes[p50 <= 50*time.Millisecond])
	}
	if cg := r.requests["client-go"].perElectionMinute; cg > 0 {
		def, slow := r.requests["tenure"].perElectionMinute/cg, r.requests[slowRenewName].perElectionMinute/cg
		w("| ≤ ¼ of client-go's requests per election per minute | %.3f× (default), %.3f× (renew_interval 5s) | %s (default), %s (renew_interval 5s) |", def, slow, yes[def <= .25], yes[slow <= .25])
	}
	if s, ok := r.scale["tenure"]; ok && s.err == nil {
		maxCores, maxRSS := slices.Max(s.cores), slices.Max(s.rssMiB)
		w("| %d × 3, placement on: zero unexpected transitions, zero moves, ≤ 1 core, ≤ 200 MiB per replica | %d, %d, %.2f cores, %.0f MiB | %s |", r.opts.scale, s.unexpected, s.moves+s.withdrawn, maxCores, maxRSS,
			yes[s.unexpected == 0 && s.moves+s.withdrawn == 0 && maxCores <= 1 && maxRSS <= 200])
	}
	w("")
	w("Why, where it matters:")
	w("")
	w("- **Requests.** A tenure standby makes no requests: it reads its Leases from one shared watch per namespace.")
	w("  What is left is the leader's renewal, one PATCH per renew interval (client-go: a GET and a PUT per")
	w("  `retry_period` for the leader, a GET per `retry_period` for each standby). tenure's default renew interval")
	w("  is the longest that leaves the renewal and three retries, half a `retry_period` apart, before the")
	w("  `renew_deadline`: 4.5 s at 10s/2s, about 12 renewals a minute where client-go's leader makes 30, and")
	w("  `renew_interval: 5s` a little fewer. `renew_interval: 2s` (client-go's cadence) makes about 0.4×.")
	w("- **Time until every election has a leader.** A tenure candidate creates a missing Lease only after it")
	w("  stayed missing for a whole lease (15 s here), since it may have just been deleted under a working leader;")
	w("  client-go creates it at once. A Lease that exists is taken at once.")
	w("- **Hand-over and take-over.** A standby learns of a release from its watch within milliseconds and")
	w("  campaigns at once; after a crash it wakes when the lease ends on its own clock, counted from when it saw")
	w("  the last renewal, instead of at its next poll.")
	w("- **Unexpected transitions** are leaderships lost without a fault, such as a leader whose renewals did")
	w("  not succeed within `renew_deadline` on an overloaded machine (the API server, etcd and 3,000 candidates")
	w("  share 2 cores here). With `BENCH_VERBOSE=1` the replicas log why each term ended.")
}

func floats(fs []float64, format string) string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf(format, f))
	}
	return strings.Join(s, ", ")
}

func shareString(s []int) string {
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, "/")
}

func (r *benchReport) placementMarkdown(w func(string, ...any)) {
	w("## Placement: 3 replicas × %d components", placedComponents)
	w("")
	w("Three replicas started 0.3 s apart, each campaigning for the same %d components on Leases (timings 15s/10s/2s).", placedComponents)
	w("tenure: the fx module with `placement: balanced` and `revision` set as a Deployment's pod-template-hash would;")
	w("client-go: one `LeaderElector` per component per replica, `ReleaseOnCancel`. Shares are the components each")
	w("replica leads once no term has started for three retry periods, largest first. Each rolling update replaces the")
	w("three replicas one at a time with a new revision, waiting 8 s after each start; moves are terms started per")
	w("component during the roll. Requests: per component election per minute, all replicas together, over %v in", r.opts.steady)
	w("steady state after the start (tenure's include the member Leases and the coordinator election).")
	w("")
	w("| | shares after the start | settled after the last start | stop, then start: moves per component (max) | shares after | start, then stop: moves per component (max) | shares after | requests per election per minute |")
	w("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, impl := range []string{"tenure", "client-go"} {
		p := r.placement[impl]
		if p.err != nil {
			w("| %s | failed: %v | | | | | | |", impl, p.err)
			continue
		}
		a, b := p.rolls[rollStopFirst], p.rolls[rollSurgeFirst]
		w("| %s | %s | %.1f s | %.2f (%d) | %s | %.2f (%d) | %s | %.2f |", impl, shareString(p.start), p.settle.Seconds(),
			a.perComponent, a.max, shareString(a.shares), b.perComponent, b.max, shareString(b.shares), p.requests)
	}
	t, c := r.placement["tenure"], r.placement["client-go"]
	if t.err == nil && c.err == nil {
		w("| tenure / client-go | | | | | | | %s |", ratio(t.requests, c.requests))
	}
	w("")
	for _, impl := range []string{"tenure", "client-go"} {
		var verbs []string
		for v, n := range r.placement[impl].byVerb {
			verbs = append(verbs, fmt.Sprintf("%s %.2f", v, n))
		}
		slices.Sort(verbs)
		w("%s requests by verb: %s.", impl, strings.Join(verbs, ", "))
	}
	w("")
}
