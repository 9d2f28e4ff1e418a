// Package chaos_test puts elections under faults on a real API server and
// checks that no two leaders of one election ever act at once, that
// fencing tokens only grow, and that a leader exists soon after each fault
// heals.
//
// It is opt-in: CHAOS=short (what .ci/run runs, a few minutes) or
// CHAOS=long (each test for CHAOS_DURATION, default 30m); without it the
// tests skip. CHAOS_ELECTIONS sets how many elections the in-process test
// runs (default 20); CHAOS_VERBOSE=1 shows the elections' and client-go's
// logs.
package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"k8s.io/klog/v2"

	"github.com/tenure/tenure/internal/faultproxy"
	"github.com/tenure/tenure/internal/kubetest"
)

func TestMain(m *testing.M) {
	if os.Getenv("CHAOS_VERBOSE") == "" {
		// client-go's reflectors log every broken watch; under faults
		// that is expected, and it would bury the test's own lines.
		klog.SetLogger(logr.Discard())
	}
	os.Exit(kubetest.Main(m))
}

// duration is how long each chaos test runs, or skips the test.
func duration(t *testing.T, short time.Duration) time.Duration {
	switch os.Getenv("CHAOS") {
	case "short":
		return short
	case "long":
		if d, err := time.ParseDuration(os.Getenv("CHAOS_DURATION")); err == nil {
			return d
		}
		return 30 * time.Minute
	}
	t.Skip("chaos tests are opt-in: CHAOS=short or long")
	return 0
}

// fault is one fault to inject; do returns once it has healed.
type fault struct {
	name string
	do   func()
}

// inject injects each fault once in order, then faults drawn at random,
// until run has passed; after each, healed checks that every election has
// a leader again. It returns how many faults it injected.
func inject(t *testing.T, c *checker, run time.Duration, faults []fault, healed func(after string)) int {
	t.Helper()
	end := time.Now().Add(run)
	n := 0
	for time.Now().Before(end) {
		f := faults[n%len(faults)]
		if n >= len(faults) {
			f = faults[rand.IntN(len(faults))]
		}
		n++
		t.Logf("fault %d: %s (%d terms so far)", n, f.name, c.transitions())
		f.do()
		healed(f.name)
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
	}
	return n
}

// sharedFaults are the faults that hit every candidate: restarts of the
// API server and of etcd, and every connection reset.
func sharedFaults(t *testing.T, srv *kubetest.Server, proxies []*faultproxy.Proxy) []fault {
	return []fault{
		{"restart the API server", func() { require.NoError(t, srv.RestartAPIServer(context.Background())) }},
		{"restart etcd", func() { require.NoError(t, srv.RestartEtcd(context.Background())) }},
		{"reset every connection", func() {
			for _, p := range proxies {
				p.Block()
				p.Heal()
			}
		}},
	}
}

// act is one action of a leader.
type act struct {
	at    time.Time
	who   string
	token int32
}

// checker keeps every leader's acts and terms, per election.
type checker struct {
	mu     sync.Mutex
	acts   map[string][]act
	starts map[string][]act // term starts
}

func newChecker() *checker {
	return &checker{acts: map[string][]act{}, starts: map[string][]act{}}
}

func (c *checker) act(election, who string, token int32, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acts[election] = append(c.acts[election], act{at, who, token})
}

func (c *checker) start(election, who string, token int32, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts[election] = append(c.starts[election], act{at, who, token})
}

// transitions counts the terms started.
func (c *checker) transitions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.starts {
		n += len(s)
	}
	return n
}

// handOver says when who last acted in election, and when another
// identity first acted after that; ok is false until one has.
func (c *checker) handOver(election, who string) (last, next time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.acts[election] {
		switch {
		case a.who == who:
			last, next, ok = a.at, time.Time{}, false
		case !ok && !last.IsZero() && a.at.After(last):
			next, ok = a.at, true
		}
	}
	return last, next, ok
}

// leaders says who acted last in each of elections, if within the last
// second: the elections that have a working leader.
func (c *checker) leaders(elections []string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, e := range elections {
		acts := c.acts[e]
		if len(acts) > 0 && time.Since(acts[len(acts)-1].at) < time.Second {
			out[e] = acts[len(acts)-1].who
		}
	}
	return out
}

// violations lists, per election, where the acts of two terms interleave
// (two leaders acted at once) or a later term has no greater token.
func (c *checker) violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for election, acts := range c.acts {
		sorted := slices.Clone(acts)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].at.Before(sorted[j].at) })
		seen := map[string]bool{}
		var prev act
		for i, a := range sorted {
			term := fmt.Sprintf("%s/%d", a.who, a.token)
			if i > 0 && (a.who != prev.who || a.token != prev.token) {
				if seen[term] {
					out = append(out, fmt.Sprintf("%s: two leaders acted at once: %s acted at %s after %s/%d acted at %s",
						election, term, a.at.Format(time.StampMicro), prev.who, prev.token, prev.at.Format(time.StampMicro)))
				}
				if a.token <= prev.token {
					out = append(out, fmt.Sprintf("%s: fencing token did not grow: %s acted after %s/%d", election, term, prev.who, prev.token))
				}
			}
			seen[term] = true
			prev = a
		}
	}
	return out
}

// check fails t for every violation and logs the count of terms.
func (c *checker) check(t *testing.T) {
	v := c.violations()
	for _, msg := range v {
		t.Error(msg)
	}
	t.Logf("checked %d terms: %d violations", c.transitions(), len(v))
}

// TestCheckerFindsOverlaps: the checker is not blind (this runs without
// CHAOS).
func TestCheckerFindsOverlaps(t *testing.T) {
	at := time.Now()
	ok := newChecker()
	ok.act("e", "a", 1, at)
	ok.act("e", "a", 1, at.Add(time.Millisecond))
	ok.act("e", "b", 2, at.Add(2*time.Millisecond))
	assert.Empty(t, ok.violations())

	overlap := newChecker()
	overlap.act("e", "a", 1, at)
	overlap.act("e", "b", 2, at.Add(time.Millisecond))
	overlap.act("e", "a", 1, at.Add(2*time.Millisecond)) // a acts again: b and a at once
	assert.Len(t, overlap.violations(), 2, "an interleaving and a token going back")

	stale := newChecker()
	stale.act("e", "a", 2, at)
	stale.act("e", "b", 1, at.Add(time.Millisecond))
	assert.Len(t, stale.violations(), 1)

	parsed := newChecker()
	parsed.parse(at, "12:00:00.000 billing p1 started leading, term 3")
	parsed.parse(at, "12:00:00.050 billing p1 acts, term 3")
	assert.Equal(t, 1, parsed.transitions())
	assert.Len(t, parsed.acts["billing"], 1)
}

// line parses the multicomponent example's output.
var line = regexp.MustCompile(`^(\d\d:\d\d:\d\d\.\d{3}) (\S+) (\S+) (started leading|acts), term (\d+)$`)

// parse records a line of the example into c; day anchors its times.
func (c *checker) parse(day time.Time, l string) {
	m := line.FindStringSubmatch(l)
	if m == nil {
		return
	}
	clock, err := time.ParseInLocation("15:04:05.000", m[1], time.Local)
	if err != nil {
		return
	}
	at := time.Date(day.Year(), day.Month(), day.Day(), clock.Hour(), clock.Minute(), clock.Second(), clock.Nanosecond(), time.Local)
	token, _ := strconv.Atoi(m[5])
	if strings.HasPrefix(m[4], "started") {
		c.start(m[2], m[3], int32(token), at)
	} else {
		c.act(m[2], m[3], int32(token), at)
	}
}
