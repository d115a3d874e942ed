package tenantremotewriteexporter

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// promoteReference is promote written the plainest way: what any faster promote (or a translation
// that takes the promoted labels without copying them) must keep, point for point.
func promoteReference(md pmetric.Metrics, keys []string) {
	for _, rm := range md.ResourceMetrics().All() {
		res := rm.Resource().Attributes()
		eachPointAttrs(rm, func(attrs pcommon.Map) {
			for _, k := range keys {
				rv, ok := res.Get(k)
				if !ok {
					continue
				}
				if _, ok := attrs.Get(k); ok {
					continue
				}
				rv.CopyTo(attrs.PutEmpty(k))
			}
		})
	}
}

func eachPointAttrs(rm pmetric.ResourceMetrics, f func(pcommon.Map)) {
	for _, sm := range rm.ScopeMetrics().All() {
		for _, m := range sm.Metrics().All() {
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				for _, p := range m.Gauge().DataPoints().All() {
					f(p.Attributes())
				}
			case pmetric.MetricTypeSum:
				for _, p := range m.Sum().DataPoints().All() {
					f(p.Attributes())
				}
			case pmetric.MetricTypeHistogram:
				for _, p := range m.Histogram().DataPoints().All() {
					f(p.Attributes())
				}
			case pmetric.MetricTypeExponentialHistogram:
				for _, p := range m.ExponentialHistogram().DataPoints().All() {
					f(p.Attributes())
				}
			case pmetric.MetricTypeSummary:
				for _, p := range m.Summary().DataPoints().All() {
					f(p.Attributes())
				}
			case pmetric.MetricTypeEmpty:
			}
		}
	}
}

// putRandom sets key to a random value: strings (some empty, some needing sanitizing in a name),
// ints, bools, doubles, a slice or a map.
func putRandom(r *rand.Rand, m pcommon.Map, key string) {
	switch r.IntN(7) {
	case 0:
		m.PutStr(key, "")
	case 1:
		m.PutInt(key, r.Int64N(100))
	case 2:
		m.PutBool(key, r.IntN(2) == 0)
	case 3:
		m.PutDouble(key, r.Float64())
	case 4:
		s := m.PutEmptySlice(key)
		s.AppendEmpty().SetStr("a")
		s.AppendEmpty().SetInt(2)
	case 5:
		m.PutEmptyMap(key).PutStr("x", "y")
	default:
		m.PutStr(key, fmt.Sprintf("v%d", r.IntN(5)))
	}
}

// randomBatch is a batch of every metric type whose resources and points carry random subsets
// of the promoted keys (and others), with colliding and sanitizable names.
func randomBatch(r *rand.Rand) pmetric.Metrics {
	keys := append(append([]string{}, defaultPromoted...), "service.name", "service.instance.id", "device.address", "a.b", "a_b", "9x")
	md := pmetric.NewMetrics()
	for range 1 + r.IntN(4) {
		rm := md.ResourceMetrics().AppendEmpty()
		for _, k := range keys {
			if r.IntN(3) > 0 {
				putRandom(r, rm.Resource().Attributes(), k)
			}
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("scope")
		for mi := range 1 + r.IntN(6) {
			m := sm.Metrics().AppendEmpty()
			m.SetName(fmt.Sprintf("m.%d", mi))
			m.SetUnit([]string{"", "V", "kWh", "1"}[r.IntN(4)])
			n := 1 + r.IntN(3)
			var attrs []pcommon.Map
			switch r.IntN(5) {
			case 0:
				ps := m.SetEmptyGauge().DataPoints()
				for range n {
					p := ps.AppendEmpty()
					p.SetDoubleValue(r.Float64())
					p.SetTimestamp(pcommon.Timestamp(r.Int64N(1e12)))
					attrs = append(attrs, p.Attributes())
				}
			case 1:
				s := m.SetEmptySum()
				s.SetIsMonotonic(r.IntN(2) == 0)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for range n {
					p := s.DataPoints().AppendEmpty()
					p.SetIntValue(r.Int64N(1000))
					p.SetTimestamp(pcommon.Timestamp(r.Int64N(1e12)))
					attrs = append(attrs, p.Attributes())
				}
			case 2:
				h := m.SetEmptyHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for range n {
					p := h.DataPoints().AppendEmpty()
					p.SetCount(3)
					p.SetSum(1.5)
					p.ExplicitBounds().FromRaw([]float64{1, 2})
					p.BucketCounts().FromRaw([]uint64{1, 1, 1})
					p.SetTimestamp(pcommon.Timestamp(r.Int64N(1e12)))
					attrs = append(attrs, p.Attributes())
				}
			case 3:
				h := m.SetEmptyExponentialHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for range n {
					p := h.DataPoints().AppendEmpty()
					p.SetCount(2)
					p.Positive().BucketCounts().FromRaw([]uint64{1, 1})
					p.SetTimestamp(pcommon.Timestamp(r.Int64N(1e12)))
					attrs = append(attrs, p.Attributes())
				}
			default:
				ps := m.SetEmptySummary().DataPoints()
				for range n {
					p := ps.AppendEmpty()
					p.SetCount(1)
					p.SetSum(2)
					q := p.QuantileValues().AppendEmpty()
					q.SetQuantile(0.5)
					q.SetValue(2)
					p.SetTimestamp(pcommon.Timestamp(r.Int64N(1e12)))
					attrs = append(attrs, p.Attributes())
				}
			}
			for _, a := range attrs {
				for _, k := range keys {
					if r.IntN(5) == 0 {
						putRandom(r, a, k)
					}
				}
			}
		}
	}
	return md
}

// translated is what FromMetrics makes of md, series sorted by their labels.
func translated(md pmetric.Metrics, settings prwt.Settings) []prompb.TimeSeries {
	tss, _ := prwt.FromMetrics(md, settings)
	out := make([]prompb.TimeSeries, 0, len(tss))
	for _, ts := range tss {
		out = append(out, *ts)
	}
	sort.Slice(out, func(i, j int) bool { return seriesKey(out[i].Labels) < seriesKey(out[j].Labels) })
	return out
}

// promote must do exactly what the reference does: same data, and the same remote-write series
// byte for byte (contrib's FromMetrics).
func TestPromoteMatchesReference(t *testing.T) {
	check := func(t *testing.T, md pmetric.Metrics, keys []string) {
		want := pmetric.NewMetrics()
		md.CopyTo(want)
		promoteReference(want, keys)
		got := pmetric.NewMetrics()
		md.CopyTo(got)
		promote(got, keys)
		require.Equal(t, want, got)
		renameUnits(want)
		renameUnits(got)
		// The edge default (no scope labels) and the contrib default, with external labels.
		for _, settings := range []prwt.Settings{
			{AddMetricSuffixes: true, DisableScopeInfo: true},
			{AddMetricSuffixes: true, ExternalLabels: map[string]string{"site": "ext", "region": "eu"}},
		} {
			requireSameSeries(t, translated(want, settings), translated(got, settings))
		}
	}
	t.Run("tick", func(t *testing.T) { check(t, tickBatch(t, 50), defaultPromoted) })
	t.Run("device", func(t *testing.T) { check(t, deviceMetrics(), defaultPromoted) })
	r := rand.New(rand.NewPCG(1, 17))
	for i := range 300 {
		keys := defaultPromoted
		if i%3 == 1 {
			keys = []string{"a.b", "a_b", "9x", "missing"}
		}
		t.Run(fmt.Sprintf("random-%d", i), func(t *testing.T) { check(t, randomBatch(r), keys) })
	}
}

func FuzzPromote(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(17), uint64(4))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		md := randomBatch(r)
		want := pmetric.NewMetrics()
		md.CopyTo(want)
		promoteReference(want, defaultPromoted)
		promote(md, defaultPromoted)
		require.Equal(t, want, md)
	})
}

// requireSameSeries compares two translations series by series, as the bytes they are sent as.
func requireSameSeries(t *testing.T, want, got []prompb.TimeSeries) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, err := want[i].Marshal()
		require.NoError(t, err)
		g, err := got[i].Marshal()
		require.NoError(t, err)
		require.Equal(t, w, g, "series %d: %s", i, want[i].String())
	}
}
