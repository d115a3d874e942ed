//go:build linux

package serialbus

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// Two users of one port with different rs485 settings: the second join fails naming both. The port
// owner applies rs485 when it opens the port; a pty has no RS-485 mode, so the open fails naming the
// user (receiver and connection) and the port.
func TestRS485(t *testing.T) {
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make deps installs socat): %v", err)
	}
	defer pair.Close()
	rs := line8N1
	rs.RS485 = transport.RS485{Enabled: true, RTSOnSend: true, DelayAfterSend: 2 * time.Millisecond}

	r := NewRegistry()
	a, err := r.Join(User{Name: "receiver modbus connections[0]", Serial: true, Address: pair.B, Line: rs}, clock.Real{})
	require.NoError(t, err)
	defer a.Leave()
	_, err = r.Join(User{Name: "receiver dlt645 buses[0]", Serial: true, Address: pair.B, Line: line8N1}, clock.Real{})
	require.EqualError(t, err, "serial port "+pair.B+": receiver modbus connections[0] uses rs485 rts_on_send=true rts_after_send=false delay_before_send=0s delay_after_send=2ms rx_during_tx=false but receiver dlt645 buses[0] uses rs485 off: the users of one port must use the same rs485 settings")

	_, err = a.Open(context.Background(), time.Second)
	require.ErrorIs(t, err, transport.ErrNoRS485)
	require.EqualError(t, err, "receiver modbus connections[0]: open "+pair.B+": rs485: the port's driver has no RS-485 mode (TIOCSRS485: inappropriate ioctl for device): use a port whose driver has it, or remove rs485 (an adapter that switches direction itself needs none)")
}
