package dlt645receiver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// BenchmarkLoadProfileBackfill is the backfill's own path (requests of up to 99 records by start
// time, follow-up frames, decoding, the records' points handed to a pipeline) against the simulator
// pacing its line at the baud rate: records per second a catch-up reads back after an outage.
func BenchmarkLoadProfileBackfill(b *testing.B) {
	for _, tc := range []struct{ baud, class, perPoll int }{{2400, 0, 16}, {2400, 4, 16}, {2400, 4, 96}, {9600, 0, 16}} {
		b.Run(fmt.Sprintf("baud=%d/class=%d/per_poll=%d", tc.baud, tc.class, tc.perPoll), func(b *testing.B) {
			sc := dlt645.DefaultSerialConfig("")
			sc.BaudRate = tc.baud
			const preamble = 4
			m := meter(b, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 1})
			m.SetClock(0, time.UTC)
			start := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
			for i := range 200 {
				vals := [6][]float64{{220, 221, 219, 5, 5, 5, 50}, {3, 1, 1, 1, 0.5, 0.2, 0.2, 0.1}, {0.99, 0.99, 0.99, 0.99},
					{float64(1000 + i), 0, 0, 0}, {1, 0, 0, 0}, {3, 0.5}}
				if err := m.AddProfileRecord(start.Add(time.Duration(i)*15*time.Minute), vals); err != nil {
					b.Fatal(err)
				}
			}
			clk := clock.NewManual(start.Add(200 * 15 * time.Minute))
			_, ep := startSim(b, sim.Options{CharTime: sc.CharTime(), Preamble: preamble, Now: clk.Now}, m)
			cfg := loadYAML(b, fmt.Sprintf(`
time_zone: UTC
poll: {timeout: 2s}
buses:
  - endpoint: tcp://%s
    baud_rate: %d
    preamble: %d
    meters:
      - {id: m, address: "1", identifiers: ["00010000"], load_profile: {class: %d, interval: 15m, max_records_per_poll: %d, max_backfill: 24h}}
`, ep, tc.baud, preamble, tc.class, tc.perPoll))
			buses, err := cfg.resolve()
			if err != nil {
				b.Fatal(err)
			}
			bus := newBus(&buses[0], nil, clk, zap.NewNop())
			defer bus.close()
			ms := &buses[0].meters[0]
			rec := device.NewRecorder(ms.identity, device.RecorderSettings{Start: clk.Now()})
			mp := newMeterPoller(ms, bus, rec, clk, zap.NewNop())
			points := 0
			emit := func(_ context.Context, md pmetric.Metrics) error { points += md.DataPointCount(); return nil }
			mp.profile = newLoadProfile(ms.loadProfile, ms.identity, device.NewRecorder(ms.identity, device.RecorderSettings{Start: clk.Now()}), nil, emit, zap.NewNop())
			mp.profile.loaded = true
			ctx := context.Background()
			recs := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Each round catches up from a point of the history, as after an outage.
				mp.profile.last = start.Add(time.Duration(i%(200-tc.perPoll)) * 15 * time.Minute)
				p := rec.Begin(clk.Now())
				mp.readLoadProfile(ctx, p)
				if err := p.Err(); err != nil {
					b.Fatal(err)
				}
				recs += len(mp.profile.pending)
				mp.Finish(p)
			}
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
			if recs == 0 || points == 0 {
				b.Fatal("no records read")
			}
		})
	}
}
