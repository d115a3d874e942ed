package faultproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// frame is the reply of the test server to request byte id: an MBAP frame of 9 bytes.
func frame(id byte) []byte { return []byte{0, id, 0, 0, 0, 3, 1, 3, id} }

// startServer answers each byte it reads with frame(byte); byte 0xF0+k answers frames k and k+1 in one
// write (two replies in one read of the proxy).
func startServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	conns := make(chan net.Conn, 16)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() {
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					out := frame(b[0])
					if b[0] >= 0xF0 {
						k := b[0] - 0xF0
						out = append(frame(k), frame(k+1)...)
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		close(conns)
		for c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func startProxy(t *testing.T, opts ...Option) (*Proxy, net.Conn) {
	t.Helper()
	p, err := New(startServer(t), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return p, c
}

// ask sends request id and reads n bytes.
func ask(t *testing.T, c net.Conn, id byte, n int) []byte {
	t.Helper()
	if id != 0 {
		_, err := c.Write([]byte{id})
		require.NoError(t, err)
	}
	return read(t, c, n)
}

func read(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	require.NoError(t, err)
	return b
}

// nothing asserts that no byte arrives within d (the proxy holds it for much longer).
func nothing(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	n, err := c.Read(make([]byte, 64))
	require.Zero(t, n)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestForwardsUntouched(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	assert.Equal(t, frame(1), ask(t, c, 1, 9))
	assert.Equal(t, cat(frame(2), frame(3)), ask(t, c, 0xF2, 18))
	s := p.Stats()
	assert.Equal(t, 1, s.Accepted)
	assert.Equal(t, 3, s.Replies)
	assert.Zero(t, s.Applied)
}

func TestSplitDelaysTheRest(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Split(7, time.Second))
	assert.Equal(t, frame(1)[:7], ask(t, c, 1, 7))
	nothing(t, c, 100*time.Millisecond)
	// A later reply queues behind the delayed rest, as on a stream.
	_, err := c.Write([]byte{2})
	require.NoError(t, err)
	assert.Equal(t, cat(frame(1)[7:], frame(2)), read(t, c, 2+9))
	s := p.Stats()
	assert.Equal(t, 1, s.Applied)
	assert.Zero(t, s.Pending)
	assert.False(t, s.LastEnd.IsZero())
}

func TestTruncate(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Truncate(4))
	assert.Equal(t, frame(1)[:4], ask(t, c, 1, 4))
	assert.Equal(t, frame(2), ask(t, c, 2, 9), "the next reply follows the cut one directly")
}

func TestDuplicate(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Duplicate())
	assert.Equal(t, cat(frame(1), frame(1)), ask(t, c, 1, 18))
	assert.Equal(t, frame(2), ask(t, c, 2, 9))
}

func TestReorder(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Reorder())
	_, err := c.Write([]byte{1})
	require.NoError(t, err)
	nothing(t, c, 100*time.Millisecond)
	assert.Equal(t, cat(frame(2), frame(1)), ask(t, c, 2, 18))
}

func TestGarbage(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Garbage(0, []byte{0xAA, 0xBB}), Garbage(3, []byte{0xCC}))
	assert.Equal(t, cat([]byte{0xAA, 0xBB}, frame(1)), ask(t, c, 1, 11))
	f := frame(2)
	assert.Equal(t, cat(f[:3], []byte{0xCC}, f[3:]), ask(t, c, 2, 10))
	assert.Equal(t, 2, p.Stats().Applied)
}

func TestResetSendsRST(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Reset())
	_, err := c.Write([]byte{1})
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 16))
	require.True(t, errors.Is(err, syscall.ECONNRESET), "want a reset, got %v", err)
	require.Eventually(t, func() bool { return p.Stats().Open == 0 }, 5*time.Second, time.Millisecond)

	// A new connection works.
	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c2.Close()
	assert.Equal(t, frame(2), ask(t, c2, 2, 9))
}

func TestResetAll(t *testing.T) {
	p, c := startProxy(t)
	assert.Equal(t, frame(1), ask(t, c, 1, 9))
	p.ResetAll()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := c.Read(make([]byte, 16))
	require.True(t, errors.Is(err, syscall.ECONNRESET), "want a reset, got %v", err)
}

func TestStallAndResume(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Stall()
	_, err := c.Write([]byte{1})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Stats().Replies == 1 }, 5*time.Second, time.Millisecond)
	nothing(t, c, 100*time.Millisecond)
	p.Resume()
	assert.Equal(t, frame(1), read(t, c, 9))
	assert.Equal(t, frame(2), ask(t, c, 2, 9))
}

// With a framer, a fault hits one frame even when the server sent two in one write; without, the
// whole read is one reply.
func TestFramerCutsReplies(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(Truncate(2))
	assert.Equal(t, cat(frame(1)[:2], frame(2)), ask(t, c, 0xF1, 11))

	p2, c2 := startProxy(t)
	p2.Inject(Truncate(11))
	assert.Equal(t, cat(frame(1), frame(2)[:2]), ask(t, c2, 0xF1, 11))
	assert.Equal(t, frame(3), ask(t, c2, 3, 9))
}

func TestPolicy(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	n := 0
	p.SetPolicy(func() Fault {
		n++
		if n%2 == 0 {
			return Truncate(1)
		}
		return Fault{}
	})
	p.Inject(Duplicate()) // injected faults come first
	assert.Equal(t, cat(frame(1), frame(1)), ask(t, c, 1, 18))
	assert.Equal(t, frame(2), ask(t, c, 2, 9))
	assert.Equal(t, frame(3)[:1], ask(t, c, 3, 1))
	assert.Equal(t, frame(4), ask(t, c, 4, 9))
	assert.Equal(t, 2, p.Stats().Applied)
}

func TestFramers(t *testing.T) {
	assert.Equal(t, 0, MBAPFrames(frame(1)[:6]))
	assert.Equal(t, 0, MBAPFrames(frame(1)[:8]))
	assert.Equal(t, 9, MBAPFrames(cat(frame(1), frame(2))))
	assert.Equal(t, -1, MBAPFrames([]byte{0, 1, 0, 0, 0xFF, 0xFF, 1}))

	read := []byte{1, 3, 4, 0, 1, 0, 2, 0xAA, 0xBB} // unit 1, fc 3, 4 bytes, CRC
	assert.Equal(t, 9, RTUFrames(append(read, 7)))
	assert.Equal(t, 0, RTUFrames(read[:8]))
	assert.Equal(t, 5, RTUFrames([]byte{1, 0x83, 2, 0, 0}))
	assert.Equal(t, 8, RTUFrames([]byte{1, 6, 0, 1, 0, 2, 0, 0}))
	assert.Equal(t, -1, RTUFrames([]byte{1, 0x2B}))

	dlt := []byte{0xFE, 0xFE, 0x68, 1, 2, 3, 4, 5, 6, 0x68, 0x91, 2, 0x33, 0x34, 0xCC, 0x16}
	assert.Equal(t, len(dlt), DLT645Frames(append(dlt, 0xFE)))
	assert.Equal(t, 0, DLT645Frames(dlt[:len(dlt)-1]))
	assert.Equal(t, 0, DLT645Frames([]byte{0xFE}))
	assert.Equal(t, -1, DLT645Frames([]byte{0x00, 0x68}))
}

func TestWhenPicksItsReply(t *testing.T) {
	p, c := startProxy(t, WithFramer(MBAPFrames))
	p.Inject(When(func(b []byte) bool { return b[8] == 3 }, Truncate(2)), Duplicate())
	assert.Equal(t, frame(1), ask(t, c, 1, 9))
	assert.Equal(t, frame(2), ask(t, c, 2, 9))
	assert.Equal(t, 2, p.Stats().Pending)
	assert.Equal(t, frame(3)[:2], ask(t, c, 3, 2))
	assert.Equal(t, cat(frame(4), frame(4)), ask(t, c, 4, 18))
	assert.Equal(t, 2, p.Stats().Applied)
}
