package rwtranslate

import (
	"fmt"
	"math"
	"sync"
	"testing"

	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// fuzzBytes hands out the fuzz input as choices; past its end every choice is the first.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) intn(n int) int {
	if len(f.b) == 0 || n <= 1 {
		return 0
	}
	v := int(f.b[0]) % n
	f.b = f.b[1:]
	return v
}

func pick[T any](f *fuzzBytes, from ...T) T { return from[f.intn(len(from))] }

// The pools hold the inputs that take contrib's rules down their branches: names to sanitize or
// refuse, names that collide once sanitized, the identifying attributes, unit spellings. Not "le",
// "quantile" or "__name__" as attributes: contrib's order of two labels of one name is map order.
var (
	fuzzKeys    = []string{"a", "a.b", "a_b", "A", "1x", "_u", "__", "service.name", "service.namespace", "service.instance.id", "job", "instance", "ü", "x-y", "tenant.id", ""}
	fuzzNames   = []string{"m", "m.total", "m_total", "", "__", "Ä", "a b", "x.y.z", "ratio", "1abc", "up"}
	fuzzUnits   = []string{"", "s", "ms", "By", "1", "{request}", "watt_hours", "%", "m/s", "{x}/s", "Cel"}
	fuzzFloats  = []float64{0, 1, -2.5, 0.5, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e300}
	fuzzTimes   = []pcommon.Timestamp{0, 1_700_000_000_123_456_789, 1_000_000, 999_999, math.MaxUint64}
	fuzzExtLbls = []map[string]string{nil, {"cluster": "c"}, {"job": "ext", "a_b": "ext"}}
	// promoted resource attributes: none, keys that collide once sanitized, a repeated one, the
	// identifying ones
	fuzzPromoted = [][]string{nil, {"tenant.id", "a.b"}, {"a", "A", "a_b", "a"}, {"service.name", "job", "x-y", "ü"}}
)

func (f *fuzzBytes) value(v pcommon.Value) {
	switch f.intn(8) {
	case 0:
		v.SetStr(pick(f, "", "v", "x;y", "L1", "ü"))
	case 1:
		v.SetInt(int64(pick(f, 0, 1, -5)))
	case 2:
		v.SetDouble(pick(f, fuzzFloats...))
	case 3:
		v.SetBool(f.intn(2) == 1)
	case 4:
		v.SetEmptyBytes().FromRaw([]byte{byte(f.intn(3))})
	case 5:
		// Empty value.
	case 6:
		v.SetEmptyMap().PutStr("k", "v")
	default:
		v.SetStr("s")
	}
}

func (f *fuzzBytes) attrs(m pcommon.Map, n int) {
	for range f.intn(n + 1) {
		f.value(m.PutEmpty(pick(f, fuzzKeys...)))
	}
}

func (f *fuzzBytes) exemplars(es pmetric.ExemplarSlice) {
	for range f.intn(3) {
		e := es.AppendEmpty()
		if f.intn(2) == 0 {
			e.SetDoubleValue(pick(f, fuzzFloats...))
		} else {
			e.SetIntValue(int64(f.intn(5)))
		}
		e.SetTimestamp(pick(f, fuzzTimes...))
		if f.intn(2) == 0 {
			e.SetTraceID(pcommon.TraceID{byte(f.intn(256)), 1})
		}
		if f.intn(2) == 0 {
			e.SetSpanID(pcommon.SpanID{byte(f.intn(256)), 2})
		}
		f.attrs(e.FilteredAttributes(), 2)
	}
}

func (f *fuzzBytes) point(attrs pcommon.Map, setTime func(pcommon.Timestamp), setFlags func(pmetric.DataPointFlags)) {
	f.attrs(attrs, 3)
	setTime(pick(f, fuzzTimes...))
	if f.intn(4) == 0 {
		setFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	}
}

func (f *fuzzBytes) metric(m pmetric.Metric) {
	m.SetName(pick(f, fuzzNames...))
	m.SetUnit(pick(f, fuzzUnits...))
	temporality := pick(f, pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta, pmetric.AggregationTemporalityUnspecified)
	points := f.intn(4)
	switch f.intn(6) {
	case 0:
	case 1, 2:
		var dps pmetric.NumberDataPointSlice
		if f.intn(2) == 0 {
			dps = m.SetEmptyGauge().DataPoints()
		} else {
			s := m.SetEmptySum()
			s.SetIsMonotonic(f.intn(2) == 0)
			s.SetAggregationTemporality(temporality)
			dps = s.DataPoints()
		}
		for range points {
			p := dps.AppendEmpty()
			f.point(p.Attributes(), p.SetTimestamp, p.SetFlags)
			if f.intn(2) == 0 {
				p.SetDoubleValue(pick(f, fuzzFloats...))
			} else if f.intn(2) == 0 {
				p.SetIntValue(int64(f.intn(10)) - 3)
			}
			f.exemplars(p.Exemplars())
		}
	case 3:
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(temporality)
		for range points {
			p := h.DataPoints().AppendEmpty()
			f.point(p.Attributes(), p.SetTimestamp, p.SetFlags)
			for range f.intn(5) {
				p.ExplicitBounds().Append(pick(f, fuzzFloats...))
			}
			var total uint64
			for range f.intn(6) {
				c := uint64(f.intn(4))
				total += c
				p.BucketCounts().Append(c)
			}
			p.SetCount(total + uint64(f.intn(2)))
			if f.intn(3) > 0 {
				p.SetSum(pick(f, fuzzFloats...))
			}
			f.exemplars(p.Exemplars())
		}
	case 4:
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(temporality)
		for range points {
			p := h.DataPoints().AppendEmpty()
			f.point(p.Attributes(), p.SetTimestamp, p.SetFlags)
			p.SetScale(int32(pick(f, -5, -4, 0, 3, 8, 9, 12)))
			p.SetZeroThreshold(pick(f, 0, 1e-9))
			p.SetZeroCount(uint64(f.intn(3)))
			for _, b := range []pmetric.ExponentialHistogramDataPointBuckets{p.Positive(), p.Negative()} {
				b.SetOffset(int32(f.intn(7) - 3))
				for range f.intn(7) {
					b.BucketCounts().Append(uint64(f.intn(4)))
				}
			}
			p.SetCount(uint64(f.intn(20)))
			if f.intn(2) == 0 {
				p.SetSum(pick(f, fuzzFloats...))
			}
			f.exemplars(p.Exemplars())
		}
	default:
		s := m.SetEmptySummary()
		for range points {
			p := s.DataPoints().AppendEmpty()
			f.point(p.Attributes(), p.SetTimestamp, p.SetFlags)
			p.SetCount(uint64(f.intn(5)))
			p.SetSum(pick(f, fuzzFloats...))
			for range f.intn(4) {
				q := p.QuantileValues().AppendEmpty()
				q.SetQuantile(pick(f, 0, 0.5, 0.99, math.NaN()))
				q.SetValue(pick(f, fuzzFloats...))
			}
		}
	}
}

func (f *fuzzBytes) metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for range 1 + f.intn(3) {
		rm := md.ResourceMetrics().AppendEmpty()
		f.attrs(rm.Resource().Attributes(), 5)
		for range 1 + f.intn(2) {
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(pick(f, "", "s", "a.b"))
			sm.Scope().SetVersion(pick(f, "", "1"))
			f.attrs(sm.Scope().Attributes(), 2)
			for range 1 + f.intn(4) {
				f.metric(sm.Metrics().AppendEmpty())
			}
		}
	}
	return md
}

func (f *fuzzBytes) settings() prwt.Settings {
	return prwt.Settings{
		AddMetricSuffixes:   f.intn(2) == 0,
		DisableScopeInfo:    f.intn(2) == 0,
		DisableTargetInfo:   f.intn(4) == 0,
		Namespace:           pick(f, "", "ns"),
		ExternalLabels:      pick(f, fuzzExtLbls...),
		TranslationStrategy: pick(f, "", "", "UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes", "NoUTF8EscapingWithSuffixes", "NoTranslation", "Bogus"),
	}
}

// fuzzTranslators keeps one Translator per settings across the inputs, so that one input's cache
// entries meet the next one's data (and sweeps run often).
var fuzzTranslators sync.Map

// FuzzTranslate builds metrics from the fuzz input and checks Translate against contrib's FromMetrics,
// on a cache warmed by earlier inputs, then again on the same input.
func FuzzTranslate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("a histogram with exemplars and bounds, then a summary, and some sums of many points"))
	for i := range 6 {
		seed := make([]byte, 64)
		for j := range seed {
			seed[j] = byte(i*37 + j*13)
		}
		seed[1], seed[7] = byte(i), byte(i+3)
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzBytes{b: data}
		settings := in.settings()
		promoted := pick(in, fuzzPromoted...)
		key := fmt.Sprint(settings, promoted)
		v, ok := fuzzTranslators.Load(key)
		if !ok {
			tr, err := New(settings, promoted...)
			require.NoError(t, err)
			tr.maxIdle, tr.sweepEvery = 4, 2
			v, _ = fuzzTranslators.LoadOrStore(key, tr)
		}
		tr := v.(*Translator)
		md := in.metrics()
		requireSame(t, settings, tr, md)
		requireSame(t, settings, tr, md)
	})
}
