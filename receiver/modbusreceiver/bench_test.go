package modbusreceiver

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

const (
	benchDevices   = 100
	benchRegisters = 100
)

func benchBank() *modbussim.Bank {
	bank := modbussim.NewBank()
	for u := 1; u <= benchDevices; u++ {
		bank.AddUnit(uint8(u))
		for r := 0; r < benchRegisters; r += 2 {
			bank.SetRegisters(uint8(u), modbussim.Holding, r, f32regs(float32(u*1000+r))...)
		}
	}
	return bank
}

// BenchmarkScrape compares one pass over 100 devices × 100 registers (50 float32 fields each) on one
// loopback connection: a raw simonvetter client reading the same ranges in a loop, and the receiver's
// full poll (planning, reads, decoding, scaling, pdata with health metrics, breaker, sampling).
func BenchmarkScrape(b *testing.B) {
	addr := freeAddr(b)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 2 * benchDevices, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, benchBank().Handler())
	require.NoError(b, err)
	require.NoError(b, srv.Start())
	b.Cleanup(func() { _ = srv.Stop() })

	b.Run("raw_client", func(b *testing.B) {
		c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + addr, Logger: log.New(io.Discard, "", 0)})
		require.NoError(b, err)
		require.NoError(b, c.Open())
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			for u := 1; u <= benchDevices; u++ {
				_ = c.SetUnitId(uint8(u))
				if _, err := c.ReadRegisters(0, benchRegisters, modbus.HOLDING_REGISTER); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRates(b, cpuTime()-cpu0)
	})

	// The same reads through the library's raw-bytes call (no conversion into a new []uint16), as the
	// receiver makes them.
	b.Run("raw_client_bytes", func(b *testing.B) {
		c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + addr, Logger: log.New(io.Discard, "", 0)})
		require.NoError(b, err)
		require.NoError(b, c.Open())
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			for u := 1; u <= benchDevices; u++ {
				_ = c.SetUnitId(uint8(u))
				if _, err := c.ReadRawBytes(0, 2*benchRegisters, modbus.HOLDING_REGISTER); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRates(b, cpuTime()-cpu0)
	})

	benchCfg := func(b *testing.B, interval string, connPerDevice bool) *Config {
		var sb strings.Builder
		fmt.Fprintf(&sb, "poll: {interval: %s, timeout: 2ms, jitter: 0}\nconnections:\n", interval)
		for u := 1; u <= benchDevices; u++ {
			if u == 1 || connPerDevice {
				fmt.Fprintf(&sb, "  - endpoint: tcp://%s\n    devices:\n", addr)
			}
			fmt.Fprintf(&sb, "      - id: dev-%d\n        unit_id: %d\n        fields:\n", u, u)
			for r := 0; r < benchRegisters; r += 2 {
				fmt.Fprintf(&sb, "          - {name: f%d, address: %d, type: float32, metric: value, unit: W, attributes: {reg: \"%d\"}}\n", r, r, r)
			}
		}
		return loadConfig(b, sb.String())
	}

	// The receiver as it runs: one goroutine per device, the connection's link taken for the reads
	// only; b.N passes of 100 polls.
	for _, mode := range []struct {
		name          string
		connPerDevice bool
	}{{"receiver_one_connection", false}, {"receiver_connection_per_device", true}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := benchCfg(b, "2ms", mode.connPerDevice)
			var polls, points atomic.Int64
			target := int64(0)
			done := make(chan struct{})
			next, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
				points.Add(int64(md.DataPointCount()))
				// one resource per poll: the polls of a tick arrive gathered in one call
				n := int64(md.ResourceMetrics().Len())
				if p := polls.Add(n); p >= target && p-n < target {
					close(done)
				}
				return nil
			})
			require.NoError(b, err)
			r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
			require.NoError(b, err)
			r.SetMetrics(next)
			conns, err := cfg.resolve()
			require.NoError(b, err)
			for ci := range conns {
				for di := range conns[ci].devices {
					// as fast as the link allows (validation keeps configs at timeout ≤ interval)
					conns[ci].devices[di].poll.Interval = time.Millisecond
					conns[ci].devices[di].poll.Timeout = time.Second
				}
			}
			target = int64(b.N*benchDevices) + 1
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			r.build(conns)
			r.Scheduler().Start(context.Background())
			<-done
			b.StopTimer()
			cpu := cpuTime() - cpu0
			require.NoError(b, r.Shutdown(context.Background()))
			reportRates(b, cpu)
			b.ReportMetric(float64(points.Load())/float64(polls.Load()), "points/poll")
		})
	}

	// The same polls run one after the other in one goroutine (no overlap of decoding and reads).
	b.Run("receiver_sequential", func(b *testing.B) {
		cfg := benchCfg(b, "10s", false)
		cfg.Poll.Timeout = time.Second
		conns, err := cfg.resolve()
		require.NoError(b, err)
		r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
		require.NoError(b, err)
		r.build(conns)
		runners := r.rebuildRunners(func(context.Context, pmetric.Metrics, ptrace.Traces) {})
		defer func() {
			for _, c := range r.conns {
				c.close()
			}
		}()
		ctx := context.Background()
		for _, rn := range runners {
			rn.RunOnce(ctx) // connect, first plan
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			for _, rn := range runners {
				rn.RunOnce(ctx)
			}
		}
		b.StopTimer()
		cpu := cpuTime() - cpu0
		reportRates(b, cpu)
	})
}

func reportRates(b *testing.B, cpu time.Duration) {
	sec := b.Elapsed().Seconds()
	if sec == 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchDevices*benchRegisters/2), "cpu-ns/reading")
	b.ReportMetric(float64(b.N*benchDevices)/sec, "requests/s")
	b.ReportMetric(float64(b.N*benchDevices*benchRegisters)/sec, "registers/s")
	b.ReportMetric(sec*1e9/float64(b.N*benchDevices*benchRegisters/2), "ns/reading")
}
