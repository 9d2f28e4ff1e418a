package faultproxy_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenure/tenure/internal/faultproxy"
)

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
