package tdigestprocessor

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadata"
)

var t0 = time.Unix(1_700_000_000, 0).UTC() // a multiple of 10 s

// harness is a processor with a fake clock whose output (pass-through and
// emitted quantiles alike) lands in sink.
type harness struct {
	t     *testing.T
	clock *clock.Manual
	sink  *consumertest.MetricsSink
	fail  *failSwitch
	pm    processor.Metrics
	p     *tdigestProcessor
	tel   *componenttest.Telemetry
}

func newHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	h := &harness{t: t, clock: clock.NewManual(t0), sink: new(consumertest.MetricsSink), tel: componenttest.NewTelemetry()}
	h.fail = &failSwitch{next: h.sink}
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = h.tel.NewTelemetrySettings()
	var err error
	h.pm, h.p, err = newMetricsProcessor(context.Background(), set, cfg, h.fail, h.clock)
	require.NoError(t, err)
	require.NoError(t, h.pm.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, h.pm.Shutdown(context.Background()))
		require.NoError(t, h.tel.Shutdown(context.Background()))
	})
	return h
}

func testConfig(mod func(*Config), metrics ...MetricConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Metrics = metrics
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

func sel(name string, mod func(*MetricConfig)) MetricConfig {
	m := defaultMetricConfig()
	m.Name = name
	if mod != nil {
		mod(&m)
	}
	return m
}

// consume sends md at the clock's current time; the pass-through part goes to the sink.
func (h *harness) consume(md pmetric.Metrics) {
	h.t.Helper()
	require.NoError(h.t, h.pm.ConsumeMetrics(context.Background(), md))
}

// at moves the fake clock to t0+d (forward only) without running the emitter.
func (h *harness) at(d time.Duration) {
	h.t.Helper()
	now := h.clock.Now()
	target := t0.Add(d)
	require.False(h.t, target.Before(now), "clock goes forward only")
	h.clock.Advance(target.Sub(now))
}

// emitAt moves the clock to t0+d, lets the processor's goroutine emit at
// that slide boundary and returns what it emitted.
func (h *harness) emitAt(d time.Duration) []pmetric.Metrics {
	h.t.Helper()
	require.Zero(h.t, t0.Add(d).UnixNano()%int64(h.p.cfg.Slide), "emit at a slide boundary")
	require.Eventually(h.t, func() bool { return h.clock.Waiters() == 1 }, 5*time.Second, time.Millisecond, "emitter armed")
	h.sink.Reset()
	// run the emit synchronously through the runner: advance fires the timer;
	// wait until the runner re-armed (its emit has returned)
	h.at(d)
	require.Eventually(h.t, func() bool {
		return h.clock.Waiters() == 1 && !h.emitting()
	}, 5*time.Second, time.Millisecond)
	out := slices.Clone(h.sink.AllMetrics())
	h.sink.Reset()
	return out
}

func (h *harness) emitting() bool {
	if !h.p.mu.TryLock() {
		return true
	}
	h.p.mu.Unlock()
	return false
}

// --- building input ------------------------------------------------------------------------

type kv = map[string]any

func newMD(res kv) (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(res)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("test")
	return md, sm.Metrics()
}

func gaugeMD(name, unit string, res, attrs kv, vals ...float64) pmetric.Metrics {
	md, ms := newMD(res)
	addGauge(ms, name, unit, attrs, vals...)
	return md
}

func addGauge(ms pmetric.MetricSlice, name, unit string, attrs kv, vals ...float64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	dps := m.SetEmptyGauge().DataPoints()
	for _, v := range vals {
		dp := dps.AppendEmpty()
		_ = dp.Attributes().FromRaw(attrs)
		dp.SetDoubleValue(v)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	}
}

// --- reading output --------------------------------------------------------------------------

// outPoint is one emitted data point, flattened.
type outPoint struct {
	Metric, Unit string
	Res, Attrs   string // sorted k=v lists
	Value        float64
	Count        uint64
	Sum          float64
	Quantiles    map[float64]float64
	Start, TS    time.Time
}

func attrString(m pcommon.Map) string {
	var parts []string
	for k, v := range m.All() {
		parts = append(parts, k+"="+v.AsString())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func flatten(mds []pmetric.Metrics) []outPoint {
	var out []outPoint
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			res := attrString(rm.Resource().Attributes())
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				sm := rm.ScopeMetrics().At(j)
				for k := 0; k < sm.Metrics().Len(); k++ {
					m := sm.Metrics().At(k)
					switch m.Type() {
					case pmetric.MetricTypeSummary:
						for l := 0; l < m.Summary().DataPoints().Len(); l++ {
							dp := m.Summary().DataPoints().At(l)
							q := map[float64]float64{}
							for n := 0; n < dp.QuantileValues().Len(); n++ {
								q[dp.QuantileValues().At(n).Quantile()] = dp.QuantileValues().At(n).Value()
							}
							out = append(out, outPoint{Metric: m.Name(), Unit: m.Unit(), Res: res, Attrs: attrString(dp.Attributes()),
								Count: dp.Count(), Sum: dp.Sum(), Quantiles: q, Start: dp.StartTimestamp().AsTime(), TS: dp.Timestamp().AsTime()})
						}
					case pmetric.MetricTypeGauge:
						for l := 0; l < m.Gauge().DataPoints().Len(); l++ {
							dp := m.Gauge().DataPoints().At(l)
							v := dp.DoubleValue()
							if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
								v = float64(dp.IntValue())
							}
							out = append(out, outPoint{Metric: m.Name(), Unit: m.Unit(), Res: res, Attrs: attrString(dp.Attributes()),
								Value: v, TS: dp.Timestamp().AsTime()})
						}
					default:
						out = append(out, outPoint{Metric: m.Name() + "(" + m.Type().String() + ")", Res: res})
					}
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return fmt.Sprint(out[i].Metric, out[i].Res, out[i].Attrs) < fmt.Sprint(out[j].Metric, out[j].Res, out[j].Attrs)
	})
	return out
}

func nil2tel(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// failSwitch forwards to next, or fails when err is set.
type failSwitch struct {
	next consumer.Metrics
	err  atomic.Pointer[error]
}

func (f *failSwitch) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (f *failSwitch) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if e := f.err.Load(); e != nil {
		return *e
	}
	return f.next.ConsumeMetrics(ctx, md)
}

func (f *failSwitch) set(err error) {
	if err == nil {
		f.err.Store(nil)
		return
	}
	f.err.Store(&err)
}
