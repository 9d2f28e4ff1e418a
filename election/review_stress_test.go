package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenure/tenure/locks"
)

// lossyLock is a MemoryLock (watch, annotations, whole seconds kept) whose
// writes sometimes land with their answer lost, and sometimes are lost
// before they land.
type lossyLock struct {
	*locks.MemoryLock
	on atomic.Bool
}

var errLost = errors.New("lost")

func (l *lossyLock) fate() (drop, lose bool) {
	if !l.on.Load() {
		return false, false
	}
	n := rand.IntN(100)
	return n < 4, n >= 4 && n < 10
}

func (l *lossyLock) Update(ctx context.Context, version string, r locks.Record) (locks.Observed, error) {
	drop, lose := l.fate()
	if drop {
		return locks.Observed{}, errLost
	}
	obs, err := l.MemoryLock.Update(ctx, version, r)
	if err == nil && lose {
		return locks.Observed{}, errLost
	}
	return obs, err
}

func (l *lossyLock) Annotate(ctx context.Context, version string, r *locks.Record, set map[string]string) (locks.Observed, error) {
	drop, lose := l.fate()
	if drop {
		return locks.Observed{}, errLost
	}
	obs, err := l.MemoryLock.Annotate(ctx, version, r, set)
	if err == nil && lose {
		return locks.Observed{}, errLost
	}
	return obs, err
}

// actBook checks, at every act of leader work, that no other term is valid
// at that moment, and that each term's token exceeds every token before.
type actBook struct {
	mu       sync.Mutex
	live     map[int]context.Context // by process
	maxToken int32
	terms    int
	bad      []string
}

func (b *actBook) act(proc int, who string, ctx context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if Valid(ctx) != nil {
		return false
	}
	for p, other := range b.live {
		if p != proc && Valid(other) == nil {
			t1, _ := TermFromContext(ctx)
			t2, _ := TermFromContext(other)
			b.bad = append(b.bad, fmt.Sprintf("%s#%d (term %d) acts while %s#%d (term %d) is valid", who, proc, t1.FencingToken, t2.Identity, p, t2.FencingToken))
		}
	}
	return true
}

// TestHandOverStress: candidates a, b, b (one identity twice), c on one lossy
// whole-second lock, with a mover asking random leaders to move (to live
// candidates, to the leader itself, to a gone one), every write of which
// may be dropped or its answer lost. Work winds down for up to 300 ms,
// acting while Valid. Fails on two valid terms at one act, or a term whose
// token does not exceed every earlier term's.
func TestHandOverStress(t *testing.T) {
	d := 8 * time.Second
	if s := os.Getenv("HANDOVER_STRESS"); s != "" {
		d, _ = time.ParseDuration(s)
	}
	mem := locks.NewMemoryLock("l")
	_, _ = mem.Create(context.Background(), locks.Record{})
	lock := &lossyLock{MemoryLock: mem}
	book := &actBook{live: map[int]context.Context{}}
	ids := []string{"a", "b", "b", "c"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for proc, id := range ids {
		e, err := New(Config{
			Lock: lock, Identity: id, Name: "stress",
			LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnStartedLeading: func(wctx context.Context) {
				term, _ := TermFromContext(wctx)
				book.mu.Lock()
				if Valid(wctx) == nil {
					if term.FencingToken <= book.maxToken && book.terms > 0 {
						book.bad = append(book.bad, fmt.Sprintf("%s#%d starts term %d after term %d", id, proc, term.FencingToken, book.maxToken))
					}
					book.maxToken = max(book.maxToken, term.FencingToken)
					book.terms++
				}
				book.live[proc] = wctx
				book.mu.Unlock()
				defer func() {
					book.mu.Lock()
					delete(book.live, proc)
					book.mu.Unlock()
				}()
				for wctx.Err() == nil {
					book.act(proc, id, wctx)
					time.Sleep(2 * time.Millisecond)
				}
				windDown := time.Now().Add(time.Duration(rand.IntN(300)) * time.Millisecond)
				for time.Now().Before(windDown) && book.act(proc, id, wctx) {
					time.Sleep(2 * time.Millisecond)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = e.Run(ctx) })
	}
	lock.on.Store(true)
	wg.Go(func() {
		targets := []string{"a", "b", "c", "gone", ""}
		for ctx.Err() == nil {
			time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
			obs, err := mem.Get(context.Background())
			if err != nil {
				continue
			}
			to := targets[rand.IntN(len(targets))]
			if rand.IntN(10) != 0 && to == "gone" {
				to = "c"
			}
			_, _ = mem.Annotate(context.Background(), obs.Version, nil, map[string]string{locks.PreferredHolderAnnotation: to})
		}
	})
	time.Sleep(d)
	cancel()
	wg.Wait()
	book.mu.Lock()
	defer book.mu.Unlock()
	t.Logf("%d terms, last token %d", book.terms, book.maxToken)
	for i, s := range book.bad {
		if i < 20 {
			t.Error(s)
		}
	}
}
