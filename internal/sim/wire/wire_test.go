//go:build linux

package wire

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The wire is never faster than the baud rate: a request is read off it no sooner than its frame
// time after it was sent, a reply reaches the other end no sooner than its own, and one that is sent
// while a request is still on the wire waits for it. (Lower bounds only: pacing, not speed.)
func TestLinePaces(t *testing.T) {
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make deps installs socat): %v", err)
	}
	defer pair.Close()
	line := transport.Line{BaudRate: 2400, DataBits: 8, Parity: transport.ParityEven, StopBits: 1}
	ct := line.CharTime() // 4.58ms
	devEnd, err := transport.OpenSerial(pair.A, line, transport.RS485{})
	require.NoError(t, err)
	host, err := transport.OpenSerial(pair.B, line, transport.RS485{})
	require.NoError(t, err)
	defer host.Close()
	w := NewLine(devEnd, ct)
	defer func() { _ = devEnd.Close(); w.Close() }()

	req := []byte{1, 3, 0, 0, 0, 2, 0xC4, 0x0B}
	sent := time.Now()
	_, err = host.Write(req)
	require.NoError(t, err)
	var got []byte
	require.NoError(t, w.SetReadDeadline(time.Now().Add(5*time.Second)))
	for len(got) < len(req) {
		buf := make([]byte, 16)
		n, err := w.Read(buf)
		require.NoError(t, err)
		if len(got) == 0 {
			assert.GreaterOrEqual(t, time.Since(sent), ct, "the first byte is off the wire one character after it was sent")
		}
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, req, got)
	assert.GreaterOrEqual(t, time.Since(sent), time.Duration(len(req))*ct, "the request occupies the wire for its frame time")

	// A deadline ends a read with nothing on the wire.
	require.NoError(t, w.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	_, err = w.Read(make([]byte, 4))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	reply := []byte{1, 3, 4, 0x43, 0x66, 0x80, 0x00, 0xAA, 0xBB}
	start := time.Now()
	_, err = w.Write(reply)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Duration(len(reply))*ct, "the reply occupies the wire for its frame time")
	require.NoError(t, host.SetReadDeadline(time.Now().Add(5*time.Second)))
	got = got[:0]
	for len(got) < len(reply) {
		buf := make([]byte, 16)
		n, err := host.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, reply, got)
	assert.Equal(t, Stats{Bytes: len(req) + len(reply), Busy: time.Duration(len(req)+len(reply)) * ct}, w.Stats())

	// Sent while a request is still on the wire, a reply waits for it.
	_, err = host.Write(req)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return w.Stats().Bytes == 2*len(req)+len(reply) }, 5*time.Second, time.Millisecond)
	start = time.Now()
	_, err = w.Write(reply[:1])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Duration(len(req))*ct/2, "the request's frame time first")
}
