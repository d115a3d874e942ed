package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// otherTenant shares one budget among tenants beyond budget::max_tenants.
const otherTenant = "_other"

// overflowAttr marks the series that collects data points beyond a tenant's budget.
const overflowAttr = "otel.metric.overflow"

// maxOverflowClocks bounds the per-tenant memory of overflow series timestamps.
const maxOverflowClocks = 1024

// budget tracks the active series of each tenant.
type budget struct {
	cfg  *BudgetConfig
	seed maphash.Seed

	mu      sync.Mutex
	tenants map[string]*tracker
}

// tracker holds one tenant's active series: series hash -> last seen (unix ns). Memory is
// one map entry per active series (measured in BenchmarkTrackerMemory).
type tracker struct {
	mu        sync.Mutex
	limit     int
	idle      int64
	series    map[uint64]int64
	nextSweep int64
	// overflowTS is the last timestamp emitted per overflow series (metric), kept increasing so
	// backends that reject out-of-order samples accept every overflow point.
	overflowTS map[uint64]pcommon.Timestamp
}

func newBudget(cfg *BudgetConfig) *budget {
	return &budget{cfg: cfg, seed: maphash.MakeSeed(), tenants: map[string]*tracker{}}
}

// tracker returns the tracker of a tenant and the tenant name it is accounted under.
func (b *budget) tracker(tenant string) (*tracker, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.tenants[tenant]; ok {
		return t, tenant
	}
	if len(b.tenants) >= b.cfg.MaxTenants {
		tenant = otherTenant
		if t, ok := b.tenants[tenant]; ok {
			return t, tenant
		}
	}
	limit := b.cfg.MaxSeries
	if n, ok := b.cfg.PerTenant[tenant]; ok {
		limit = n
	}
	t := &tracker{limit: limit, idle: int64(b.cfg.IdleTimeout), series: map[uint64]int64{}, overflowTS: map[uint64]pcommon.Timestamp{}}
	b.tenants[tenant] = t
	return t, tenant
}

// sweep forgets series idle for longer than the idle timeout; it runs at most every
// idle_timeout/4, so a series is freed between 1 and 1.25 idle timeouts after it was last seen.
// It returns the number of series freed. t.mu must be held.
func (t *tracker) sweep(now int64) int {
	if now < t.nextSweep {
		return 0
	}
	t.nextSweep = now + max(t.idle/4, int64(time.Second))
	n := 0
	for h, seen := range t.series {
		if now-seen > t.idle {
			delete(t.series, h)
			n++
		}
	}
	return n
}

// admit records a series as active; it returns false when the series is new and the tenant
// is at its budget. t.mu must be held.
func (t *tracker) admit(h uint64, now int64) (ok, added bool) {
	if _, ok := t.series[h]; ok {
		t.series[h] = now
		return true, false
	}
	if len(t.series) >= t.limit {
		return false, false
	}
	t.series[h] = now
	return true, true
}

// ---- series identity --------------------------------------------------------------------------

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func (b *budget) valueHash(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return maphash.String(b.seed, v.Str())
	case pcommon.ValueTypeInt:
		return mix64(uint64(v.Int()) ^ 0x1f3d5b79)
	case pcommon.ValueTypeDouble:
		return mix64(math.Float64bits(v.Double()) ^ 0x2e4c6a88)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return 0x3b5d7f91
		}
		return 0x4c6e8fa2
	default:
		return maphash.String(b.seed, v.AsString())
	}
}

// attrsHash is an order-independent hash of a set of attributes.
func (b *budget) attrsHash(m pcommon.Map) uint64 {
	var h uint64
	for k, v := range m.All() {
		h += mix64(maphash.String(b.seed, k) ^ (b.valueHash(v) * 0x9e3779b97f4a7c15))
	}
	return h
}

func (b *budget) metricHash(m pmetric.Metric) uint64 {
	return mix64(maphash.String(b.seed, m.Name()) ^ uint64(m.Type())*0x9e3779b97f4a7c15)
}

func seriesHash(resource, metricHash, points uint64) uint64 {
	return mix64(mix64(resource^metricHash) + points)
}

// ---- overflow ----------------------------------------------------------------------------------

// overflowSet collects, for one batch, the data points folded into overflow series: one
// resource per tenant (only the tenant attribute), one series per metric name and type.
type overflowSet struct {
	md        pmetric.Metrics
	tenantKey string
	scopeName string
	tenants   map[string]*overflowTenant
}

type overflowTenant struct {
	tracker *tracker
	metrics pmetric.MetricSlice
	byKey   map[uint64]pmetric.Metric
}

func newOverflowSet(tenantKey, scopeName string) *overflowSet {
	return &overflowSet{md: pmetric.NewMetrics(), tenantKey: tenantKey, scopeName: scopeName, tenants: map[string]*overflowTenant{}}
}

func (o *overflowSet) tenant(name string, tr *tracker) *overflowTenant {
	if t, ok := o.tenants[name]; ok {
		return t
	}
	rm := o.md.ResourceMetrics().AppendEmpty()
	if name != "" && name != otherTenant {
		rm.Resource().Attributes().PutStr(o.tenantKey, name)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(o.scopeName)
	t := &overflowTenant{tracker: tr, metrics: sm.Metrics(), byKey: map[uint64]pmetric.Metric{}}
	o.tenants[name] = t
	return t
}

// metric returns the overflow metric for src (created like src, without data points) and
// whether it already had a data point.
func (t *overflowTenant) metric(key uint64, src pmetric.Metric) (pmetric.Metric, bool) {
	if m, ok := t.byKey[key]; ok {
		return m, true
	}
	m := t.metrics.AppendEmpty()
	m.SetName(src.Name())
	m.SetUnit(src.Unit())
	m.SetDescription(src.Description())
	switch src.Type() {
	case pmetric.MetricTypeGauge:
		m.SetEmptyGauge()
	case pmetric.MetricTypeSum:
		s := m.SetEmptySum()
		s.SetIsMonotonic(src.Sum().IsMonotonic())
		s.SetAggregationTemporality(src.Sum().AggregationTemporality())
	case pmetric.MetricTypeHistogram:
		m.SetEmptyHistogram().SetAggregationTemporality(src.Histogram().AggregationTemporality())
	}
	t.byKey[key] = m
	return m, false
}

func markOverflow(attrs pcommon.Map) {
	attrs.Clear()
	attrs.PutBool(overflowAttr, true)
}

// foldNumber adds a gauge or sum data point of src to the tenant's overflow series: a gauge
// keeps its latest value, a sum adds up.
func (t *overflowTenant) foldNumber(key uint64, src pmetric.Metric, dp pmetric.NumberDataPoint) bool {
	m, exists := t.metric(key, src)
	var points pmetric.NumberDataPointSlice
	if src.Type() == pmetric.MetricTypeGauge {
		points = m.Gauge().DataPoints()
	} else {
		points = m.Sum().DataPoints()
	}
	if !exists {
		out := points.AppendEmpty()
		dp.CopyTo(out)
		out.Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
		markOverflow(out.Attributes())
		return true
	}
	out := points.At(0)
	if src.Type() == pmetric.MetricTypeGauge {
		if dp.Timestamp() >= out.Timestamp() {
			copyNumber(dp, out)
			out.SetTimestamp(dp.Timestamp())
		}
		return true
	}
	addNumber(dp, out)
	out.SetTimestamp(max(out.Timestamp(), dp.Timestamp()))
	if dp.StartTimestamp() != 0 && dp.StartTimestamp() < out.StartTimestamp() {
		out.SetStartTimestamp(dp.StartTimestamp())
	}
	return true
}

// foldHistogram merges a histogram data point into the overflow series; false (dropped) when
// its bucket bounds differ from those of the series.
func (t *overflowTenant) foldHistogram(key uint64, src pmetric.Metric, dp pmetric.HistogramDataPoint) bool {
	m, exists := t.metric(key, src)
	if !exists {
		out := m.Histogram().DataPoints().AppendEmpty()
		dp.CopyTo(out)
		out.Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
		markOverflow(out.Attributes())
		return true
	}
	out := m.Histogram().DataPoints().At(0)
	if !slices.Equal(dp.ExplicitBounds().AsRaw(), out.ExplicitBounds().AsRaw()) || dp.BucketCounts().Len() != out.BucketCounts().Len() {
		return false
	}
	out.SetCount(out.Count() + dp.Count())
	if dp.HasSum() {
		out.SetSum(out.Sum() + dp.Sum())
	}
	if dp.HasMin() && (!out.HasMin() || dp.Min() < out.Min()) {
		out.SetMin(dp.Min())
	}
	if dp.HasMax() && (!out.HasMax() || dp.Max() > out.Max()) {
		out.SetMax(dp.Max())
	}
	for i := range dp.BucketCounts().Len() {
		out.BucketCounts().SetAt(i, out.BucketCounts().At(i)+dp.BucketCounts().At(i))
	}
	out.SetTimestamp(max(out.Timestamp(), dp.Timestamp()))
	return true
}

func copyNumber(src, dst pmetric.NumberDataPoint) {
	if src.ValueType() == pmetric.NumberDataPointValueTypeInt {
		dst.SetIntValue(src.IntValue())
	} else {
		dst.SetDoubleValue(src.DoubleValue())
	}
}

func addNumber(src, dst pmetric.NumberDataPoint) {
	if src.ValueType() == pmetric.NumberDataPointValueTypeInt && dst.ValueType() == pmetric.NumberDataPointValueTypeInt {
		dst.SetIntValue(dst.IntValue() + src.IntValue())
		return
	}
	dst.SetDoubleValue(numberValue(dst) + numberValue(src))
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// finish keeps each overflow series' timestamps increasing across batches and moves the
// overflow resources into md.
func (o *overflowSet) finish(md pmetric.Metrics) {
	for _, t := range o.tenants {
		t.tracker.mu.Lock()
		for key, m := range t.byKey {
			ts := firstTimestamp(m)
			if last, ok := t.tracker.overflowTS[key]; ok && ts <= last {
				ts = last + pcommon.Timestamp(time.Millisecond)
				setFirstTimestamp(m, ts)
			}
			if _, ok := t.tracker.overflowTS[key]; ok || len(t.tracker.overflowTS) < maxOverflowClocks {
				t.tracker.overflowTS[key] = ts
			}
		}
		t.tracker.mu.Unlock()
	}
	o.md.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
}

func firstTimestamp(m pmetric.Metric) pcommon.Timestamp {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().At(0).Timestamp()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().At(0).Timestamp()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().At(0).Timestamp()
	}
	return 0
}

func setFirstTimestamp(m pmetric.Metric, ts pcommon.Timestamp) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().At(0).SetTimestamp(ts)
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().At(0).SetTimestamp(ts)
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().At(0).SetTimestamp(ts)
	}
}
