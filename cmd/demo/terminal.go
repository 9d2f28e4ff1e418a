package main

import (
	"os"

	"golang.org/x/term"
)

// terminal is standard input in raw mode, for single-key commands.
type terminal struct {
	f     *os.File
	state *term.State
}

func rawTerminal(f *os.File) (*terminal, error) {
	if !term.IsTerminal(int(f.Fd())) {
		return nil, os.ErrInvalid
	}
	st, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return &terminal{f: f, state: st}, nil
}

func (t *terminal) restore() { _ = term.Restore(int(t.f.Fd()), t.state) }

// keys calls fn with each key pressed until reading fails.
func (t *terminal) keys(fn func(byte)) {
	buf := make([]byte, 1)
	for {
		if _, err := t.f.Read(buf); err != nil {
			return
		}
		fn(buf[0])
	}
}
