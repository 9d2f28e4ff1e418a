// Package faultproxy is a TCP proxy on loopback for tests, between a
// client and a server, that can cut the network: it forwards bytes until
// told to black-hole them (connections stay open and silent, as across a
// partition), and forwards again when healed. It can also delay every
// chunk of bytes it forwards, as a slow network does.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its address to a target.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	blocked bool
	latency time.Duration
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Block black-holes the network: open connections are dropped, and new
// ones are accepted but get no answer until Heal.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Heal forwards again; connections accepted while blocked are closed, so
// that clients reconnect.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
	for c := range p.conns {
		_ = c.Close()
	}
}

// SetLatency delays each chunk of bytes forwarded from now on, in either
// direction, by d (0: none), so that a request and its answer take at
// least 2d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

func (p *Proxy) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
	return p.blocked
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	_ = c.Close()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.untrack(c)
	if p.track(c) {
		// Blocked: hold the connection silently until it is closed.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(up)
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		p.forward(dst, src)
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
}

// chunk is bytes read at one time, due to be written at due.
type chunk struct {
	b   []byte
	due time.Time
}

// forward copies src to dst until either side ends (closed, reset or
// blocked), delaying each chunk by the latency set when it was read. The
// chunks are pipelined, as on a network with that latency: a chunk's
// delay does not hold up the reading of the next.
func (p *Proxy) forward(dst, src net.Conn) {
	queue := make(chan chunk, 1024)
	written := make(chan struct{})
	go func() {
		defer close(written)
		failed := false
		for c := range queue {
			if failed {
				continue // drain, so that the reader never blocks
			}
			if wait := time.Until(c.due); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(c.b); err != nil {
				failed = true
				_ = src.Close() // end the reader too
			}
		}
	}()
	defer func() {
		close(queue)
		<-written
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.delay())}
		}
		if err != nil {
			return
		}
	}
}
