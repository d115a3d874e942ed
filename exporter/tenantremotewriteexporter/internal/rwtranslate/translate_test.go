package rwtranslate

import (
	"math"
	"runtime"
	"sync"
	"testing"

	prometheustranslator "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheus"
	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/featuregate"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// settingsCases are the edge's and the gateway's settings and the other values of each supported one.
var settingsCases = map[string]prwt.Settings{
	"edge":             {AddMetricSuffixes: true, DisableScopeInfo: true},
	"defaults":         {},
	"scope info":       {AddMetricSuffixes: true},
	"no target_info":   {DisableTargetInfo: true, AddMetricSuffixes: true, DisableScopeInfo: true},
	"namespace":        {Namespace: "plant", AddMetricSuffixes: true},
	"external labels":  {ExternalLabels: map[string]string{"cluster": "gw-1", "job": "ext", "tenant_id": "ext"}, AddMetricSuffixes: true},
	"strategy utf8":    {TranslationStrategy: "NoUTF8EscapingWithSuffixes"},
	"strategy none":    {TranslationStrategy: "NoTranslation", Namespace: "ns"},
	"strategy escaped": {TranslationStrategy: "UnderscoreEscapingWithoutSuffixes", AddMetricSuffixes: true},
	"strategy unknown": {TranslationStrategy: "Bogus", AddMetricSuffixes: true},
}

var goldens = map[string][]string{
	"modbus fields":   {"receiver", "modbusreceiver", "testdata", "golden", "fields.yaml"},
	"modbus profiles": {"receiver", "modbusreceiver", "testdata", "golden", "profiles.yaml"},
	"opcua":           {"receiver", "opcuareceiver", "testdata", "golden", "poll.yaml"},
	"dlt645":          {"receiver", "dlt645receiver", "testdata", "golden", "poll.yaml"},
	"tdigest by device": {
		"processor", "tdigestprocessor", "testdata", "golden", "poll_duration_by_device", "expected.yaml",
	},
	"tdigest all attributes": {
		"processor", "tdigestprocessor", "testdata", "golden", "histogram_all_attributes", "expected.yaml",
	},
}

func TestGoldensAsContrib(t *testing.T) {
	batches := map[string]pmetric.Metrics{"edge tick": tickBatch(t, 3)}
	for name, path := range goldens {
		batches[name] = readGolden(t, path...)
	}
	for sname, settings := range settingsCases {
		tr, err := New(settings)
		require.NoError(t, err)
		for bname, md := range batches {
			t.Run(sname+"/"+bname, func(t *testing.T) {
				got, _ := tr.Translate(md)
				require.NotEmpty(t, got)
				// Warm, and warm again: the cache must not change the output.
				for range 2 {
					requireSame(t, settings, tr, md)
				}
			})
		}
	}
}

// TestPermissiveSanitization: with contrib's feature gate that keeps leading underscores and
// repeated ones, labels are still contrib's.
func TestPermissiveSanitization(t *testing.T) {
	gate := prometheustranslator.DropSanitizationGate
	require.NoError(t, featuregate.GlobalRegistry().Set(gate.ID(), true))
	t.Cleanup(func() { require.NoError(t, featuregate.GlobalRegistry().Set(gate.ID(), false)) })
	settings := prwt.Settings{AddMetricSuffixes: true}
	tr, err := New(settings)
	require.NoError(t, err)
	md, ms := batch(map[string]any{"service.name": "s", "_res": "r", "a__b": "r"})
	gauge(ms, "g", "", map[string]any{"_x": "1", "a__b": "2", "__y": "3", "c.__d": "4"}, 1)
	requireSame(t, settings, tr, md)
	requireSame(t, settings, tr, md)
	got, err := tr.Translate(md)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, ts := range got {
		for _, l := range ts.Labels {
			names[l.Name] = true
		}
	}
	assert.True(t, names["_x"] && names["a__b"], "the gate's labels: %v", names)
}

func TestNewRefuses(t *testing.T) {
	_, err := New(prwt.Settings{SendMetadata: true})
	require.ErrorContains(t, err, "SendMetadata")
	_, err = New(prwt.Settings{ConvertExplicitHistogramsToNHCB: true})
	require.ErrorContains(t, err, "ConvertExplicitHistogramsToNHCB")
	_, err = New(prwt.Settings{KeepClassicHistograms: true})
	require.NoError(t, err, "KeepClassicHistograms does nothing without NHCB")
}

// batch is a resource with one scope to which the cases add their metrics.
func batch(resource map[string]any) (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(resource)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver")
	sm.Scope().SetVersion("1.2.3")
	sm.Scope().Attributes().PutStr("scope.attr", "s")
	sm.Scope().Attributes().PutStr("name", "ignored")
	return md, sm.Metrics()
}

var device = map[string]any{"service.name": "modbus", "service.instance.id": "dev-1", "device.id": "dev-1", "site": "lab"}

func gauge(ms pmetric.MetricSlice, name, unit string, attrs map[string]any, values ...float64) pmetric.NumberDataPointSlice {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	dps := m.SetEmptyGauge().DataPoints()
	for i, v := range values {
		p := dps.AppendEmpty()
		p.SetTimestamp(pcommon.Timestamp(1_700_000_000_123_456_789 + i))
		p.SetDoubleValue(v)
		_ = p.Attributes().FromRaw(attrs)
	}
	return dps
}

func sum(ms pmetric.MetricSlice, name, unit string, monotonic bool, attrs map[string]any, values ...int64) pmetric.NumberDataPointSlice {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	s := m.SetEmptySum()
	s.SetIsMonotonic(monotonic)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, v := range values {
		p := s.DataPoints().AppendEmpty()
		p.SetStartTimestamp(1_600_000_000_000_000_000)
		p.SetTimestamp(1_700_000_000_000_000_000)
		p.SetIntValue(v)
		_ = p.Attributes().FromRaw(attrs)
	}
	return s.DataPoints()
}

func exemplar(e pmetric.Exemplar, v float64) {
	e.SetDoubleValue(v)
	e.SetTimestamp(1_700_000_000_999_000_000)
	e.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	e.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
}

func histogram(ms pmetric.MetricSlice, name string, attrs map[string]any, bounds []float64, counts []uint64) pmetric.HistogramDataPoint {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := h.DataPoints().AppendEmpty()
	p.SetTimestamp(1_700_000_000_000_000_000)
	p.ExplicitBounds().FromRaw(bounds)
	p.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	p.SetCount(n)
	p.SetSum(1.5)
	_ = p.Attributes().FromRaw(attrs)
	return p
}

// TestCasesAsContrib are the corners of contrib's rules, each under every settings case.
func TestCasesAsContrib(t *testing.T) {
	cases := map[string]func() pmetric.Metrics{
		"names to sanitize": func() pmetric.Metrics {
			md, ms := batch(device)
			gauge(ms, "electrical.power-active", "W", map[string]any{"phase.id": "L1", "1st": "x", "_under": "u", "ü": "y", "a b": "z"}, 1)
			gauge(ms, "Äpfel.count", "{apple}", nil, 2)
			gauge(ms, "__reserved__", "", map[string]any{"__name__": "overwritten", "__x__": "kept"}, 3)
			return md
		},
		"unit suffixes": func() pmetric.Metrics {
			md, ms := batch(device)
			sum(ms, "iiot.device.requests", "{request}", true, nil, 10)
			gauge(ms, "iiot.device.up", "1", nil, 1)
			gauge(ms, "ratio", "1", nil, 0.5)
			sum(ms, "errors_total", "1", true, nil, 1)
			gauge(ms, "poll.duration", "s", nil, 0.01)
			gauge(ms, "ms.already", "ms", nil, 10)
			sum(ms, "memory", "By", false, nil, 1024)
			sum(ms, "electrical.energy.active", "watt_hours", true, nil, 100)
			gauge(ms, "temperature", "Cel", nil, 21.5)
			gauge(ms, "speed", "m/s", nil, 3)
			gauge(ms, "share", "%", nil, 12)
			return md
		},
		"collisions": func() pmetric.Metrics {
			md, ms := batch(device)
			// Two attributes onto one label name: values joined, equal values once.
			gauge(ms, "v", "V", map[string]any{"a.b": "1", "a_b": "2", "a-b": "2"}, 230)
			gauge(ms, "w", "V", map[string]any{"x.y": "same", "x_y": "same"}, 231)
			// Attributes named as job, instance, le, quantile.
			gauge(ms, "job.like", "", map[string]any{"job": "attr", "instance": "attr", "le": "attr", "quantile": "q"}, 1)
			// Two metrics onto one series: samples of one series.
			gauge(ms, "power.active", "W", map[string]any{"p": "1"}, 1)
			gauge(ms, "power_active", "W", map[string]any{"p": "1"}, 2)
			// One metric's two points onto one series.
			gauge(ms, "dup", "", map[string]any{"k": "v"}, 1, 2)
			// Attributes that sanitize alike on two points of one metric.
			gauge(ms, "alike", "", map[string]any{"a.b": "v"}, 1)
			gauge(ms, "alike", "", map[string]any{"a_b": "v"}, 2)
			return md
		},
		"empty and missing values": func() pmetric.Metrics {
			md, ms := batch(map[string]any{"service.name": "", "service.namespace": "", "service.instance.id": "", "x": ""})
			dps := gauge(ms, "g", "", map[string]any{"empty": "", "int": 7, "bool": true, "double": 1.25, "bytes": []byte{1, 2}, "map": map[string]any{"k": "v"}, "slice": []any{1, "a"}}, 1)
			dps.At(0).Attributes().PutEmpty("nil")
			p := dps.AppendEmpty()
			p.SetTimestamp(5)
			md2, ms2 := batch(map[string]any{"service.namespace": "ns"})
			gauge(ms2, "only.namespace", "", nil, 1)
			md2.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
			md3, ms3 := batch(map[string]any{"service.namespace": "ns", "service.name": "svc"})
			gauge(ms3, "namespaced", "", nil, 1)
			md3.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
			md4, ms4 := batch(nil)
			gauge(ms4, "no.resource", "", nil, 1)
			md4.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
			return md
		},
		"NaN, Inf and stale": func() pmetric.Metrics {
			md, ms := batch(device)
			dps := gauge(ms, "g", "", nil, math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1))
			dps.At(3).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			h := histogram(ms, "h", nil, []float64{math.Inf(-1), 0, math.NaN(), math.Inf(1)}, []uint64{1, 2, 3, 4, 5})
			h.SetSum(math.NaN())
			st := histogram(ms, "stale.h", nil, []float64{1, 2}, []uint64{1, 2, 3})
			st.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			return md
		},
		"exemplars": func() pmetric.Metrics {
			md, ms := batch(device)
			// A gauge's exemplars are dropped, a counter's kept, a histogram's go to their bucket.
			exemplar(gauge(ms, "poll.duration", "s", nil, 0.01).At(0).Exemplars().AppendEmpty(), 0.01)
			c := sum(ms, "requests", "{request}", true, nil, 5).At(0)
			exemplar(c.Exemplars().AppendEmpty(), 5)
			e := c.Exemplars().AppendEmpty()
			e.SetIntValue(3)
			e.FilteredAttributes().PutStr("short", "kept")
			e = c.Exemplars().AppendEmpty()
			exemplar(e, 4)
			e.FilteredAttributes().PutStr("long", string(make([]byte, 100)))
			exemplar(sum(ms, "updown", "", false, nil, 5).At(0).Exemplars().AppendEmpty(), 1)
			h := histogram(ms, "latency", map[string]any{"op": "read"}, []float64{0.1, 1, math.Copysign(0, -1), 0}, []uint64{1, 2, 3, 4, 5})
			for _, v := range []float64{0.05, 0.5, 5, -1, 0, math.NaN()} {
				exemplar(h.Exemplars().AppendEmpty(), v)
			}
			return md
		},
		"histograms and summaries": func() pmetric.Metrics {
			md, ms := batch(device)
			h := histogram(ms, "sizes", map[string]any{"k": "v"}, []float64{1, 2, 3}, []uint64{1, 2})
			h.RemoveSum()
			histogram(ms, "no.buckets", nil, nil, nil)
			histogram(ms, "more.counts", nil, []float64{1}, []uint64{1, 2, 3})
			m := ms.AppendEmpty()
			m.SetName("rpc.duration")
			m.SetUnit("ms")
			for i, attrs := range []map[string]any{{"op": "a"}, {"op": "a"}, {"op": "b"}} {
				p := m.SetEmptySummary().DataPoints().AppendEmpty()
				if i == 0 {
					p = m.Summary().DataPoints().At(0)
				}
				p.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i*1_000_000))
				p.SetCount(uint64(10 + i))
				p.SetSum(float64(i))
				_ = p.Attributes().FromRaw(attrs)
				for _, q := range []float64{0, 0.5, 0.99, 1} {
					qv := p.QuantileValues().AppendEmpty()
					qv.SetQuantile(q)
					qv.SetValue(q * 10)
				}
				if i == 2 {
					p.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
				}
			}
			return md
		},
		"exponential histograms": func() pmetric.Metrics {
			md, ms := batch(device)
			m := ms.AppendEmpty()
			m.SetName("exp")
			m.SetUnit("s")
			eh := m.SetEmptyExponentialHistogram()
			eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for _, scale := range []int32{-5, 0, 3, 10} {
				p := eh.DataPoints().AppendEmpty()
				p.SetTimestamp(1_700_000_000_000_000_000)
				p.SetScale(scale)
				p.SetCount(20)
				p.SetSum(3)
				p.SetZeroCount(1)
				p.Positive().SetOffset(-3)
				p.Positive().BucketCounts().FromRaw([]uint64{1, 0, 0, 0, 0, 2, 3, 0, 4})
				p.Negative().BucketCounts().FromRaw([]uint64{5})
				p.Attributes().PutInt("scale", int64(scale))
				exemplar(p.Exemplars().AppendEmpty(), 1)
			}
			return md
		},
		"errors": func() pmetric.Metrics {
			md, ms := batch(device)
			gauge(ms, "ok", "", nil, 1)
			d := ms.AppendEmpty()
			d.SetName("delta")
			d.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			d.Sum().DataPoints().AppendEmpty().SetTimestamp(9_000_000_000)
			ms.AppendEmpty().SetName("no.type")
			gauge(ms, "__", "", nil, 1)
			gauge(ms, "no.points", "", nil)
			gauge(ms, "bad.label", "", map[string]any{"__": "x"}, 1, 2)
			gauge(ms, "", "", nil, 1)
			histogram(ms, "bad.hist", map[string]any{"_": "x"}, []float64{1}, []uint64{1})
			md2, ms2 := batch(map[string]any{"service.name": "s", "__": "bad resource label"})
			gauge(ms2, "g", "", nil, 1)
			md2.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
			return md
		},
		"target_info": func() pmetric.Metrics {
			md := pmetric.NewMetrics()
			for _, res := range []map[string]any{
				{"service.name": "a", "service.namespace": "ns", "service.instance.id": "i", "host.name": "h", "device.model.name": "PM-1"},
				{"service.name": "only.job"},
				{"service.instance.id": "only.instance", "x": "1"},
				{"service.name": "a", "service.namespace": "ns", "service.instance.id": "i"},
				{"x": "no identifier"},
				{"service.name": "", "x": "empty job"},
			} {
				md1, ms := batch(res)
				gauge(ms, "g", "", nil, 1)
				md1.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
			}
			// No point with a time: no target_info.
			md1, ms := batch(map[string]any{"service.name": "t0", "x": "1"})
			ms.AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
			ms.At(0).SetName("zero.time")
			md1.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
			return md
		},
	}
	for sname, settings := range settingsCases {
		tr, err := New(settings)
		require.NoError(t, err)
		for cname, build := range cases {
			t.Run(sname+"/"+cname, func(t *testing.T) {
				md := build()
				for range 2 {
					requireSame(t, settings, tr, md)
				}
			})
		}
	}
}

// TestChangedAttributeValue: the same series coming back with another attribute value (a device's
// firmware, a tenant moved) gets labels of its own value, and the old value's come back too.
func TestChangedAttributeValue(t *testing.T) {
	settings := prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true}
	tr, err := New(settings)
	require.NoError(t, err)
	build := func(tenant, instance string, phase any) pmetric.Metrics {
		md, ms := batch(map[string]any{"service.name": "modbus", "service.instance.id": instance, "x": "1"})
		gauge(ms, "voltage", "V", map[string]any{"tenant.id": tenant, "phase": phase}, 230)
		return md
	}
	for _, md := range []pmetric.Metrics{
		build("a", "dev-1", "L1"), build("b", "dev-1", "L1"), build("a", "dev-2", "L1"),
		build("a", "dev-1", 1), build("a", "dev-1", "1"), build("a", "dev-1", "L1"),
	} {
		requireSame(t, settings, tr, md)
		got, err := tr.Translate(md)
		require.NoError(t, err)
		labels := map[string]string{}
		for _, ts := range got {
			for _, l := range ts.Labels {
				if l.Name == "__name__" && l.Value != "voltage_volts" {
					break
				}
				labels[l.Name] = l.Value
			}
		}
		p := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
		tenant, _ := p.Attributes().Get("tenant.id")
		phase, _ := p.Attributes().Get("phase")
		inst, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("service.instance.id")
		assert.Equal(t, tenant.AsString(), labels["tenant_id"])
		assert.Equal(t, phase.AsString(), labels["phase"])
		assert.Equal(t, inst.AsString(), labels["instance"])
	}
}

// TestCacheBounded: a value that changes every call (or devices that come and go) leaves at most
// the entries of the last maxIdle calls, and idle calls empty the cache.
func TestCacheBounded(t *testing.T) {
	settings := prwt.Settings{AddMetricSuffixes: true}
	tr, err := New(settings)
	require.NoError(t, err)
	size := func() int {
		tr.mu.RLock()
		defer tr.mu.RUnlock()
		return len(tr.entries)
	}
	perCall := 0
	for i := range 1000 {
		md, ms := batch(map[string]any{"service.name": "s", "service.instance.id": i})
		gauge(ms, "g", "", map[string]any{"seq": i}, 1)
		sum(ms, "c", "", true, map[string]any{"seq": i}, 1)
		if i%100 == 0 {
			requireSame(t, settings, tr, md)
		} else {
			_, err := tr.Translate(md)
			require.NoError(t, err)
		}
		if i == 0 {
			perCall = size()
		}
		// Names (2) stay; each call adds its points' and target_info's entries.
		require.LessOrEqual(t, size(), int(tr.maxIdle+tr.sweepEvery+1)*perCall)
	}
	require.Greater(t, size(), perCall)
	for range tr.maxIdle + tr.sweepEvery {
		_, err := tr.Translate(pmetric.NewMetrics())
		require.NoError(t, err)
	}
	require.Zero(t, size())

	// The hard cap: one call with more new series than maxEntries remembers maxEntries of them and
	// still translates them all.
	tr.maxEntries = 100
	md, ms := batch(map[string]any{"service.name": "s"})
	attrs := make([]map[string]any, 500)
	for i := range attrs {
		attrs[i] = map[string]any{"i": i}
		gauge(ms, "g", "", attrs[i], 1)
	}
	requireSame(t, settings, tr, md)
	require.Equal(t, 100, size())
	requireSame(t, settings, tr, md)
	// the shared label strings too: 500 values of "i", each series still has its own value
	tr.internMu.Lock()
	require.LessOrEqual(t, len(tr.strs), 100)
	tr.internMu.Unlock()
}

// TestConcurrent translates from several goroutines at once with one cache (run with -race).
func TestConcurrent(t *testing.T) {
	settings := prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true}
	tr, err := New(settings)
	require.NoError(t, err)
	tr.sweepEvery = 2
	tr.maxIdle = 3
	mds := []pmetric.Metrics{tickBatch(t, 2), readGolden(t, goldens["opcua"]...), readGolden(t, goldens["dlt645"]...)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				md := mds[(g+i)%len(mds)]
				want, wantErr := prwt.FromMetrics(md, settings)
				got, err := tr.Translate(md)
				assert.Equal(t, wantErr, err)
				wantBytes, _ := canonical(t, values(want))
				gotBytes, _ := canonical(t, got)
				assert.Equal(t, wantBytes, gotBytes)
			}
		}()
	}
	wg.Wait()
}

// TestWarmAllocations: with the cache warm, a tick's translation allocates per call (the series,
// their samples), not per point or per metric. 50 devices are 850 points and 700 metrics.
func TestWarmAllocations(t *testing.T) {
	tr, err := New(prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true})
	require.NoError(t, err)
	md := tickBatch(t, 50)
	_, err = tr.Translate(md)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(5, func() {
		_, _ = tr.Translate(md)
	})
	require.Less(t, allocs, 50.0)
}

// TestWarmAllocationsSeveralPolls: a batch of 5 polls (a 5 s flush) gives each series 5 samples;
// they go to room reserved in the arena after the first such call, not to a slice per series grown
// 1, 2, 4, 8 (3 allocations per series, 2,550 here, on the old arena).
func TestWarmAllocationsSeveralPolls(t *testing.T) {
	tr, err := New(prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true})
	require.NoError(t, err)
	tick := tickBatch(t, 50)
	md := pmetric.NewMetrics()
	for range 5 {
		for _, rm := range tick.ResourceMetrics().All() {
			rm.CopyTo(md.ResourceMetrics().AppendEmpty())
		}
	}
	series, err := tr.Translate(md)
	require.NoError(t, err)
	for _, ts := range series {
		require.Len(t, ts.Samples, 5)
	}
	allocs := testing.AllocsPerRun(5, func() {
		_, _ = tr.Translate(md)
	})
	t.Logf("%.0f allocations", allocs)
	require.Less(t, allocs, 50.0)
}

// TestCacheBytesPerSeries: what a warm cache keeps per series of the edge's 50-device site (the
// footprint benchmark's 2,800 series): 1,279 bytes a series when each series had its own copies of
// every label string and a label array grown by append, ~800 with exact arrays and shared strings.
func TestCacheBytesPerSeries(t *testing.T) {
	md := tickBatch(t, 150)
	heap := func() uint64 {
		var m runtime.MemStats
		for range 3 { // the calls' pool is only emptied by the second collection
			runtime.GC()
		}
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	tr, err := New(prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true})
	require.NoError(t, err)
	out, err := tr.Translate(md)
	require.NoError(t, err)
	series := len(out)
	out = nil
	perSeries := float64(heap()-before) / float64(series)
	t.Logf("%d series, %.0f bytes each", series, perSeries)
	assert.Less(t, perSeries, 1000.0)
	runtime.KeepAlive(md)
	runtime.KeepAlive(tr)
	runtime.KeepAlive(out)
}

// TestSweepKeepsEntriesOfLaterCalls: a call's sweep that runs after a concurrent, later call used an
// entry keeps it (the later call's generation is newer than the sweeping call's).
func TestSweepKeepsEntriesOfLaterCalls(t *testing.T) {
	tr, err := New(prwt.Settings{})
	require.NoError(t, err)
	md, ms := batch(device)
	gauge(ms, "g", "", nil, 1)
	_, err = tr.Translate(md) // gen 1
	require.NoError(t, err)
	before := len(tr.entries)
	require.Positive(t, before)

	// A call of gen 2 still running while one of gen 3 used every entry.
	tr.gen.Store(3)
	for _, e := range tr.entries {
		e.used.Store(3)
	}
	tr.sweepEvery = 2
	tr.publish(&call{t: tr, gen: 2})
	require.Len(t, tr.entries, before)
}
