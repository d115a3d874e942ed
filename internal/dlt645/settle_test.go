package dlt645

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lateMeter answers every read over TCP with its sequence number as the value; the first answer comes
// late by delay.
func lateMeter(t *testing.T, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var s Splitter
		buf := make([]byte, 256)
		n := byte(0)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			_, _ = s.Write(buf[:k])
			for {
				f, ok := s.Next()
				if !ok {
					break
				}
				di, _ := readDI(V2007, f.Data)
				n++
				out, _ := ReadResponse(V2007, f.Address, di, []byte{n}, false).Encode(0)
				if n == 1 {
					time.AfterFunc(delay, func() { _, _ = c.Write(out) })
					continue
				}
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// A meter answers just after the timeout. The retry of the same read must not take that late answer
// for its own: the line is waited out first. Without it every later read of the identifier returns
// the answer to the read before (one poll behind, for ever).
func TestClientSettlesAfterTimeout(t *testing.T) {
	const timeout, gap = 100 * time.Millisecond, 100 * time.Millisecond
	conn, err := net.Dial("tcp", lateMeter(t, timeout+gap/3))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c := NewClient(conn)
	c.Timeout, c.Gap, c.Preamble = timeout, gap, 0
	ctx := context.Background()

	_, err = c.Read(ctx, V2007, Address{1}, 0x00010000)
	require.ErrorIs(t, err, ErrTimeout)
	for want := byte(2); want <= 4; want++ {
		r, err := c.Read(ctx, V2007, Address{1}, 0x00010000)
		require.NoError(t, err)
		assert.Equal(t, []byte{want}, r.Value, "answer %d is the answer to read %d", r.Value[0], want)
	}
	n := c.Counts()
	assert.Equal(t, uint64(1), n.Settled)
	assert.Positive(t, n.Discarded, "the late answer was discarded")
	assert.Zero(t, n.Skipped)
}
