//go:build linux

package modbusreceiver

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver"
)

// The rs485 block is checked like the line keys: on a serial port only, each error naming its key.
func TestRS485Config(t *testing.T) {
	err := unmarshal(t, `
connections:
  - endpoint: rtu:///dev/ttyS1
    rs485: {enabled: true, rts_on_send: false, delay_before_send: 2ms, delay_after_send: 1ms}
    devices: [{id: a, fields: [{name: x, address: 0}]}]
  - endpoint: rtuovertcp://10.0.0.1:4001
    rs485: {enabled: true}
    devices: [{id: b, fields: [{name: x, address: 0}]}]
  - endpoint: ascii:///dev/ttyS2
    rs485: {enabled: true, delay_after_send: 250ms, rts_after_send: true}
    devices: [{id: c, fields: [{name: x, address: 0}]}]
`).Validate()
	require.Error(t, err)
	assert.Equal(t, "connections[1].rs485: applies only to a local serial port (the serial server or DTU drives its own RS-485 line)\n"+
		"connections[2].rs485.delay_after_send: must be between 0 and 100ms, got 250ms\n"+
		"connections[2].rs485: rts_on_send and rts_after_send must differ (RTS changes level when sending starts and ends), both are true", err.Error())
}

// A modbus and a dlt645 receiver on one port, only one of them with rs485: the second start fails
// naming both users.
func TestRS485DiffersBetweenReceivers(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyX") // the start only joins the port; nothing opens it
	require.NoError(t, os.WriteFile(dev, nil, 0o600))
	mcfg := loadConfig(t, `
connections:
  - endpoint: rtu://`+dev+`
    baud_rate: 9600
    parity: even
    rs485: {enabled: true, delay_after_send: 1ms}
    devices: [{id: inverter, fields: [{name: v, address: 0}]}]
`)
	startReceiver(t, mcfg)
	dcfg := devicetest.LoadConfig(t, dlt645receiver.NewFactory(), `
buses:
  - endpoint: serial://`+dev+`
    baud_rate: 9600
    parity: even
    meters: [{id: m1, address: "1", identifiers: ["02010100"]}]
`)
	f := dlt645receiver.NewFactory()
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), dcfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Regexp(t, "^serial port "+regexp.QuoteMeta(dev)+`: receiver modbus/\S+ connections\[0\] uses rs485 rts_on_send=true rts_after_send=false delay_before_send=0s delay_after_send=1ms rx_during_tx=false but receiver dlt645/\S+ buses\[0\] uses rs485 off: the users of one port must use the same rs485 settings$`, err.Error())
	require.NoError(t, r.Shutdown(context.Background()))
}

// On a port without RS-485 mode (a pty) the device is down with a connection error that names the
// port and the key; it is not polled as if the direction were driven.
func TestRS485OnPTY(t *testing.T) {
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make deps installs socat): %v", err)
	}
	defer pair.Close()
	cfg := loadConfig(t, `
poll: {interval: 100ms, timeout: 100ms, retries: 0}
traces: {success_sample_ratio: 1}
connections:
  - endpoint: rtu://`+pair.B+`
    rs485: {enabled: true}
    devices: [{id: inverter, fields: [{name: v, address: 0}]}]
`)
	s := startReceiver(t, cfg)
	var msg string
	require.Eventually(t, func() bool {
		for _, sp := range devicetest.Spans(s.traces.AllTraces()...) {
			if sp.Name() == "modbus.poll" && sp.Status().Message() != "" {
				msg = sp.Status().Message()
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	assert.Regexp(t, `^connection: receiver modbus/\S+ connections\[0\]: open `+regexp.QuoteMeta(pair.B)+`: rs485: the port's driver has no RS-485 mode \(TIOCSRS485: inappropriate ioctl for device\)`, msg)
	p, ok := latest(points(s.metrics.AllMetrics()), "inverter", "iiot.device.up", nil)
	require.True(t, ok)
	assert.Zero(t, p.value)
}

// The README's RS-485 and serial backup examples are valid.
func TestRS485ReadmeExample(t *testing.T) {
	for heading, name := range map[string]string{"### RS-485 driver control": "modbus/rs485", "### Backup endpoints": "modbus/pump"} {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		require.NoError(t, confmap.NewFromStringMap(readmeExample(t, heading)[name]).Unmarshal(cfg), heading)
		require.NoError(t, cfg.Validate(), heading)
	}
}
