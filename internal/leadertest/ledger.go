// Package leadertest records when candidates run leader work, so that tests
// can check that no two terms of one election ever overlap.
package leadertest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Interval is one stretch of leader work by one candidate.
type Interval struct {
	Who        string
	Token      int32 // fencing token; negative when unknown
	Start, End time.Time
}

// Ledger records the leader work intervals of one election. It is safe
// for concurrent use.
type Ledger struct {
	mu   sync.Mutex
	done []Interval
	open map[string]Interval
}

// New returns an empty Ledger.
func New() *Ledger { return &Ledger{open: map[string]Interval{}} }

// Begin records that who started leader work with token.
func (l *Ledger) Begin(who string, token int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open[who] = Interval{Who: who, Token: token, Start: time.Now()}
}

// End records that who's leader work returned.
func (l *Ledger) End(who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	iv, ok := l.open[who]
	if !ok {
		return
	}
	delete(l.open, who)
	iv.End = time.Now()
	l.done = append(l.done, iv)
}

// Leaders returns who is running leader work now.
func (l *Ledger) Leaders() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var who []string
	for w := range l.open {
		who = append(who, w)
	}
	slices.Sort(who)
	return who
}

// Leader waits up to 20 seconds for exactly one candidate to run leader
// work and returns it.
func (l *Ledger) Leader(t testing.TB) string {
	t.Helper()
	var who string
	require.Eventually(t, func() bool {
		ls := l.Leaders()
		if len(ls) == 1 {
			who = ls[0]
			return true
		}
		return false
	}, 20*time.Second, 5*time.Millisecond, "one leader")
	return who
}

// Ended is how many intervals have ended.
func (l *Ledger) Ended() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.done)
}

// Started is when who's open interval began (zero if none is open).
func (l *Ledger) Started(who string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[who].Start
}

// Token is the fencing token of who's open interval (-1 if none is
// open).
func (l *Ledger) Token(who string) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if iv, ok := l.open[who]; ok {
		return iv.Token
	}
	return -1
}

// Last is the interval that ended last.
func (l *Ledger) Last() Interval {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done[len(l.done)-1]
}

// Intervals returns every term so far, by start; a term still running
// ends now.
func (l *Ledger) Intervals() []Interval {
	l.mu.Lock()
	all := append([]Interval(nil), l.done...)
	for _, iv := range l.open {
		iv.End = time.Now()
		all = append(all, iv)
	}
	l.mu.Unlock()
	slices.SortFunc(all, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	return all
}

// Check asserts that no two intervals overlap and that fencing tokens
// grow with each term (where both are known).
func (l *Ledger) Check(t testing.TB) {
	t.Helper()
	all := l.Intervals()
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		assert.False(t, cur.Start.Before(prev.End), "%s led from %v while %s led until %v", cur.Who, cur.Start.Format(time.StampMicro), prev.Who, prev.End.Format(time.StampMicro))
		if cur.Token >= 0 && prev.Token >= 0 {
			assert.Greater(t, cur.Token, prev.Token, "fencing tokens must grow")
		}
	}
}

// Act is one piece of leader work within a term, such as a reconcile.
type Act struct {
	Who        string
	Token      int32 // the term's fencing token
	What       string
	Start, End time.Time // End is zero while it runs
}

// CheckActs asserts that each term's acts are one candidate's and that
// no act of a term runs after an act of a later term has started. An act
// still running ends at stopped[Who] if its candidate was stopped (a
// process killed), else now.
func CheckActs(t testing.TB, acts []Act, stopped map[string]time.Time) {
	t.Helper()
	whoOf := map[int32]string{}
	for _, a := range acts {
		if w, ok := whoOf[a.Token]; ok && w != a.Who {
			t.Errorf("term %d acted by %s and %s", a.Token, w, a.Who)
		}
		whoOf[a.Token] = a.Who
		end := a.End
		if end.IsZero() {
			if end = stopped[a.Who]; end.IsZero() {
				end = time.Now()
			}
		}
		for _, b := range acts {
			if a.Token < b.Token && b.Start.Before(end) {
				t.Errorf("%s/%d acted on %s until %s, after %s/%d began on %s at %s",
					a.Who, a.Token, a.What, end.Format("15:04:05.000"), b.Who, b.Token, b.What, b.Start.Format("15:04:05.000"))
			}
		}
	}
}
