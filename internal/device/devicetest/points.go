package devicetest

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Point is one gauge or sum data point as a receiver emitted it, flattened for assertions on single
// values (whole emissions are compared with CompareGolden).
type Point struct {
	Device    string // resource attribute device.id
	Metric    string
	Unit      string
	Attrs     map[string]string // data point attributes, as strings
	Value     float64           // int values converted
	Int       bool              // an integer data point
	Stale     bool              // the no-recorded-value flag (a staleness marker)
	Sum       bool
	Monotonic bool
	Time      pcommon.Timestamp
	Resource  map[string]any
	Exemplars int
}

// Points flattens the gauges and sums of mds, in order.
func Points(mds ...pmetric.Metrics) []Point {
	var out []Point
	for _, md := range mds {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			rm := rms.At(i)
			dev, _ := rm.Resource().Attributes().Get("device.id")
			res := rm.Resource().Attributes().AsRaw()
			sms := rm.ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					out = appendPoints(out, ms.At(k), dev.AsString(), res)
				}
			}
		}
	}
	return out
}

func appendPoints(out []Point, m pmetric.Metric, dev string, res map[string]any) []Point {
	var dps pmetric.NumberDataPointSlice
	sum, mono := false, false
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps = m.Gauge().DataPoints()
	case pmetric.MetricTypeSum:
		dps, sum, mono = m.Sum().DataPoints(), true, m.Sum().IsMonotonic()
	default:
		return out
	}
	for d := 0; d < dps.Len(); d++ {
		dp := dps.At(d)
		attrs := map[string]string{}
		dp.Attributes().Range(func(k string, v pcommon.Value) bool { attrs[k] = v.AsString(); return true })
		v := dp.DoubleValue()
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			v = float64(dp.IntValue())
		}
		out = append(out, Point{Device: dev, Metric: m.Name(), Unit: m.Unit(), Attrs: attrs, Value: v,
			Int: dp.ValueType() == pmetric.NumberDataPointValueTypeInt, Stale: dp.Flags().NoRecordedValue(), Sum: sum, Monotonic: mono, Time: dp.Timestamp(), Resource: res,
			Exemplars: dp.Exemplars().Len()})
	}
	return out
}

// Span is one span as a receiver emitted it, with its resource.
type Span struct {
	ptrace.Span
	Resource pcommon.Resource
}

// Spans flattens the spans of tds, in order.
func Spans(tds ...ptrace.Traces) []Span {
	var out []Span
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					out = append(out, Span{Span: ss.At(k), Resource: rs.Resource()})
				}
			}
		}
	}
	return out
}
