package election

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
)

// callbackGoroutines tracks the goroutines running one of the election's
// callbacks, so that Stop can tell that it was called from one: Run waits
// for its callbacks, so Stop must not wait for Run there.
type callbackGoroutines struct {
	mu  sync.Mutex
	ids map[uint64]int // goroutine id → callbacks it is in
}

// enter records that the calling goroutine runs a callback until the
// returned function is called.
func (c *callbackGoroutines) enter() (leave func()) {
	id := goroutineID()
	c.mu.Lock()
	if c.ids == nil {
		c.ids = map[uint64]int{}
	}
	c.ids[id]++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ids[id]--; c.ids[id] == 0 {
			delete(c.ids, id)
		}
	}
}

// current says whether the calling goroutine is running a callback.
func (c *callbackGoroutines) current() bool {
	id := goroutineID()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id] > 0
}

// goroutineID returns the calling goroutine's id, read from the header of
// its stack trace ("goroutine 18 [running]:"). Go does not expose it on
// purpose, to keep goroutine-local state out of programs; this is used only
// to recognise a call from the election's own callbacks, which neither a
// context nor a parameter can tell, since OnNewLeader and OnStoppedLeading
// take none. It returns 0 if the header cannot be read.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
