package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
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

// handedOver is the message of the log record an election writes when it
// has handed its lock over to another replica (see package election): a
// placement move, or a graceful stop that placement asked to hand over.
const handedOver = "handed the lock over"

// handOverLog passes tenure's log records on and adds an event for each
// hand-over of a demo component: "<replica> handed <component> over →
// <replica>". It is the one record made whatever asked for the move and
// however the term ended (the stop of a replica can end its work before
// the election sees placement's request, which the release then honours).
type handOverLog struct {
	next       slog.Handler
	attrs      []slog.Attr // from WithAttrs
	ev         *events
	components map[string]bool
}

func newHandOverLog(next slog.Handler, ev *events, components []string) handOverLog {
	h := handOverLog{next: next, ev: ev, components: map[string]bool{}}
	for _, c := range components {
		h.components[c] = true
	}
	return h
}

func (h handOverLog) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h handOverLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == handedOver {
		attr := map[string]string{}
		for _, a := range h.attrs {
			attr[a.Key] = a.Value.String()
		}
		r.Attrs(func(a slog.Attr) bool {
			attr[a.Key] = a.Value.String()
			return true
		})
		if h.components[attr["component"]] && attr["identity"] != "" && attr["to"] != "" {
			h.ev.add("%s handed %s over → %s", attr["identity"], attr["component"], attr["to"])
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h handOverLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clip(h.attrs), attrs...)
	h.next = h.next.WithAttrs(attrs)
	return h
}

func (h handOverLog) WithGroup(name string) slog.Handler {
	h.next = h.next.WithGroup(name)
	return h
}
