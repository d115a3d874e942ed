package dlt645receiver

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// A bus accepts the same rs485 block as a modbus connection (checked once, in internal/transport):
// on a serial port only, and it reaches the port's owner with the line.
func TestRS485Config(t *testing.T) {
	m := []MeterConfig{{ID: "a", Address: "1", MeterKeys: MeterKeys{Identifiers: []IdentifierConfig{{DI: "02010100"}}}}}
	cfg := createDefaultConfig().(*Config)
	cfg.Buses = []BusConfig{{Endpoint: "tcp://10.0.0.1:4001", LineConfig: transport.LineConfig{RS485: &transport.RS485Config{Enabled: true}}, Meters: m}}
	require.EqualError(t, cfg.Validate(), "buses[0].rs485: applies only to a local serial port (the serial server or DTU drives its own RS-485 line)")

	if runtime.GOOS != "linux" {
		return
	}
	cfg.Buses = []BusConfig{{Endpoint: "serial:///dev/ttyS1", LineConfig: transport.LineConfig{RS485: &transport.RS485Config{Enabled: true, DelayBeforeSend: 2 * time.Millisecond}}, Meters: m}}
	specs, err := cfg.resolve()
	require.NoError(t, err)
	u := (&bus{spec: &specs[0]}).user("dlt645", "buses[0]")
	assert.Equal(t, transport.RS485{Enabled: true, RTSOnSend: true, DelayBeforeSend: 2 * time.Millisecond}, u.Line.RS485)
}
