package dlt645

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// meterEnd answers on the far end of a pipe with the frames reply returns for each request.
func meterEnd(t *testing.T, conn net.Conn, reply func(req Frame) [][]byte) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var s Splitter
		buf := make([]byte, 256)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			_, _ = s.Write(buf[:n])
			for {
				f, ok := s.Next()
				if !ok {
					break
				}
				for _, b := range reply(f) {
					if _, err := conn.Write(b); err != nil {
						return
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
}

// A late answer to an earlier read (another identifier of the same meter) is skipped.
func TestClientSkipsLateReplies(t *testing.T) {
	a, b := net.Pipe()
	meter := Address{1}
	meterEnd(t, b, func(req Frame) [][]byte {
		di, _ := readDI(V2007, req.Data)
		late, _ := ReadResponse(V2007, meter, 0x02010100, []byte{0x00, 0x22}, false).Encode(0)
		good, _ := ReadResponse(V2007, meter, di, []byte{0x01, 0x50}, false).Encode(0)
		return [][]byte{late, good}
	})
	c := NewClient(a)
	c.Gap = 0
	r, err := c.Read(context.Background(), V2007, meter, 0x02800002)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x01, 0x50}, r.Value)
	assert.Equal(t, uint64(1), c.Counts().Skipped)
}

// A cancelled context ends a wait for an answer at once.
func TestClientCancel(t *testing.T) {
	a, b := net.Pipe()
	asked := make(chan struct{}, 1)
	meterEnd(t, b, func(Frame) [][]byte {
		asked <- struct{}{}
		return nil
	})
	c := NewClient(a)
	c.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx, V2007, Address{1}, 0x00010000)
		done <- err
	}()
	<-asked
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not end on cancel")
	}
}

// Only frames with a bad checksum came back: that is what the error says.
func TestClientChecksumError(t *testing.T) {
	a, b := net.Pipe()
	meterEnd(t, b, func(req Frame) [][]byte {
		f, _ := ReadResponse(V2007, req.Address, 0x00010000, []byte{1, 2, 3, 4}, false).Encode(0)
		f[len(f)-2]++ // checksum
		return [][]byte{f}
	})
	c := NewClient(a)
	c.Timeout = 50 * time.Millisecond
	_, err := c.Read(context.Background(), V2007, Address{1}, 0x00010000)
	assert.ErrorIs(t, err, ErrChecksum)
	assert.Equal(t, uint64(1), c.Counts().Rejected)
}
