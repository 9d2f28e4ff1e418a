// Package chaos_test puts elections under faults on a real API server and
// checks that no two leaders of one election ever act at once, that
// fencing tokens only grow, and that a leader exists soon after each fault
// heals.
//
// It is opt-in: TENURE_CHAOS=short (what .ci/run runs, a few minutes) or
// TENURE_CHAOS=long (TENURE_CHAOS_DURATION, default 30m); without it the
// tests skip.
package chaos_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tenure/tenure/internal/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// duration is how long each chaos test runs, or skips the test.
func duration(t *testing.T, short time.Duration) time.Duration {
	switch os.Getenv("TENURE_CHAOS") {
	case "short":
		return short
	case "long":
		if d, err := time.ParseDuration(os.Getenv("TENURE_CHAOS_DURATION")); err == nil {
			return d
		}
		return 30 * time.Minute
	}
	t.Skip("chaos tests are opt-in: TENURE_CHAOS=short or long")
	return 0
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

// lastStart is when the last term of election began.
func (c *checker) lastStart(election string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.starts[election]
	if len(s) == 0 {
		return time.Time{}
	}
	return s[len(s)-1].at
}

// check asserts, per election, that the acts of each term form one block
// in time that no other term's acts interleave with (no two leaders act
// at once), and that tokens grow from block to block.
func (c *checker) check(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	violations := 0
	for election, acts := range c.acts {
		sorted := slices.Clone(acts)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].at.Before(sorted[j].at) })
		seen := map[string]bool{}
		var prev act
		for i, a := range sorted {
			term := fmt.Sprintf("%s/%d", a.who, a.token)
			if i > 0 && (a.who != prev.who || a.token != prev.token) {
				if seen[term] {
					violations++
					assert.Failf(t, "two leaders acted at once", "%s: %s acted at %s after %s/%d acted at %s",
						election, term, a.at.Format(time.StampMicro), prev.who, prev.token, prev.at.Format(time.StampMicro))
				}
				if a.token <= prev.token {
					violations++
					assert.Failf(t, "fencing token did not grow", "%s: %s acted after %s/%d", election, term, prev.who, prev.token)
				}
			}
			seen[term] = true
			prev = a
		}
	}
	t.Logf("checked %d elections: %d terms, %d violations", len(c.acts), c.transitions(), violations)
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
