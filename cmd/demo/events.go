package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// events is the demo's log of transitions and faults: printed at once in
// plain mode, kept for the live view otherwise.
type events struct {
	mu     sync.Mutex
	out    io.Writer // nil: keep only
	recent []string
	keep   int
}

func (e *events) add(format string, args ...any) {
	line := time.Now().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.out != nil {
		fmt.Fprintln(e.out, line)
	}
	e.recent = append(e.recent, line)
	if len(e.recent) > e.keep {
		e.recent = e.recent[len(e.recent)-e.keep:]
	}
}

func (e *events) last() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.recent...)
}
