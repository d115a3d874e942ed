//go:build linux

package transport_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

var line9600 = transport.Line{BaudRate: 9600, DataBits: 8, Parity: transport.ParityEven, StopBits: 1}

// A pty has no RS-485 mode: the kernel refuses TIOCSRS485 (a real ioctl on a real pty), and the open
// fails naming the port and the key instead of polling a line whose direction nobody drives. Without
// rs485 the same pty opens and carries bytes. (No RS-485 UART was at hand to watch RTS toggle.)
func TestOpenSerialRS485OnPTY(t *testing.T) {
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make deps installs socat): %v", err)
	}
	defer pair.Close()

	_, err = transport.OpenSerial(pair.A, line9600, transport.RS485{Enabled: true, RTSOnSend: true})
	require.Error(t, err)
	assert.ErrorIs(t, err, transport.ErrNoRS485)
	assert.ErrorIs(t, err, unix.ENOTTY, "the kernel's answer for a tty without rs485_config")
	assert.Contains(t, err.Error(), "open "+pair.A+": rs485: the port's driver has no RS-485 mode (TIOCSRS485: inappropriate ioctl for device)")

	a, err := transport.OpenSerial(pair.A, line9600, transport.RS485{})
	require.NoError(t, err)
	defer a.Close()
	b, err := transport.OpenSerial(pair.B, line9600, transport.RS485{})
	require.NoError(t, err)
	defer b.Close()
	_, err = a.Write([]byte{0x01, 0x03})
	require.NoError(t, err)
	require.NoError(t, b.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 8)
	n, err := b.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x01, 0x03}, buf[:n])

	file := filepath.Join(t.TempDir(), "ttyX")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = transport.OpenSerial(file, line9600, transport.RS485{})
	assert.ErrorContains(t, err, "open "+file+": not a serial port")
}
