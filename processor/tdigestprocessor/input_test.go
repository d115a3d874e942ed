package tdigestprocessor

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadatatest"
)

func ts(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d)) }

func sumMD(name string, temp pmetric.AggregationTemporality, monotonic bool, attrs kv, start, at time.Duration, v float64) pmetric.Metrics {
	md, ms := newMD(kv{"device.id": "d1"})
	m := ms.AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetAggregationTemporality(temp)
	s.SetIsMonotonic(monotonic)
	dp := s.DataPoints().AppendEmpty()
	_ = dp.Attributes().FromRaw(attrs)
	if start != 0 {
		dp.SetStartTimestamp(ts(start))
	}
	dp.SetTimestamp(ts(at))
	dp.SetDoubleValue(v)
	return md
}

func TestSumDeltaMode(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("energy", func(m *MetricConfig) {
		m.Sums = SumDelta
		m.GroupBy = []string{}
	})))
	cum := pmetric.AggregationTemporalityCumulative
	h.at(1 * sec)
	a := kv{"meter": "a"}
	// stream a started before the processor: its first point is a baseline
	h.consume(sumMD("energy", cum, true, a, -100*sec, 1*sec, 100))
	h.consume(sumMD("energy", cum, true, a, -100*sec, 2*sec, 103))            // +3
	h.consume(sumMD("energy", cum, true, a, -100*sec, 3*sec, 110))            // +7
	h.consume(sumMD("energy", cum, true, a, -100*sec, 3*sec, 110))            // duplicate: ignored
	h.consume(sumMD("energy", cum, true, a, -100*sec, 4*sec, 2))              // decrease, same start: reset, baseline
	h.consume(sumMD("energy", cum, true, a, -100*sec, 5*sec, 5))              // +3
	h.consume(sumMD("energy", cum, true, a, 5500*time.Millisecond, 6*sec, 4)) // restarted: +4
	// stream b started after the processor: its first value counts
	h.consume(sumMD("energy", cum, true, kv{"meter": "b"}, 1*sec, 2*sec, 6)) // +6
	// a delta-temporality point is an increase already
	h.consume(sumMD("energy", pmetric.AggregationTemporalityDelta, true, kv{"meter": "c"}, 1*sec, 2*sec, 9)) // +9
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(6), got[0].Count)
	assert.Equal(t, 32.0, got[0].Sum)
	assert.Equal(t, 5.0, got[0].Quantiles[0.5]) // 3 3 4 6 7 9
	assert.Equal(t, 9.0, got[0].Quantiles[0.99])
	assert.Len(t, h.p.streams.m, 2, "cumulative streams tracked: a and b")

	// streams idle for a window are forgotten
	h.emitAt(20 * sec)
	h.emitAt(60 * sec)
	h.emitAt(70 * sec)
	assert.Empty(t, h.p.streams.m)
}

func TestSumValueMode(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("level", func(m *MetricConfig) { m.GroupBy = []string{} })))
	cum := pmetric.AggregationTemporalityCumulative
	h.at(1 * sec)
	h.consume(sumMD("level", cum, false, nil, -10*sec, 1*sec, 7))
	h.consume(sumMD("level", cum, false, nil, -10*sec, 2*sec, 5))
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(2), got[0].Count)
	assert.Equal(t, 12.0, got[0].Sum, "values as they are")
	assert.Empty(t, h.p.streams.m, "no stream state in value mode")
}

func TestCumulativeStreamLimit(t *testing.T) {
	h := newHarness(t, testConfig(func(c *Config) { c.MaxSeries = 2 },
		sel("energy", func(m *MetricConfig) { m.GroupBy = []string{}; m.Sums = SumDelta })))
	cum := pmetric.AggregationTemporalityCumulative
	h.at(1 * sec)
	for _, meter := range []string{"1", "2", "3"} {
		h.consume(sumMD("energy", cum, true, kv{"m": meter}, 1*sec, 1*sec, 1))
	}
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(2), got[0].Count, "the third stream is refused")
	metadatatest.AssertEqualProcessorTdigestRefusedDataPoints(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "max_streams"))},
	}, metricdatatest.IgnoreTimestamp())
}

func histMD(temp pmetric.AggregationTemporality, start, at time.Duration, bounds []float64, counts []uint64, fill func(pmetric.HistogramDataPoint)) pmetric.Metrics {
	md, ms := newMD(kv{"device.id": "d1"})
	m := ms.AppendEmpty()
	m.SetName("latency")
	m.SetUnit("ms")
	hg := m.SetEmptyHistogram()
	hg.SetAggregationTemporality(temp)
	dp := hg.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(start))
	dp.SetTimestamp(ts(at))
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetCount(n)
	if fill != nil {
		fill(dp)
	}
	return md
}

func TestHistogramBucketAware(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("latency", nil)))
	delta := pmetric.AggregationTemporalityDelta
	h.at(1 * sec)
	// 4 values in (10, 20], known to lie within [12, 18], summing to 60
	h.consume(histMD(delta, 0, 1*sec, []float64{10, 20, 50}, []uint64{0, 4, 0, 0}, func(dp pmetric.HistogramDataPoint) {
		dp.SetMin(12)
		dp.SetMax(18)
		dp.SetSum(60)
	}))
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, "latency.quantiles", got[0].Metric)
	assert.Equal(t, "ms", got[0].Unit)
	assert.Equal(t, uint64(4), got[0].Count)
	assert.InDelta(t, 60.0, got[0].Sum, 1e-9, "the histogram's sum, not the estimate")
	// spread evenly over [12, 18]: 12.75 14.25 15.75 17.25
	assert.InDelta(t, 15.0, got[0].Quantiles[0.5], 1e-9)
	assert.InDelta(t, 17.25, got[0].Quantiles[0.99], 1e-9)

	// open-ended buckets without min/max: the first from 0, the last at its bound
	h.consume(histMD(delta, 0, 11*sec, []float64{10}, []uint64{2, 2}, nil))
	got = flatten(h.emitAt(20 * sec))
	require.Len(t, got, 1)
	// window: 12.75 14.25 15.75 17.25 (first slide) and 2.5 7.5 10 10
	assert.Equal(t, uint64(8), got[0].Count)
	assert.InDelta(t, 11.375, got[0].Quantiles[0.5], 1e-9) // between 10 and 12.75
}

func TestHistogramCumulativeDiffAndLargeCounts(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("latency", nil)))
	cum := pmetric.AggregationTemporalityCumulative
	h.at(1 * sec)
	b := []float64{1, 2, 4}
	h.consume(histMD(cum, -60*sec, 1*sec, b, []uint64{5, 5, 5, 0}, func(dp pmetric.HistogramDataPoint) { dp.SetSum(30) })) // baseline
	h.consume(histMD(cum, -60*sec, 2*sec, b, []uint64{5, 1005, 5, 0}, func(dp pmetric.HistogramDataPoint) { dp.SetSum(1530) }))
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(1000), got[0].Count, "only the increase")
	assert.InDelta(t, 1500.0, got[0].Sum, 1e-6)
	// 1000 values in (1, 2]: spread as 8 weighted points
	assert.InDelta(t, 1.5, got[0].Quantiles[0.5], 0.07)
	assert.True(t, got[0].Quantiles[0.99] > 1.8 && got[0].Quantiles[0.99] <= 2, "P99 %v", got[0].Quantiles[0.99])

	// a changed layout is a reset: baseline only
	h.consume(histMD(cum, -60*sec, 11*sec, []float64{1, 2}, []uint64{5, 1005, 5}, nil))
	// a decreased bucket too
	h.consume(histMD(cum, -60*sec, 12*sec, []float64{1, 2}, []uint64{5, 1000, 10}, nil))
	// then increases again
	h.consume(histMD(cum, -60*sec, 13*sec, []float64{1, 2}, []uint64{5, 1000, 12}, func(dp pmetric.HistogramDataPoint) { dp.SetMax(3) }))
	got = flatten(h.emitAt(20 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(1002), got[0].Count)
	// last bucket (2, +inf) capped by max 3: values 2.25 and 2.75 on top of 1000 values in (1, 2]
	assert.InDelta(t, 2.499, got[0].Quantiles[0.999], 1e-9)
}

func TestExponentialHistogram(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("latency", nil)))
	h.at(1 * sec)
	md, ms := newMD(nil)
	m := ms.AppendEmpty()
	m.SetName("latency")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := eh.DataPoints().AppendEmpty()
	dp.SetScale(0) // base 2
	dp.Positive().SetOffset(1)
	dp.Positive().BucketCounts().FromRaw([]uint64{2}) // (2, 4]
	dp.SetZeroCount(1)
	dp.Negative().SetOffset(0)
	dp.Negative().BucketCounts().FromRaw([]uint64{1}) // [-2, -1)
	dp.SetCount(4)
	h.consume(md)
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	// -1.5 0 2.5 3.5
	assert.Equal(t, uint64(4), got[0].Count)
	assert.InDelta(t, 4.5, got[0].Sum, 1e-9)
	assert.InDelta(t, 1.25, got[0].Quantiles[0.5], 1e-9)
	assert.InDelta(t, 3.5, got[0].Quantiles[0.99], 1e-9)
}

func TestDiffBuckets(t *testing.T) {
	rb := func(k int8, i int32, n uint64) rawBucket { return rawBucket{kind: k, index: i, n: n} }
	// exponential offset shift: a new lower bucket appears
	cur := []rawBucket{rb(kindPos, 3, 1), rb(kindPos, 4, 5), rb(kindPos, 5, 2)}
	prev := []rawBucket{rb(kindPos, 4, 3), rb(kindPos, 5, 2)}
	d, ok := diffBuckets(nil, cur, prev)
	require.True(t, ok)
	assert.Equal(t, []rawBucket{rb(kindPos, 3, 1), rb(kindPos, 4, 2), rb(kindPos, 5, 0)}, d)
	// a non-empty bucket vanished
	_, ok = diffBuckets(nil, prev[1:], prev)
	assert.False(t, ok)
	// an empty one may vanish
	_, ok = diffBuckets(nil, prev[:1], []rawBucket{rb(kindPos, 4, 3), rb(kindPos, 5, 0)})
	assert.True(t, ok)
	// decrease
	_, ok = diffBuckets(nil, []rawBucket{rb(kindPos, 4, 2)}, prev[:1])
	assert.False(t, ok)
}

func TestMalformedHistogramsDoNotCrash(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("latency", nil)))
	delta := pmetric.AggregationTemporalityDelta
	h.at(1 * sec)
	h.consume(histMD(delta, 0, 1*sec, []float64{1, 2}, []uint64{1, 2, 3, 4, 5}, nil)) // too many buckets
	h.consume(histMD(delta, 0, 1*sec, []float64{1, 2}, nil, nil))                     // count only
	h.consume(histMD(delta, 0, 1*sec, nil, []uint64{3}, func(dp pmetric.HistogramDataPoint) {
		dp.SetSum(6) // a single bucket: placed at the mean
	}))
	h.consume(histMD(delta, 0, 1*sec, []float64{1}, []uint64{1, 1}, func(dp pmetric.HistogramDataPoint) {
		dp.SetMin(math.NaN())
		dp.SetMax(math.Inf(1))
	}))
	// exponential with absurd scale/offsets
	md, ms := newMD(nil)
	m := ms.AppendEmpty()
	m.SetName("latency")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(delta)
	dp := eh.DataPoints().AppendEmpty()
	dp.SetScale(-20)
	dp.Positive().SetOffset(1 << 30)
	dp.Positive().BucketCounts().FromRaw([]uint64{1})
	h.consume(md)
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(5), got[0].Count, "3 at the mean 2, then 0.5 and 1 (open bucket at its bound)")
	assert.InDelta(t, 2.0, got[0].Quantiles[0.5], 1e-9)
}
