//go:build linux

package modbusreceiver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	paced "github.com/otelcol-iiot/otelcol-iiot/internal/sim/wire"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver"
)

// BenchmarkSharedBusWire runs a modbus and a dlt645 receiver on one RS-485 bus (a socat pty pair
// paced at the baud rate by internal/sim/wire: a request occupies the wire for its frame time, the
// reply follows after the device's turnaround with its own) carrying a Modbus RTU inverter and two
// DL/T 645 meters, both receivers polling as fast as the bus allows. It reports the time per
// transaction against the wire-time bound: the frames' bytes at the character time, plus what the
// line requires around each transaction (the silence before the request, t3.5 for Modbus RTU and
// the dlt645 receiver's inter_frame_gap, and the device's turnaround, t3.5 here):
// x-wire = measured / bound.
//
//	go test -run '^$' -bench BenchmarkSharedBusWire -benchtime 60x ./receiver/modbusreceiver/
func BenchmarkSharedBusWire(b *testing.B) {
	for _, baud := range []int{9600, 2400} {
		b.Run(fmt.Sprintf("baud=%d", baud), func(b *testing.B) {
			pair, err := dlt645sim.NewPTYPair(context.Background(), b.TempDir())
			if err != nil {
				b.Skipf("no socat pty pair (make deps installs socat): %v", err)
			}
			defer pair.Close()
			line := transport.Line{BaudRate: baud, DataBits: 8, Parity: transport.ParityEven, StopBits: 1}
			ct := line.CharTime()
			port, err := transport.OpenSerial(pair.A, line, transport.RS485{})
			if err != nil {
				b.Fatal(err)
			}
			w := paced.NewLine(port, ct)
			t35 := 35 * ct / 10
			bank := modbussim.NewBank(1)
			bank.SetRegisters(1, modbussim.Holding, 0, f32regs(230.5)...)
			bank.SetRegisters(1, modbussim.Input, 10, 0xFF85)
			m1, m2 := meterAt(b, "000000000001", 12345.67, 220.1), meterAt(b, "000000000002", 765.4, 231.9)
			sim := &modbustest.BusSim{Bank: bank, Meters: dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, m1, m2), Think: t35}
			served := make(chan error, 1)
			go func() { served <- sim.Serve(w) }()
			defer func() {
				_ = port.Close()
				w.Close()
				<-served //nolint:errcheck // the line was closed under it: its error says only that
			}()

			// Polls come faster than the bus can carry them: it is never idle for want of work.
			interval := 150 * time.Millisecond
			if baud < 9600 {
				interval = 500 * time.Millisecond
			}
			mcfg := loadConfig(b, fmt.Sprintf(`
poll: {interval: %[1]s, timeout: %[1]s, jitter: 0}
connections:
  - endpoint: rtu://%[2]s
    baud_rate: %[3]d
    parity: even
    stop_bits: 1
    devices:
      - id: inverter
        unit_id: 1
        fields:
          - {name: voltage, table: holding, address: 0, type: float32}
          - {name: temperature, table: input, address: 10, type: int16}
`, interval, pair.B, baud))
			dcfg := devicetest.LoadConfig(b, dlt645receiver.NewFactory(), fmt.Sprintf(`
poll: {interval: %[1]s, timeout: %[1]s, jitter: 0}
buses:
  - endpoint: serial://%[2]s
    baud_rate: %[3]d
    parity: even
    meters:
      - {id: m1, address: "000000000001", identifiers: ["00010000", "02010100"]}
      - {id: m2, address: "000000000002", identifiers: ["00010000", "02010100"]}
`, interval, pair.B, baud))
			ms := startReceiver(b, mcfg)
			ds := devicetest.StartReceiver(b, dlt645receiver.NewFactory(), dcfg)

			total := func() int64 { return sim.ModbusTx.Load() + sim.DLT645Tx.Load() }
			// The bus simulator counts transactions as they come; a millisecond's look is well below
			// one transaction's wire time.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			waitFor := func(n int64) {
				for total() < n {
					<-tick.C
				}
			}
			waitFor(10)                             // both receivers under way
			dltGap := max(4*ct, 5*time.Millisecond) // the dlt645 receiver's default inter_frame_gap
			s0, mb0, dl0, n0 := w.Stats(), sim.ModbusTx.Load(), sim.DLT645Tx.Load(), total()
			start := time.Now()
			b.ResetTimer()
			waitFor(n0 + int64(b.N))
			elapsed := time.Since(start)
			b.StopTimer()
			s1, mb1, dl1 := w.Stats(), sim.ModbusTx.Load(), sim.DLT645Tx.Load()
			tx := (mb1 - mb0) + (dl1 - dl0)
			bound := (s1.Busy - s0.Busy) + time.Duration(mb1-mb0)*(t35+t35) + time.Duration(dl1-dl0)*(dltGap+t35)
			// The bytes of the transaction under way at each end: a fraction of one in tx.
			per, wirePer := elapsed/time.Duration(tx), bound/time.Duration(tx)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/tx")
			b.ReportMetric(float64(wirePer.Microseconds())/1000, "wire-ms/tx")
			b.ReportMetric(float64(per)/float64(wirePer), "x-wire")
			if c := sim.Collisions(); len(c) > 0 {
				b.Fatalf("transactions overlapped: %v", c)
			}
			for _, p := range points(ms.metrics.AllMetrics()) {
				if p.metric == "iiot.device.poll.errors" {
					b.Fatalf("a Modbus poll failed: %v", p.attrs)
				}
			}
			for _, p := range devicetest.Points(ds.Metrics.AllMetrics()...) {
				if p.Metric == "iiot.device.poll.errors" {
					b.Fatalf("a DL/T 645 poll failed on %s", p.Device)
				}
			}
		})
	}
}
