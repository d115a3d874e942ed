package tdigestprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/influxdata/tdigest"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadata"
)

// Run: go test -run '^$' -bench . -benchmem ./processor/tdigestprocessor/
//
// ns/point of Consume should be compared with RawTDigestAdd (the library's
// Add loop at compression 100) and ExactSortQuantiles60 printed by the same run.

const benchSeries = 1000

// pollBatch is one scrape of 1000 devices: one resource each (device.id,
// device.protocol) with a poll-duration gauge point.
func pollBatch(r *rand.Rand) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for i := range benchSeries {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("device.id", fmt.Sprintf("dev-%04d", i))
		rm.Resource().Attributes().PutStr("device.protocol", "modbus")
		rm.Resource().Attributes().PutStr("site", "plant-1")
		sm := rm.ScopeMetrics().AppendEmpty()
		m := sm.Metrics().AppendEmpty()
		m.SetName("iiot.device.poll.duration")
		m.SetUnit("s")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.Attributes().PutStr("result", "ok")
		dp.SetDoubleValue(0.02 * r.ExpFloat64())
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	}
	return md
}

func benchProcessor(b *testing.B, groupBy []string) (processor.Metrics, *tdigestProcessor, *clock.Manual) {
	cfg := testConfig(nil, sel("iiot.device.poll.duration", func(m *MetricConfig) { m.GroupBy = groupBy; m.Outputs.Gauges = true }))
	clk := clock.NewManual(t0)
	set := processortest.NewNopSettings(metadata.Type)
	pm, p, err := newMetricsProcessor(context.Background(), set, cfg, consumertest.NewNop(), clk)
	if err != nil {
		b.Fatal(err)
	}
	// not started: the benchmark calls emit itself
	return pm, p, clk
}

// Data points through the processor: 1000 series, one point each per second
// (so each slide holds 10 exact values per series, as in production).
// ns/point is wall time, cpu-ns/point the CPU time of the benchmark's thread
// (less sensitive to other jobs on the machine).
func BenchmarkConsume(b *testing.B) {
	for _, tc := range []struct {
		name    string
		groupBy []string
	}{
		{"group_by_device", []string{"device.id"}},
		{"all_attributes", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			pm, _, clk := benchProcessor(b, tc.groupBy)
			r := rand.New(rand.NewPCG(1, 2))
			batches := make([]pmetric.Metrics, 16)
			for i := range batches {
				batches[i] = pollBatch(r)
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			cpu := threadCPU()
			for b.Loop() {
				clk.Advance(time.Second)
				if err := pm.ConsumeMetrics(ctx, batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cpu = threadCPU() - cpu
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSeries), "ns/point")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchSeries), "cpu-ns/point")
		})
	}
}

// The cost of a data point relative to the raw library loop, measured
// interleaved: each iteration consumes one 1000-point batch with each of three
// processors and adds 1000 values to a library digest, timing each in CPU time
// of the benchmark's thread, so that load from other processes affects all
// alike and waiting for a core counts for none. Processors: group_by: [device.id];
// all: without group_by (a series per set of all attributes); all_sorted_keys:
// the same, finding every series by the sorted encoding of all its attributes
// (allIndex off: what the processor did before it had the index).
// <processor>-ns/point and <processor>-x-raw (the ratio to the raw loop);
// raw-ns/value for the library. The three processors' series evict each
// other from the caches, so all figures are a little higher than with one
// processor alone (BenchmarkConsume).
func BenchmarkConsumeVsRawAdd(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type proc struct {
		name string
		pm   processor.Metrics
		clk  *clock.Manual
		cpu  time.Duration
	}
	var procs []*proc
	for _, tc := range []struct {
		name      string
		groupBy   []string
		sortedKey bool
	}{
		{"group_by", []string{"device.id"}, false},
		{"all", nil, false},
		{"all_sorted_keys", nil, true},
	} {
		pm, p, clk := benchProcessor(b, tc.groupBy)
		p.noAllIndex = tc.sortedKey
		procs = append(procs, &proc{name: tc.name, pm: pm, clk: clk})
	}
	r := rand.New(rand.NewPCG(1, 2))
	batches := make([]pmetric.Metrics, 16)
	for i := range batches {
		batches[i] = pollBatch(r)
	}
	vals := make([]float64, 1<<16)
	for i := range vals {
		vals[i] = 0.02 * r.ExpFloat64()
	}
	td := tdigest.NewWithCompression(quantile.DefaultCompression)
	ctx := context.Background()
	var raw time.Duration
	i, k := 0, 0
	for b.Loop() {
		batch := batches[i%len(batches)]
		for _, p := range procs {
			p.clk.Advance(time.Second)
			start := threadCPU()
			if err := p.pm.ConsumeMetrics(ctx, batch); err != nil {
				b.Fatal(err)
			}
			p.cpu += threadCPU() - start
		}
		start := threadCPU()
		for range benchSeries {
			td.Add(vals[k&(1<<16-1)], 1)
			k++
		}
		raw += threadCPU() - start
		i++
	}
	n := float64(b.N * benchSeries)
	b.ReportMetric(float64(raw.Nanoseconds())/n, "raw-ns/value")
	for _, p := range procs {
		b.ReportMetric(float64(p.cpu.Nanoseconds())/n, p.name+"-ns/point")
		b.ReportMetric(float64(p.cpu)/float64(raw), p.name+"-x-raw")
	}
}

// One emit of 1000 series with a full 60 s window (summary + gauges).
func BenchmarkEmit1000Series(b *testing.B) {
	_, p, clk := benchProcessor(b, []string{"device.id"})
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for range 60 {
		clk.Advance(time.Second)
		if _, err := p.processMetrics(ctx, pollBatch(r)); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(60 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		p.emit(ctx, now)
	}
}

// Heap per series (after a GC) of the processor holding 10000 series with a
// full default window of one value per second, metadata included.
func BenchmarkBytesPerSeries(b *testing.B) {
	const n = 10 * benchSeries
	for b.Loop() {
		r := rand.New(rand.NewPCG(1, 2))
		batch := pmetric.NewMetrics()
		rm := batch.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("site", "plant-1")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("iiot.device.poll.duration")
		dps := m.SetEmptyGauge().DataPoints()
		for i := range n {
			dp := dps.AppendEmpty()
			dp.Attributes().PutStr("device.id", fmt.Sprintf("dev-%05d", i))
		}
		before := heapAfterGC()
		cfg := testConfig(func(c *Config) { c.MaxSeries = n }, sel("iiot.device.poll.duration", func(m *MetricConfig) { m.GroupBy = []string{"device.id"} }))
		clk := clock.NewManual(t0)
		p, err := newProcessor(processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), clk)
		if err != nil {
			b.Fatal(err)
		}
		for range 60 {
			clk.Advance(time.Second)
			for i := range n {
				dps.At(i).SetDoubleValue(r.Float64())
			}
			if _, err := p.processMetrics(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		p.emit(context.Background(), t0.Add(60*time.Second))
		after := heapAfterGC()
		b.ReportMetric(float64(after-before)/n, "bytes/series")
		runtime.KeepAlive(p)
		runtime.KeepAlive(batch)
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// References for the same run: the library's Add loop, and exact quantiles of a
// 60-value window by sorting.
func BenchmarkRawTDigestAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 1<<16)
	for i := range vals {
		vals[i] = 0.02 * r.ExpFloat64()
	}
	td := tdigest.NewWithCompression(quantile.DefaultCompression)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		td.Add(vals[i&(1<<16-1)], 1)
	}
}

func BenchmarkExactSortQuantiles60(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 60)
	for i := range vals {
		vals[i] = r.Float64()
	}
	buf := make([]float64, 60)
	qs := quantile.DefaultQuantiles()
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, vals)
		slices.Sort(buf)
		for _, q := range qs {
			_ = buf[int(q*float64(len(buf)-1))]
		}
	}
}

var _ = componenttest.NewNopHost
