//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// servePTY serves line (one end of a socat pty pair, opened 9600 8E1 or 7E1) with serve until the
// test ends.
func servePTY(t *testing.T, dataBits int, serve func(line *dlt645.SerialLink)) string {
	t.Helper()
	pair, err := dlt645sim.NewPTYPair(context.Background(), t.TempDir())
	require.NoError(t, err, "socat is needed (make deps)")
	line, err := dlt645.OpenSerial(dlt645.SerialConfig{Device: pair.A, BaudRate: 9600, DataBits: dataBits, Parity: "even", StopBits: 1})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); serve(line) }()
	t.Cleanup(func() { _ = line.Close(); <-done; _ = pair.Close() })
	return pair.B
}

// The built collector polls Modbus ASCII devices on pymodbus' ASCII framer over TCP and on a serial
// line (our ASCII device on a socat pty pair), into a real Prometheus: exact values of every type, by
// every read function.
func TestModbusASCII(t *testing.T) {
	asciiPort, _ := startPymodbus(t, "ascii")
	bank := modbussim.NewBank(7)
	bank.SetRegisters(7, modbussim.Holding, 0, modbussim.Float32Regs(49.75)...)
	bank.SetRegisters(7, modbussim.Holding, 4, 0xFFFF, 0xFFF9) // int32 -7
	bank.SetRegisters(7, modbussim.Input, 3, 0xFFD8)           // int16 -40
	bank.SetBits(7, modbussim.Coils, 2, true)
	dev := servePTY(t, 7, func(line *dlt645.SerialLink) { _ = bank.ServeRTU(&modbustest.ASCIILine{Line: line}) })
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	data := vars{"ASCIIPort": asciiPort, "SerialDevice": dev, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "modbus_ascii/config.yaml")
	prom.expectValues(t, "modbus_ascii/expected.yaml", data)
	for _, d := range []string{"ascii-tcp", "ascii-serial"} {
		s := prom.Query(t, fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q}`, d))
		require.Empty(t, s, "%s: no failed request", d)
	}
}

// The built collector's modbus and dlt645 receivers poll one RS-485 bus (a socat pty pair) with a
// Modbus RTU inverter and two DL/T 645 meters: the bus simulator sees no overlapping transaction,
// and every reading is exact.
func TestSharedSerialBus(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, modbussim.Float32Regs(4321.5)...)
	bank.SetRegisters(1, modbussim.Input, 10, 0xFFF4) // int16 -12
	m1, m2 := dltMeter(t, "000000000001"), dltMeter(t, "000000000002")
	require.NoError(t, m2.Set(0x00010000, 765.4))
	require.NoError(t, m2.Set(0x02010100, 231.9))
	sim := &modbustest.BusSim{Bank: bank, Meters: dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, m1, m2), Think: 5 * time.Millisecond}
	dev := servePTY(t, 8, func(line *dlt645.SerialLink) { _ = sim.Serve(line) })
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	data := vars{"SerialDevice": dev, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "sharedbus/config.yaml")
	prom.expectValues(t, "sharedbus/expected.yaml", data)
	require.True(t, assertEventually(30*time.Second, func() bool {
		return sim.ModbusTx.Load() >= 20 && sim.DLT645Tx.Load() >= 20
	}), "both receivers poll the bus")
	require.Empty(t, sim.Collisions(), "one transaction at a time on the bus")
	for _, d := range []string{"inverter", "meter-1", "meter-2"} {
		s := prom.Query(t, fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q}`, d))
		require.Empty(t, s, "%s: no failed request", d)
	}
}
