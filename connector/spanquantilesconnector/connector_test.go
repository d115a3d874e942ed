package spanquantilesconnector

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-iiot/otelcol-iiot/connector/spanquantilesconnector/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/connector/spanquantilesconnector/internal/metadatatest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

var t0 = time.Unix(1_700_000_000, 0).UTC()

type harness struct {
	t     *testing.T
	clock *clock.Manual
	sink  *consumertest.MetricsSink
	c     *spanQuantiles
	tel   *componenttest.Telemetry
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	cfg := createDefaultConfig().(*Config)
	if mod != nil {
		mod(cfg)
	}
	require.NoError(t, cfg.Validate())
	h := &harness{t: t, clock: clock.NewManual(t0), sink: new(consumertest.MetricsSink), tel: componenttest.NewTelemetry()}
	set := connectortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = h.tel.NewTelemetrySettings()
	var err error
	h.c, err = newConnector(set, cfg, h.sink, h.clock)
	require.NoError(t, err)
	require.NoError(t, h.c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, h.c.Shutdown(context.Background()))
		require.NoError(t, h.tel.Shutdown(context.Background()))
	})
	return h
}

type spanSpec struct {
	name   string
	kind   ptrace.SpanKind
	status ptrace.StatusCode
	dur    time.Duration
	attrs  map[string]any
}

func traces(res map[string]any, spans ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	_ = rs.Resource().Attributes().FromRaw(res)
	ss := rs.ScopeSpans().AppendEmpty()
	for _, sp := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetName(sp.name)
		s.SetKind(sp.kind)
		s.Status().SetCode(sp.status)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(sp.dur)))
		_ = s.Attributes().FromRaw(sp.attrs)
	}
	return td
}

func (h *harness) consume(td ptrace.Traces) {
	require.NoError(h.t, h.c.ConsumeTraces(context.Background(), td))
}

// emitAt advances the clock to t0+d (a slide boundary) and returns what the
// connector's goroutine emitted there.
func (h *harness) emitAt(d time.Duration) []pmetric.Metrics {
	require.Eventually(h.t, func() bool { return h.clock.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	h.sink.Reset()
	h.clock.Advance(t0.Add(d).Sub(h.clock.Now()))
	require.Eventually(h.t, func() bool {
		if h.clock.Waiters() != 1 || !h.c.mu.TryLock() {
			return false
		}
		h.c.mu.Unlock()
		return true
	}, 5*time.Second, time.Millisecond)
	return h.sink.AllMetrics()
}

type point struct {
	metric, res, attrs string
	count              uint64
	sum                float64
	q                  map[float64]float64
	value              float64
}

func flatten(mds []pmetric.Metrics) []point {
	str := func(m pcommon.Map) string {
		var p []string
		for k, v := range m.All() {
			p = append(p, k+"="+v.AsString())
		}
		sort.Strings(p)
		return strings.Join(p, ",")
	}
	var out []point
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				sm := rm.ScopeMetrics().At(j)
				for k := 0; k < sm.Metrics().Len(); k++ {
					m := sm.Metrics().At(k)
					if m.Type() == pmetric.MetricTypeGauge {
						for l := 0; l < m.Gauge().DataPoints().Len(); l++ {
							dp := m.Gauge().DataPoints().At(l)
							v := dp.DoubleValue()
							if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
								v = float64(dp.IntValue())
							}
							out = append(out, point{metric: m.Name(), res: str(rm.Resource().Attributes()), attrs: str(dp.Attributes()), value: v})
						}
						continue
					}
					for l := 0; l < m.Summary().DataPoints().Len(); l++ {
						dp := m.Summary().DataPoints().At(l)
						q := map[float64]float64{}
						for n := 0; n < dp.QuantileValues().Len(); n++ {
							q[dp.QuantileValues().At(n).Quantile()] = dp.QuantileValues().At(n).Value()
						}
						out = append(out, point{metric: m.Name() + "|" + m.Unit(), res: str(rm.Resource().Attributes()), attrs: str(dp.Attributes()), count: dp.Count(), sum: dp.Sum(), q: q})
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].metric+out[i].attrs < out[j].metric+out[j].attrs })
	return out
}

const ms = time.Millisecond

func TestSpanDurationQuantiles(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Dimensions = []Dimension{{Name: "device.id"}}
	})
	h.clock.Advance(time.Second)
	gw := map[string]any{"service.name": "otelcol-iiot", "device.id": "meter-1"}
	var polls []spanSpec
	for i := 1; i <= 10; i++ {
		polls = append(polls, spanSpec{name: "modbus.poll", kind: ptrace.SpanKindClient, dur: time.Duration(i) * 10 * ms})
	}
	h.consume(traces(gw, polls...))
	h.consume(traces(gw, spanSpec{name: "modbus.poll", kind: ptrace.SpanKindClient, status: ptrace.StatusCodeError, dur: 2 * time.Second}))
	// device.id on the span wins over the resource
	h.consume(traces(gw, spanSpec{name: "modbus.poll", kind: ptrace.SpanKindClient, dur: 7 * ms, attrs: map[string]any{"device.id": "meter-2"}}))
	// no service.name: unknown_service; no device.id: left out
	h.consume(traces(nil, spanSpec{name: "GET /", kind: ptrace.SpanKindServer, dur: 5 * ms}))
	// an unfinished span is ignored
	bad := traces(gw, spanSpec{name: "modbus.poll", kind: ptrace.SpanKindClient})
	bad.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetEndTimestamp(0)
	h.consume(bad)

	got := flatten(h.emitAt(10 * time.Second))
	require.Len(t, got, 4)
	all := map[string]point{}
	for _, p := range got {
		assert.Equal(t, "traces.span.duration.quantiles|s", p.metric)
		all[p.res+" "+p.attrs] = p
	}
	ok := all["service.name=otelcol-iiot device.id=meter-1,span.kind=SPAN_KIND_CLIENT,span.name=modbus.poll,status.code=STATUS_CODE_UNSET"]
	assert.Equal(t, uint64(10), ok.count)
	assert.InDelta(t, 0.55, ok.sum, 1e-9)
	assert.InDelta(t, 0.055, ok.q[0.5], 1e-9)
	assert.InDelta(t, 0.095, ok.q[0.9], 1e-9)
	assert.InDelta(t, 0.1, ok.q[0.99], 1e-9)
	errs := all["service.name=otelcol-iiot device.id=meter-1,span.kind=SPAN_KIND_CLIENT,span.name=modbus.poll,status.code=STATUS_CODE_ERROR"]
	assert.Equal(t, uint64(1), errs.count)
	assert.InDelta(t, 2.0, errs.q[0.999], 1e-9)
	other := all["service.name=otelcol-iiot device.id=meter-2,span.kind=SPAN_KIND_CLIENT,span.name=modbus.poll,status.code=STATUS_CODE_UNSET"]
	assert.InDelta(t, 0.007, other.q[0.5], 1e-9)
	unknown := all["service.name=unknown_service span.kind=SPAN_KIND_SERVER,span.name=GET /,status.code=STATUS_CODE_UNSET"]
	assert.Equal(t, uint64(1), unknown.count)

	metadatatest.AssertEqualConnectorSpanquantilesSeries(t, h.tel, []metricdata.DataPoint[int64]{{Value: 4}}, metricdatatest.IgnoreTimestamp())
}

func TestSpanFilterUnitGaugesAndDefaults(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.SpanNameRegex = `\.poll$`
		c.Unit = "ms"
		c.Name = "iiot.poll.latency"
		c.Outputs = quantile.OutputsConfig{Gauges: true}
		c.Quantiles = []float64{0.5}
		none := "none"
		c.Dimensions = []Dimension{{Name: "error.type", Default: &none}}
	})
	h.clock.Advance(time.Second)
	h.consume(traces(map[string]any{"service.name": "gw"},
		spanSpec{name: "opcua.poll", dur: 4 * ms},
		spanSpec{name: "opcua.read", dur: 3 * ms},
		spanSpec{name: "opcua.poll", dur: 8 * ms, attrs: map[string]any{"error.type": "timeout"}}))
	got := flatten(h.emitAt(10 * time.Second))
	vals := map[string]float64{}
	for _, p := range got {
		vals[p.metric+" "+p.attrs] = p.value
	}
	base := ",span.kind=SPAN_KIND_UNSPECIFIED,span.name=opcua.poll,status.code=STATUS_CODE_UNSET"
	assert.Equal(t, map[string]float64{
		"iiot.poll.latency.p50 error.type=none" + base:      4,
		"iiot.poll.latency.min error.type=none" + base:      4,
		"iiot.poll.latency.max error.type=none" + base:      4,
		"iiot.poll.latency.count error.type=none" + base:    1,
		"iiot.poll.latency.p50 error.type=timeout" + base:   8,
		"iiot.poll.latency.min error.type=timeout" + base:   8,
		"iiot.poll.latency.max error.type=timeout" + base:   8,
		"iiot.poll.latency.count error.type=timeout" + base: 1,
	}, vals)
}

func TestWindowAndMaxSeries(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSeries = 1; c.Window = 20 * time.Second })
	h.clock.Advance(time.Second)
	h.consume(traces(map[string]any{"service.name": "a"}, spanSpec{name: "x", dur: 1 * ms}, spanSpec{name: "y", dur: 1 * ms}))
	got := flatten(h.emitAt(10 * time.Second))
	require.Len(t, got, 1)
	metadatatest.AssertEqualConnectorSpanquantilesRefusedSpans(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	h.consume(traces(map[string]any{"service.name": "a"}, spanSpec{name: "x", dur: 3 * ms}))
	got = flatten(h.emitAt(20 * time.Second))
	require.Len(t, got, 1)
	assert.InDelta(t, 0.002, got[0].q[0.5], 1e-12, "1 ms and 3 ms")
	got = flatten(h.emitAt(30 * time.Second))
	require.Len(t, got, 1)
	assert.InDelta(t, 0.003, got[0].q[0.5], 1e-12, "the first slide left the window")
	assert.Equal(t, uint64(2), got[0].count, "summary count is cumulative")
	assert.Empty(t, h.emitAt(40*time.Second), "idle for a window")
	assert.Equal(t, 0, h.c.eng.Len())
}

func TestFactoryAndLifecycle(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	c, err := f.CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(metadata.Type), f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	assert.False(t, c.Capabilities().MutatesData)
	require.NoError(t, c.Shutdown(context.Background()), "shutdown without start")
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, c.Shutdown(context.Background()))
	require.NoError(t, c.Shutdown(context.Background()))
}

// Spans of different tenants never share a series: the resource attributes listed (tenant.id by
// default) stay on the output resource, so the quantiles go to their own tenant's backend.
func TestResourceAttributesKeepTenantsApart(t *testing.T) {
	h := newHarness(t, nil)
	h.clock.Advance(time.Second)
	poll := func(d time.Duration) spanSpec { return spanSpec{name: "modbus.poll", dur: d} }
	h.consume(traces(map[string]any{"service.name": "modbus", "tenant.id": "pv-owner", "site": "plant-1"}, poll(10*ms), poll(20*ms)))
	h.consume(traces(map[string]any{"service.name": "modbus", "tenant.id": "grid"}, poll(300*ms)))
	h.consume(traces(map[string]any{"service.name": "modbus"}, poll(5*ms)))

	got := flatten(h.emitAt(10 * time.Second))
	require.Len(t, got, 3)
	byRes := map[string]point{}
	for _, p := range got {
		byRes[p.res] = p
	}
	require.Contains(t, byRes, "service.name=modbus,tenant.id=pv-owner", "site is not kept by default")
	assert.Equal(t, uint64(2), byRes["service.name=modbus,tenant.id=pv-owner"].count)
	assert.InDelta(t, 0.3, byRes["service.name=modbus,tenant.id=grid"].q[0.5], 1e-9)
	assert.Equal(t, uint64(1), byRes["service.name=modbus"].count, "spans without a tenant keep their own series")

	h2 := newHarness(t, func(c *Config) { c.ResourceAttributes = []string{"site"} })
	h2.clock.Advance(time.Second)
	h2.consume(traces(map[string]any{"service.name": "modbus", "tenant.id": "pv-owner", "site": "plant-1"}, poll(10*ms)))
	h2.consume(traces(map[string]any{"service.name": "modbus", "tenant.id": "grid", "site": "plant-1"}, poll(30*ms)))
	got = flatten(h2.emitAt(10 * time.Second))
	require.Len(t, got, 1, "tenant.id no longer listed: one series per site")
	assert.Equal(t, "service.name=modbus,site=plant-1", got[0].res)
	assert.Equal(t, uint64(2), got[0].count)
}
