package quantile

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Suffixes of the generated metric names.
const (
	SummarySuffix = ".quantiles"
	MinSuffix     = ".min"
	MaxSuffix     = ".max"
	CountSuffix   = ".count"
)

// GaugeSuffix names the gauge of quantile q: ".p" and the digits of q after the
// decimal point, at least two: 0.5 → ".p50", 0.99 → ".p99", 0.999 → ".p999",
// 0.05 → ".p05".
func GaugeSuffix(q float64) string {
	s := strconv.FormatFloat(q, 'f', -1, 64)
	digits, _ := strings.CutPrefix(s, "0.")
	for len(digits) < 2 {
		digits += "0"
	}
	return ".p" + digits
}

// Output describes the metrics written for one series.
type Output struct {
	Name        string // base name of the generated metrics
	Unit        string // unit of the values
	Description string
	Outputs     OutputsConfig
}

// Builder collects emitted windows into pmetric.Metrics, one ResourceMetrics
// per distinct resource with one ScopeMetrics named after the component.
type Builder struct {
	scope, version string
	quantiles      []float64
	suffixes       []string
	md             pmetric.Metrics
	res            map[string]*builderRes
	points         int
}

type builderRes struct {
	sm      pmetric.ScopeMetrics
	metrics []namedMetric // few per resource: a slice beats a map
}

type namedMetric struct {
	name string
	m    pmetric.Metric
}

// NewBuilder returns a Builder whose scope is the component's import path.
func NewBuilder(scope, version string, quantiles []float64) *Builder {
	b := &Builder{scope: scope, version: version, quantiles: quantiles, res: map[string]*builderRes{}}
	for _, q := range quantiles {
		b.suffixes = append(b.suffixes, GaugeSuffix(q))
	}
	b.md = pmetric.NewMetrics()
	return b
}

// Points is the number of data points collected so far.
func (b *Builder) Points() int { return b.points }

// Take returns the collected metrics and starts afresh.
func (b *Builder) Take() pmetric.Metrics {
	md := b.md
	b.md = pmetric.NewMetrics()
	clear(b.res)
	b.points = 0
	return md
}

func (b *Builder) resource(key string, attrs pcommon.Map) *builderRes {
	if r, ok := b.res[key]; ok {
		return r
	}
	rm := b.md.ResourceMetrics().AppendEmpty()
	attrs.CopyTo(rm.Resource().Attributes())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(b.scope)
	sm.Scope().SetVersion(b.version)
	r := &builderRes{sm: sm, metrics: make([]namedMetric, 0, len(b.suffixes)+4)}
	b.res[key] = r
	return r
}

func (r *builderRes) metric(name, unit, desc string, summary bool) pmetric.Metric {
	for i := range r.metrics {
		if r.metrics[i].name == name {
			return r.metrics[i].m
		}
	}
	m := r.sm.Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	if summary {
		m.SetEmptySummary()
	} else {
		m.SetEmptyGauge()
	}
	r.metrics = append(r.metrics, namedMetric{name, m})
	return m
}

// Append writes the window r of a series: resKey identifies the resource
// attributes resAttrs (series with equal keys share a ResourceMetrics), attrs
// are the data point attributes, start is when the series started.
func (b *Builder) Append(resKey string, resAttrs, attrs pcommon.Map, out *Output, start time.Time, r *Result) {
	rb := b.resource(resKey, resAttrs)
	ts := pcommon.NewTimestampFromTime(r.WindowEnd)
	desc := out.Description
	if out.Outputs.Summary {
		m := rb.metric(out.Name+SummarySuffix, out.Unit, desc, true)
		dp := m.Summary().DataPoints().AppendEmpty()
		attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		dp.SetTimestamp(ts)
		dp.SetCount(uint64(math.Round(r.TotalCount)))
		dp.SetSum(r.TotalSum)
		qv := dp.QuantileValues()
		qv.EnsureCapacity(len(b.quantiles))
		for i, q := range b.quantiles {
			v := qv.AppendEmpty()
			v.SetQuantile(q)
			v.SetValue(r.Quantiles[i])
		}
		b.points++
	}
	if out.Outputs.Gauges {
		gauge := func(name, unit string) pmetric.NumberDataPoint {
			dp := rb.metric(name, unit, desc, false).Gauge().DataPoints().AppendEmpty()
			attrs.CopyTo(dp.Attributes())
			dp.SetTimestamp(ts)
			b.points++
			return dp
		}
		for i := range b.quantiles {
			gauge(out.Name+b.suffixes[i], out.Unit).SetDoubleValue(r.Quantiles[i])
		}
		gauge(out.Name+MinSuffix, out.Unit).SetDoubleValue(r.Min)
		gauge(out.Name+MaxSuffix, out.Unit).SetDoubleValue(r.Max)
		gauge(out.Name+CountSuffix, "{count}").SetIntValue(int64(math.Round(r.Count)))
	}
}
