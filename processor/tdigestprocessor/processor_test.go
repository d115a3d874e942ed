package tdigestprocessor

import (
	"context"
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

	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadatatest"
)

const sec = time.Second

// Values of several devices, grouped by protocol: other attributes are
// aggregated away, the summary carries the exact quantiles (few values), the
// input passes through.
func TestGaugeGroupBySummary(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("iiot.device.poll.duration", func(m *MetricConfig) {
		m.GroupBy = []string{"device.protocol"}
	})))
	h.at(1 * sec)
	md, ms := newMD(kv{"device.id": "m1", "device.protocol": "modbus"})
	addGauge(ms, "iiot.device.poll.duration", "s", kv{"error": "none"}, 1, 2, 3)
	addGauge(ms, "other.metric", "1", nil, 42)
	h.consume(md)
	h.consume(gaugeMD("iiot.device.poll.duration", "s", kv{"device.id": "m2", "device.protocol": "modbus"}, nil, 4, 5, 6, 7, 8, 9, 10))
	h.consume(gaugeMD("iiot.device.poll.duration", "s", kv{"device.id": "o1", "device.protocol": "opcua"}, nil, 0.5))
	// pass-through: all three batches went on unchanged
	require.Len(t, h.sink.AllMetrics(), 3)
	assert.Equal(t, 4, h.sink.AllMetrics()[0].DataPointCount())

	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 2)
	modbus, opcua := got[0], got[1]
	assert.Equal(t, "iiot.device.poll.duration.quantiles", modbus.Metric)
	assert.Equal(t, "s", modbus.Unit)
	assert.Equal(t, "device.protocol=modbus", modbus.Res, "group_by key kept where it was (resource)")
	assert.Equal(t, "", modbus.Attrs, "other attributes aggregated away")
	assert.Equal(t, uint64(10), modbus.Count)
	assert.Equal(t, 55.0, modbus.Sum)
	// values 1..10: Hyndman-Fan 5 quantiles
	assert.Equal(t, map[float64]float64{0.5: 5.5, 0.9: 9.5, 0.99: 10, 0.999: 10}, modbus.Quantiles)
	assert.Equal(t, t0.Add(10*sec), modbus.TS)
	assert.Equal(t, t0.Add(1*sec), modbus.Start, "series start")
	assert.Equal(t, "device.protocol=opcua", opcua.Res)
	assert.Equal(t, map[float64]float64{0.5: 0.5, 0.9: 0.5, 0.99: 0.5, 0.999: 0.5}, opcua.Quantiles)

	metadatatest.AssertEqualProcessorTdigestSeries(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
}

// Gauges output: <name>.p50 ... plus min/max/count; point attributes in group_by stay on the point.
func TestGaugesOutputAndPointAttributes(t *testing.T) {
	h := newHarness(t, testConfig(func(c *Config) { c.Quantiles = []float64{0.05, 0.5, 0.999} },
		sel("temp", func(m *MetricConfig) {
			m.GroupBy = []string{"sensor"}
			m.Outputs = quantile.OutputsConfig{Gauges: true}
			m.OutputName = "temp.window"
		})))
	h.at(3 * sec)
	h.consume(gaugeMD("temp", "Cel", kv{"site": "a"}, kv{"sensor": "s1", "rack": "r1"}, 20, 21, 22, 23))
	got := flatten(h.emitAt(10 * sec))
	names := map[string]float64{}
	for _, p := range got {
		assert.Equal(t, "sensor=s1", p.Attrs)
		assert.Equal(t, "", p.Res)
		names[p.Metric] = p.Value
	}
	assert.Equal(t, map[string]float64{
		"temp.window.p05": 20, "temp.window.p50": 21.5, "temp.window.p999": 23,
		"temp.window.min": 20, "temp.window.max": 23, "temp.window.count": 4,
	}, names)
	for _, p := range got {
		if p.Metric == "temp.window.count" {
			assert.Equal(t, "{count}", p.Unit)
		} else {
			assert.Equal(t, "Cel", p.Unit)
		}
	}
}

// Values leave the window when their slide ages out; series idle for a whole
// window are dropped.
func TestWindowSemanticsAndIdleRemoval(t *testing.T) {
	h := newHarness(t, testConfig(func(c *Config) { c.Window = 30 * sec }, sel("v", func(m *MetricConfig) { m.GroupBy = []string{} })))
	h.at(1 * sec)
	h.consume(gaugeMD("v", "", nil, nil, 1))
	h.at(11 * sec)
	h.consume(gaugeMD("v", "", nil, nil, 2))
	h.at(21 * sec)
	h.consume(gaugeMD("v", "", nil, nil, 3))
	h.at(29 * sec) // the emitter did not run yet: it fires at the next boundary
	steps := []struct {
		at    time.Duration
		count uint64 // total since start
		p50   float64
	}{
		{30 * sec, 3, 2},   // 1,2,3
		{40 * sec, 3, 2.5}, // 2,3
		{50 * sec, 3, 3},   // 3
	}
	// the harness fast-forwards: emit at 10 and 20 first
	for _, st := range steps {
		got := flatten(h.emitAt(st.at))
		require.Len(t, got, 1, "at %v", st.at)
		assert.Equal(t, st.count, got[0].Count)
		assert.Equal(t, st.p50, got[0].Quantiles[0.5], "at %v", st.at)
	}
	assert.Equal(t, 1, h.p.eng.Len())
	assert.Empty(t, h.emitAt(60*sec), "idle for a window: nothing emitted")
	assert.Equal(t, 0, h.p.eng.Len(), "and the series is dropped")
	metadatatest.AssertEqualProcessorTdigestSeries(t, h.tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
}

func TestMaxSeriesRefusesAndCounts(t *testing.T) {
	h := newHarness(t, testConfig(func(c *Config) { c.MaxSeries = 2 }, sel("v", func(m *MetricConfig) { m.GroupBy = []string{"id"} })))
	h.at(1 * sec)
	for _, id := range []string{"a", "b", "c", "d"} {
		h.consume(gaugeMD("v", "", nil, kv{"id": id}, 1, 2))
	}
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 2)
	assert.Equal(t, "id=a", got[0].Attrs)
	assert.Equal(t, "id=b", got[1].Attrs)
	metadatatest.AssertEqualProcessorTdigestRefusedDataPoints(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 4, Attributes: attribute.NewSet(attribute.String("reason", "max_series"))},
	}, metricdatatest.IgnoreTimestamp())
	// refused points still pass through
	assert.Equal(t, 0, h.sink.DataPointCount(), "sink was reset by emitAt")
}

func TestPassThroughFalseRemovesOnlySelectedPoints(t *testing.T) {
	h := newHarness(t, testConfig(nil,
		sel("v", func(m *MetricConfig) { m.PassThrough = false; m.Attributes = map[string]string{"keep": "no"} }),
		sel("w", func(m *MetricConfig) { m.PassThrough = false })))
	assert.True(t, h.pm.Capabilities().MutatesData)
	h.at(1 * sec)
	md, ms := newMD(kv{"r": "1"})
	addGauge(ms, "v", "", kv{"keep": "no"}, 1, 2)
	addGauge(ms, "v", "", kv{"keep": "yes"}, 3)
	addGauge(ms, "x", "", nil, 4)
	h.consume(md)
	// all of w's points are removed: the whole batch is dropped
	h.consume(gaugeMD("w", "", nil, nil, 5))
	require.Len(t, h.sink.AllMetrics(), 1)
	left := flatten(h.sink.AllMetrics())
	require.Len(t, left, 2)
	assert.Equal(t, "v", left[0].Metric)
	assert.Equal(t, "x", left[1].Metric)
	out := h.sink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	assert.Equal(t, 1, out.At(0).Gauge().DataPoints().Len())
	v, _ := out.At(0).Gauge().DataPoints().At(0).Attributes().Get("keep")
	assert.Equal(t, "yes", v.Str())

	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 2)
	assert.Equal(t, uint64(2), got[0].Count, "only keep=no points digested")
	assert.Equal(t, "w.quantiles", got[1].Metric)
}

// Without group_by every input stream is its own series with all attributes;
// regex selectors and the first-match rule.
func TestGroupAllAndRegex(t *testing.T) {
	h := newHarness(t, testConfig(nil,
		sel("", func(m *MetricConfig) {
			m.Regex = `^inv\.`
			m.Attributes = map[string]string{"site": "north"}
			m.OutputName = "north"
		}),
		sel("", func(m *MetricConfig) { m.Regex = `^inv\.` })))
	h.at(1 * sec)
	h.consume(gaugeMD("inv.power", "W", kv{"site": "north", "dev": "1"}, kv{"phase": "a"}, 10))
	h.consume(gaugeMD("inv.power", "W", kv{"dev": "1", "site": "north"}, kv{"phase": "a"}, 20)) // same stream, other order
	h.consume(gaugeMD("inv.power", "W", kv{"site": "south", "dev": "2"}, kv{"phase": "a"}, 30))
	h.consume(gaugeMD("inv.voltage", "V", kv{"site": "south", "dev": "2"}, nil, 230))
	h.consume(gaugeMD("other", "V", kv{"site": "south"}, nil, 1))
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 3)
	assert.Equal(t, "inv.power.quantiles", got[0].Metric)
	assert.Equal(t, "dev=2,site=south", got[0].Res)
	assert.Equal(t, "phase=a", got[0].Attrs)
	assert.Equal(t, uint64(1), got[0].Count)
	assert.Equal(t, "inv.voltage.quantiles", got[1].Metric)
	assert.Equal(t, "north.quantiles", got[2].Metric)
	assert.Equal(t, "dev=1,site=north", got[2].Res)
	assert.Equal(t, uint64(2), got[2].Count)
	assert.Equal(t, 15.0, got[2].Quantiles[0.5])
}

func TestSkipsNoRecordedValueNaNAndUnsupported(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("v", nil)))
	h.at(1 * sec)
	md := gaugeMD("v", "", nil, nil, 1, math.NaN(), math.Inf(1), 2)
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	dps.At(0).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	dps.At(3).SetIntValue(7)
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	m.SetName("v")
	m.SetEmptySummary().DataPoints().AppendEmpty().SetCount(3)
	m = md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	m.SetName("v") // a metric without data
	h.consume(md)
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, uint64(1), got[0].Count)
	assert.Equal(t, 7.0, got[0].Quantiles[0.5], "int value")
}

// The emitter runs on its own at every boundary; downstream errors do not stop it.
func TestEmitterGoroutineAndDownstreamError(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("v", nil)))
	h.at(1 * sec)
	h.consume(gaugeMD("v", "", nil, nil, 1))
	h.fail.set(assert.AnError)
	require.Eventually(t, func() bool { return h.clock.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	h.at(10 * sec)
	require.Eventually(t, func() bool { return h.clock.Waiters() == 1 && !h.emitting() }, 5*time.Second, time.Millisecond)
	assert.True(t, func() bool { h.p.mu.Lock(); defer h.p.mu.Unlock(); return h.p.failing }())
	h.fail.set(nil)
	got := flatten(h.emitAt(20 * sec))
	require.Len(t, got, 1)
	assert.False(t, h.p.failing)
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	cfg := testConfig(nil, sel("v", nil))
	pm, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(nil2tel(t)), cfg, nil)
	require.NoError(t, err)
	require.NoError(t, pm.Shutdown(context.Background()))
	require.NoError(t, pm.Shutdown(context.Background()))
	assert.False(t, pm.Capabilities().MutatesData)
}

func TestSeriesStartTimeIsFirstValue(t *testing.T) {
	h := newHarness(t, testConfig(nil, sel("v", nil)))
	h.at(5 * sec)
	h.consume(gaugeMD("v", "", nil, nil, 1))
	h.at(15 * sec)
	h.consume(gaugeMD("v", "", nil, nil, 3))
	got := flatten(h.emitAt(20 * sec))
	require.Len(t, got, 1)
	assert.Equal(t, t0.Add(5*sec), got[0].Start)
	assert.Equal(t, uint64(2), got[0].Count)
	assert.Equal(t, 4.0, got[0].Sum)
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(20*sec)).AsTime(), got[0].TS)
}
