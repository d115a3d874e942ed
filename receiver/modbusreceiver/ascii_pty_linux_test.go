package modbusreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// Modbus ASCII over a serial line (a socat pty pair) at the serial line guide's default 7E1: exact
// values of every type, by every function, from two units.
func TestModbusASCIIOverPTY(t *testing.T) {
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make test installs socat): %v", err)
	}
	line, err := dlt645.OpenSerial(dlt645.SerialConfig{Device: pair.A, BaudRate: 9600, DataBits: 7, Parity: "even", StopBits: 1})
	require.NoError(t, err)
	bank := modbussim.NewBank(1, 2)
	for u := uint8(1); u <= 2; u++ {
		bank.SetRegisters(u, modbussim.Holding, 0, f32regs(float32(u)*100+0.25)...)
		bank.SetRegisters(u, modbussim.Holding, 2, 0xFFFE, 0x1DC0) // int32 -123456
		bank.SetRegisters(u, modbussim.Input, 7, uint16(u)*1000)
		bank.SetBits(u, modbussim.Coils, 5, true, false)
		bank.SetBits(u, modbussim.Discrete, 9, true)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = bank.ServeRTU(&modbustest.ASCIILine{Line: line}) }()
	t.Cleanup(func() { _ = line.Close(); <-served; _ = pair.Close() })

	const fields = `
        fields:
          - {name: power, table: holding, address: 0, type: float32}
          - {name: energy, table: holding, address: 2, type: int32}
          - {name: count, table: input, address: 7, type: uint16}
          - {name: on, table: coil, address: 5, type: bool}
          - {name: off, table: coil, address: 6, type: bool}
          - {name: alarm, table: discrete, address: 9, type: bool}
`
	cfg := loadConfig(t, `
poll: {interval: 300ms, timeout: 300ms}
connections:
  - endpoint: ascii://`+pair.B+`
    devices:
      - id: u1
        unit_id: 1`+fields+`
      - id: u2
        unit_id: 2`+fields)
	s := startReceiver(t, cfg)
	want := func(u int) map[string]float64 {
		return map[string]float64{"power": float64(u)*100 + 0.25, "energy": -123456, "count": float64(u) * 1000, "on": 1, "off": 0, "alarm": 1}
	}
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		for _, dev := range []string{"u1", "u2"} {
			for name := range want(1) {
				if _, ok := latest(pts, dev, name, nil); !ok {
					return false
				}
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	pts := points(s.metrics.AllMetrics())
	for u, dev := range []string{"u1", "u2"} {
		for name, v := range want(u + 1) {
			p, _ := latest(pts, dev, name, nil)
			assert.Equal(t, v, p.value, "%s %s", dev, name)
		}
		_, failed := latest(pts, dev, "iiot.device.poll.errors", nil)
		assert.False(t, failed, "%s: no failed request", dev)
	}
}
