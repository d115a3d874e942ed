//go:build linux

package modbusreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver"
)

// One RS-485 bus (a socat pty pair), a Modbus RTU inverter and two DL/T 645 meters on it, polled by a
// modbus and a dlt645 receiver at once: they take turns on the one port (no collision), and every
// reading is exact.
func TestSharedSerialBus(t *testing.T) {
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make test installs socat): %v", err)
	}
	line, err := dlt645.OpenSerial(dlt645.SerialConfig{Device: pair.A, BaudRate: 9600, DataBits: 8, Parity: "even", StopBits: 1})
	require.NoError(t, err)

	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, f32regs(230.5)...)
	bank.SetRegisters(1, modbussim.Input, 10, 0xFF85) // int16 -123
	bank.SetBits(1, modbussim.Coils, 0, true)
	bank.SetBits(1, modbussim.Discrete, 0, false, true)
	m1, m2 := meterAt(t, "000000000001", 12345.67, 220.1), meterAt(t, "000000000002", 765.4, 231.9)
	sim := &modbustest.BusSim{Bank: bank, Meters: dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, m1, m2), Think: 5 * time.Millisecond}
	served := make(chan error, 1)
	go func() { served <- sim.Serve(line) }()
	t.Cleanup(func() {
		_ = line.Close()
		<-served //nolint:errcheck // the line was closed under it: its error says only that
		_ = pair.Close()
	})

	mcfg := loadConfig(t, `
poll: {interval: 150ms, timeout: 150ms}
connections:
  - endpoint: rtu://`+pair.B+`
    baud_rate: 9600
    parity: even
    stop_bits: 1
    devices:
      - id: inverter
        unit_id: 1
        fields:
          - {name: voltage, table: holding, address: 0, type: float32}
          - {name: temperature, table: input, address: 10, type: int16}
          - {name: running, table: coil, address: 0, type: bool}
          - {name: alarm, table: discrete, address: 1, type: bool}
`)
	dcfg := devicetest.LoadConfig(t, dlt645receiver.NewFactory(), `
poll: {interval: 150ms, timeout: 150ms}
buses:
  - endpoint: serial://`+pair.B+`
    baud_rate: 9600
    parity: even
    meters:
      - {id: m1, address: "000000000001", identifiers: ["00010000", "02010100"]}
      - {id: m2, address: "000000000002", identifiers: ["00010000", "02010100"]}
`)
	ms := startReceiver(t, mcfg)
	ds := devicetest.StartReceiver(t, dlt645receiver.NewFactory(), dcfg)

	require.Eventually(t, func() bool {
		return sim.ModbusTx.Load() >= 40 && sim.DLT645Tx.Load() >= 40
	}, 30*time.Second, 10*time.Millisecond, "both receivers poll the bus")
	assert.Empty(t, sim.Collisions(), "one transaction at a time on the bus")

	pts := points(ms.metrics.AllMetrics())
	for name, want := range map[string]float64{"voltage": 230.5, "temperature": -123, "running": 1, "alarm": 1} {
		p, ok := latest(pts, "inverter", name, nil)
		if assert.True(t, ok, name) {
			assert.Equal(t, want, p.value, name)
		}
	}
	_, failed := latest(pts, "inverter", "iiot.device.poll.errors", nil)
	assert.False(t, failed, "no failed Modbus request")

	dpts := devicetest.Points(ds.Metrics.AllMetrics()...)
	want := map[string]map[string]float64{
		"m1": {dlt645.MetricActiveEnergy: 12345670, dlt645.MetricVoltage: 220.1},
		"m2": {dlt645.MetricActiveEnergy: 765400, dlt645.MetricVoltage: 231.9},
	}
	seen := map[string]int{}
	for _, p := range dpts {
		if p.Metric == "iiot.device.poll.errors" {
			t.Errorf("%s: a DL/T 645 request failed", p.Device)
		}
		if v, ok := want[p.Device][p.Metric]; ok && !p.Stale {
			seen[p.Device+" "+p.Metric]++
			assert.Equal(t, v, p.Value, "%s %s", p.Device, p.Metric)
		}
	}
	assert.Len(t, seen, 4, "every meter reading recorded")
}

func meterAt(t testing.TB, address string, energy, voltage float64) *dlt645sim.Meter {
	t.Helper()
	a, err := dlt645.ParseAddress(address)
	require.NoError(t, err)
	m := dlt645sim.NewMeter(a, dlt645.V2007)
	require.NoError(t, m.Set(0x00010000, energy))
	require.NoError(t, m.Set(0x02010100, voltage))
	return m
}
