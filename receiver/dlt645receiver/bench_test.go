package dlt645receiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// BenchmarkBusPoll polls N meters x M identifiers through the receiver's own path (bus, retries,
// spans, readings) against the simulator pacing its line at the baud rate, and reports the time of
// one round against the wire-time lower bound from the frame sizes (x-wire = measured / bound).
func BenchmarkBusPoll(b *testing.B) {
	all := []string{"00010000", "02010100", "02020100", "02030000", "02040000", "02050000", "02060000", "02800002"}
	for _, tc := range []struct{ baud, meters, ids int }{{2400, 3, 4}, {9600, 3, 4}, {9600, 8, 8}} {
		b.Run(fmt.Sprintf("baud=%d/meters=%d/ids=%d", tc.baud, tc.meters, tc.ids), func(b *testing.B) {
			sc := dlt645.DefaultSerialConfig("")
			sc.BaudRate = tc.baud
			const preamble = 4
			var meters []*sim.Meter
			var yml strings.Builder
			ids := all[:tc.ids]
			for i := range tc.meters {
				addr := fmt.Sprintf("%012d", i+1)
				m := meter(b, addr, dlt645.V2007, nil)
				for _, s := range ids {
					di, _ := dlt645.ParseDI(dlt645.V2007, s)
					if err := m.Set(di, 1); err != nil {
						b.Fatal(err)
					}
				}
				meters = append(meters, m)
				fmt.Fprintf(&yml, "      - {id: m%d, address: %q, identifiers: [%s]}\n", i, addr, `"`+strings.Join(ids, `", "`)+`"`)
			}
			_, ep := startSim(b, sim.Options{CharTime: sc.CharTime(), Preamble: preamble}, meters...)
			cfg := loadYAML(b, fmt.Sprintf(`
poll: {timeout: 500ms}
buses:
  - endpoint: tcp://%s
    baud_rate: %d
    preamble: %d
    meters:
%s`, ep, tc.baud, preamble, yml.String()))
			buses, err := cfg.resolve()
			if err != nil {
				b.Fatal(err)
			}
			bus := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
			defer bus.close()
			type target struct {
				m   *meterPoller
				rec *device.Recorder
			}
			var targets []target
			var bytes int
			for i := range buses[0].meters {
				ms := &buses[0].meters[i]
				rec := device.NewRecorder(ms.identity, device.RecorderSettings{Health: device.AllHealthMetrics(), Traces: device.TracesConfig{SuccessSampleRatio: 1}, Start: time.Now()})
				targets = append(targets, target{newMeterPoller(ms, bus, rec, clock.Real{}, zap.NewNop()), rec})
				for _, r := range ms.reads {
					req := dlt645.ReadRequest(dlt645.V2007, ms.address, r.di)
					rep := dlt645.ReadResponse(dlt645.V2007, ms.address, r.di, make([]byte, r.parts[0].entry.Format.Size), false)
					bytes += req.Len(preamble) + rep.Len(preamble)
				}
			}
			bound := time.Duration(bytes) * sc.CharTime()
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				for _, tg := range targets {
					p := tg.rec.Begin(time.Now())
					tg.m.Poll(ctx, p)
					if !p.Answered() || p.Err() != nil {
						b.Fatalf("poll failed: %v", p.Err())
					}
					p.End(time.Now(), poll.BreakerClosed)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per.Milliseconds()), "ms/round")
			b.ReportMetric(float64(bound.Milliseconds()), "wire-ms/round")
			b.ReportMetric(float64(per)/float64(bound), "x-wire")
		})
	}
}
