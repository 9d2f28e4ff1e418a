package faultproxy_test

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tenure/tenure/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves lines back on a loopback port until the test ends.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(l)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through a new connection to p and reads it back,
// waiting at most timeout; it reports how long that took.
func roundTrip(p *faultproxy.Proxy, timeout time.Duration) (time.Duration, error) {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return time.Since(start), err
}

func TestBlockHealAndLatency(t *testing.T) {
	p, err := faultproxy.Start(echo(t))
	require.NoError(t, err)
	defer p.Close()

	_, err = roundTrip(p, 2*time.Second)
	require.NoError(t, err, "forwards")

	p.Block()
	_, err = roundTrip(p, 200*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "blocked: no answer")
	assert.True(t, ne.Timeout(), "a black hole times out rather than refusing: %v", err)

	p.Heal()
	_, err = roundTrip(p, 2*time.Second)
	require.NoError(t, err, "forwards again once healed")

	p.SetLatency(100 * time.Millisecond)
	took, err := roundTrip(p, 2*time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond, "a round trip takes the latency each way")
	p.SetLatency(0)
}

// TestLatencyIsPipelined: latency delays each chunk without holding up the
// next, as a long network does; it does not cut the throughput.
func TestLatencyIsPipelined(t *testing.T) {
	p, err := faultproxy.Start(echo(t))
	require.NoError(t, err)
	defer p.Close()
	p.SetLatency(200 * time.Millisecond)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	start := time.Now()
	const n = 20
	for range n {
		_, err := c.Write([]byte("ping\n"))
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond) // separate chunks
	}
	for range n {
		_, err := r.ReadString('\n')
		require.NoError(t, err)
	}
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 400*time.Millisecond, "one round trip of latency")
	assert.Less(t, took, n*400*time.Millisecond/2, "not one round trip per chunk (%v)", took)
}

// conn is a client connection through a proxy.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *faultproxy.Proxy) *conn {
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &conn{Conn: c, r: bufio.NewReader(c)}
}

// ping sends a line on c and reads it back, waiting at most timeout.
func (c *conn) ping(timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := c.r.ReadString('\n')
	return err
}

// requireSilent checks that c accepts a write and then gets nothing back,
// neither bytes nor an end nor an error, for 300ms: a half-open connection.
func requireSilent(t *testing.T, c *conn, msg string) {
	t.Helper()
	err := c.ping(300 * time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "%s: no answer", msg)
	require.True(t, ne.Timeout(), "%s: silent, not closed or reset: %v", msg, err)
}

// requireClosed checks that the proxy has closed c: a read ends at once
// with EOF or a reset, not a timeout.
func requireClosed(t *testing.T, c *conn, msg string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.r.ReadByte()
	require.Error(t, err, msg)
	var ne net.Error
	if errors.As(err, &ne) {
		require.False(t, ne.Timeout(), "%s: closed, not silent: %v", msg, err)
	}
}

// proxyWithConnection starts a proxy in front of an echo server, closed
// when t ends, and a connection through it that forwards.
func proxyWithConnection(t *testing.T) (*faultproxy.Proxy, *conn) {
	t.Helper()
	p, err := faultproxy.Start(echo(t))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	c := dial(t, p)
	require.NoError(t, c.ping(2*time.Second), "forwards")
	return p, c
}

// TestStallOpenHangsOnlyTheOpenConnections: StallOpen leaves the
// connections open at the time half-open, while new ones work; Heal closes
// the stalled ones and leaves the new ones alone.
func TestStallOpenHangsOnlyTheOpenConnections(t *testing.T) {
	p, old := proxyWithConnection(t)

	p.StallOpen()
	requireSilent(t, old, "stalled")
	fresh := dial(t, p)
	require.NoError(t, fresh.ping(2*time.Second), "a new connection forwards")
	requireSilent(t, old, "still stalled")

	p.Heal()
	requireClosed(t, old, "healed: the stalled connection is dropped")
	require.NoError(t, fresh.ping(2*time.Second), "healed: a working connection is left alone")
	_, err := roundTrip(p, 2*time.Second)
	require.NoError(t, err, "healed: new connections forward")
}

// TestStallHangsNewConnectionsToo: Stall leaves the open connections
// half-open and holds new ones silent, until Heal.
func TestStallHangsNewConnectionsToo(t *testing.T) {
	p, old := proxyWithConnection(t)

	p.Stall()
	requireSilent(t, old, "stalled")
	fresh := dial(t, p)
	requireSilent(t, fresh, "a new connection is held")

	p.Heal()
	requireClosed(t, old, "healed: the stalled connection is dropped")
	requireClosed(t, fresh, "healed: the held connection is dropped")
	_, err := roundTrip(p, 2*time.Second)
	require.NoError(t, err, "healed: new connections forward")
}

// TestStallHidesTheServerClosing: a stalled connection passes nothing on,
// not even the server's end of it, so the client still sees an open,
// silent connection.
func TestStallHidesTheServerClosing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	p, err := faultproxy.Start(ln.Addr().String())
	require.NoError(t, err)
	defer p.Close()
	c := dial(t, p)
	srv, err := ln.Accept()
	require.NoError(t, err)

	p.StallOpen()
	require.NoError(t, srv.Close())
	requireSilent(t, c, "the server's close is not passed on")

	p.Heal()
	requireClosed(t, c, "healed: the stalled connection is dropped")
}
