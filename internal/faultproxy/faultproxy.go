// Package faultproxy is a TCP proxy on loopback for tests, between a
// client and a server, that can break the network in the ways a real one
// breaks:
//
//   - Block black-holes it, as across a partition: open connections are
//     dropped and new ones are accepted but never answered.
//   - StallOpen leaves the connections open now half-open, as after a NAT
//     or conntrack entry is lost: they stop forwarding in both directions
//     but stay open, so neither end hears a close or an error, while new
//     connections work. Stall does the same and also holds new connections
//     silent, as Block does.
//   - SetLatency delays every chunk of bytes it forwards, as a slow network
//     does.
//
// Heal ends Block and the stalls: the connections they held are closed, as
// when a dead peer is finally detected, so that clients reconnect.
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
	blocked bool // new connections are held silent (Block)
	stalled bool // new connections are held silent (Stall)
	latency time.Duration
	links   map[*link]struct{}
	wg      sync.WaitGroup
}

// link is one connection through the proxy. Its fields are guarded by the
// proxy's mu.
type link struct {
	client net.Conn
	target net.Conn // nil until dialled, and for held connections
	// held: never forwarded, as new connections under Block or Stall are.
	held bool
	// stall is closed when the link stops forwarding (StallOpen, Stall).
	stall chan struct{}
	// closed is closed with the link's connections; it releases the
	// forwarders a stall parked.
	closed chan struct{}
}

func (l *link) stalled() bool {
	select {
	case <-l.stall:
		return true
	default:
		return false
	}
}

// faulted reports whether a fault has touched the link, so that Heal must
// close it.
func (l *link) faulted() bool { return l.held || l.stalled() }

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, links: map[*link]struct{}{}}
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
	for l := range p.links {
		p.closeLocked(l)
	}
}

// StallOpen makes the connections open now half-open: they stop forwarding
// in both directions and stay open until Heal or Close. Neither end gets a
// close, a reset or an error; the proxy stops reading from them, so a
// writer's bytes go unanswered and, once the socket buffers fill, its
// writes block, as against a peer that no longer acknowledges. New
// connections forward normally, so a client that gives up on a stalled
// connection and dials again gets through.
func (p *Proxy) StallOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stallOpenLocked()
}

// Stall stalls every connection, as StallOpen does, and also holds new ones:
// they are accepted but get no answer until Heal, as under Block.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
	p.stallOpenLocked()
}

func (p *Proxy) stallOpenLocked() {
	for l := range p.links {
		if !l.held && !l.stalled() {
			close(l.stall)
		}
	}
}

// Heal ends Block, StallOpen and Stall: new connections forward again, and
// the connections held or stalled are closed, as when a dead peer is
// finally detected, so that clients reconnect. Connections that were
// forwarding are left alone.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
	p.stalled = false
	for l := range p.links {
		if l.faulted() {
			p.closeLocked(l)
		}
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
	for l := range p.links {
		p.closeLocked(l)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track adds a link for a new client connection; it is held if the proxy
// holds new connections.
func (p *Proxy) track(c net.Conn) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := &link{
		client: c,
		held:   p.blocked || p.stalled,
		stall:  make(chan struct{}),
		closed: make(chan struct{}),
	}
	p.links[l] = struct{}{}
	return l
}

// attach gives l its connection to the target; it reports false, having
// closed up, if l was closed while dialling.
func (p *Proxy) attach(l *link, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.links[l]; !ok {
		_ = up.Close()
		return false
	}
	l.target = up
	return true
}

// untrack closes l, if it is still open.
func (p *Proxy) untrack(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked(l)
}

func (p *Proxy) closeLocked(l *link) {
	if _, ok := p.links[l]; !ok {
		return
	}
	delete(p.links, l)
	_ = l.client.Close()
	if l.target != nil {
		_ = l.target.Close()
	}
	close(l.closed)
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
	l := p.track(c)
	defer p.untrack(l)
	if l.held {
		// Hold the connection silently until it is closed.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.attach(l, up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		p.forward(l, dst, src)
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// Closing the link ends the other direction, even one a stall parked.
	p.untrack(l)
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
// delay does not hold up the reading of the next. Once l stalls, forward
// passes nothing more on, not even the end of src, and reads no more
// until l is closed.
func (p *Proxy) forward(l *link, dst, src net.Conn) {
	queue := make(chan chunk, 1024)
	written := make(chan struct{})
	go func() {
		defer close(written)
		failed := false
		for c := range queue {
			if failed || l.stalled() {
				continue // drain, so that the reader never blocks
			}
			if wait := time.Until(c.due); wait > 0 {
				time.Sleep(wait)
			}
			if l.stalled() {
				continue // stalled while the chunk was in flight
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
		if l.stalled() {
			// Half-open: what was just read, or the error, goes nowhere,
			// and nothing more is read.
			<-l.closed
			return
		}
		if n > 0 {
			queue <- chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.delay())}
		}
		if err != nil {
			return
		}
	}
}
