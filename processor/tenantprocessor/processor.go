package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
)

// tenantProcessor applies the plan to metrics, traces or logs.
type tenantProcessor struct {
	plan      *plan
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	labeler   *labeler
	watcher   *registryWatcher
	budget    *budget
	now       func() time.Time

	bufPool sync.Pool // *[]byte scratch for decision keys

	shutdownOnce sync.Once
}

func newTenantProcessor(set component.TelemetrySettings, cfg *Config) (*tenantProcessor, error) {
	p, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	tp := &tenantProcessor{
		plan:      p,
		logger:    set.Logger,
		telemetry: tb,
		labeler:   newLabeler(p),
		now:       time.Now,
		bufPool:   sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }},
	}
	if p.registry != nil {
		tp.watcher = &registryWatcher{spec: p.registry, logger: set.Logger, telemetry: tb, apply: tp.labeler.setRegistry}
	}
	if p.budget != nil {
		tp.budget = newBudget(p.budget)
	}
	return tp, nil
}

func (tp *tenantProcessor) start(ctx context.Context, _ component.Host) error {
	if tp.watcher != nil {
		tp.watcher.start(ctx)
	}
	return nil
}

func (tp *tenantProcessor) shutdown(context.Context) error {
	tp.shutdownOnce.Do(func() {
		if tp.watcher != nil {
			tp.watcher.shutdown()
		}
		tp.telemetry.Shutdown()
	})
	return nil
}

// ---- counters, aggregated per batch --------------------------------------------------------

type countKey struct {
	kind   uint8 // 0 required, 1 schema, 2 budget exceeded, 3 active series
	tenant string
	a, b   string
}

type counts map[countKey]int64

func (c counts) add(k countKey, n int64) {
	if n != 0 {
		c[k] += n
	}
}

func (tp *tenantProcessor) flush(ctx context.Context, c counts) {
	for k, n := range c {
		switch k.kind {
		case 0:
			tp.telemetry.ProcessorTenantRequiredMissing.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("tenant", k.tenant), attribute.String("action", k.a))))
		case 1:
			tp.telemetry.ProcessorTenantSchemaViolations.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("tenant", k.tenant), attribute.String("reason", k.a), attribute.String("action", k.b))))
		case 2:
			tp.telemetry.ProcessorTenantBudgetExceeded.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("tenant", k.tenant), attribute.String("action", k.a))))
		case 3:
			tp.telemetry.ProcessorTenantBudgetActiveSeries.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("tenant", k.tenant))))
		}
	}
}

func (tp *tenantProcessor) schemaAction() string {
	if tp.plan.schema != nil && tp.plan.schema.dropData {
		return string(SchemaDropData)
	}
	return string(SchemaDropAttribute)
}

func (tp *tenantProcessor) countSchema(c counts, tenant string, v *[numReasons]int) {
	for r := reasonKeyPattern; r < numReasons; r++ {
		if v[r] > 0 {
			action := tp.schemaAction()
			if r == reasonDuplicate || r == reasonUnknownMetric || r == reasonWrongUnit || r == reasonMissing {
				action = string(SchemaDropData) // whole points or metrics, whatever the action
			}
			c.add(countKey{kind: 1, tenant: tenant, a: r.String(), b: action}, int64(v[r]))
			v[r] = 0
		}
	}
}

// resource labels one resource and enforces the required attributes and the schema on its
// attributes. It returns the tenant and whether the resource's data must be dropped.
func (tp *tenantProcessor) resource(res pcommon.Resource, items func() int, c counts, buf *[]byte) (string, bool) {
	attrs := res.Attributes()
	var tenant string
	if tp.plan.labels {
		d := tp.labeler.label(attrs, buf)
		tenant = d.tenant
		if d.missing {
			c.add(countKey{kind: 0, tenant: tenant, a: string(d.action)}, int64(items()))
			if d.action == RequiredDrop {
				return tenant, true
			}
		}
	} else if v, ok := attrs.Get(tp.plan.tenantKey); ok {
		tenant = valueString(v)
	}
	if s := tp.plan.schema; s != nil {
		var v [numReasons]int
		drop, _ := s.enforce(attrs, &v)
		tp.countSchema(c, tenant, &v)
		if drop {
			return tenant, true
		}
	}
	return tenant, false
}

func (tp *tenantProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	c := counts{}
	buf := tp.bufPool.Get().(*[]byte)
	defer tp.bufPool.Put(buf)
	perPoint := tp.plan.schema != nil || tp.budget != nil
	var ovf *overflowSet
	now := tp.now().UnixNano()

	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		tenant, drop := tp.resource(rm.Resource(), func() int { return resourcePoints(rm) }, c, buf)
		if drop {
			return true
		}
		if !perPoint {
			return false
		}
		return tp.points(rm, tenant, now, c, &ovf)
	})
	if ovf != nil {
		ovf.finish(md)
	}
	tp.flush(ctx, c)
	if md.ResourceMetrics().Len() == 0 {
		return md, processorhelper.ErrSkipProcessingData
	}
	return md, nil
}

// points enforces the schema on data point attributes and the series budget; it returns true
// when the resource has no data left.
func (tp *tenantProcessor) points(rm pmetric.ResourceMetrics, tenant string, now int64, c counts, ovf **overflowSet) bool {
	s := tp.plan.schema
	var violations [numReasons]int
	var tr *tracker
	var budgetTenant string
	var resHash uint64
	var exceeded int64
	if tp.budget != nil {
		tr, budgetTenant = tp.budget.tracker(tenant)
		resHash = tp.budget.attrsHash(rm.Resource().Attributes())
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if freed := tr.sweep(now); freed > 0 {
			c.add(countKey{kind: 3, tenant: budgetTenant}, -int64(freed))
		}
	}
	overflow := tp.budget != nil && tp.budget.cfg.Action == BudgetOverflow
	var ot *overflowTenant
	removed := false

	// keep decides for one data point: schema, then budget. overflowed says the point is over
	// the budget and is to be folded into the overflow series by the caller.
	attrsRemoved := false
	var quantity *device.Quantity // of the metric at hand, when the schema has a vocabulary
	keep := func(mh uint64, attrs pcommon.Map) (ok, overflowed bool) {
		if s != nil {
			drop, removed := s.enforceIn(attrs, &violations, quantity)
			if drop {
				return false, false
			}
			attrsRemoved = attrsRemoved || removed
		}
		if tr == nil {
			return true, false
		}
		ok, added := tr.admit(seriesHash(resHash, mh, tp.budget.attrsHash(attrs)), now)
		if added {
			c.add(countKey{kind: 3, tenant: budgetTenant}, 1)
		}
		if ok {
			return true, false
		}
		exceeded++
		return false, overflow
	}
	// fold reports whether the overflowed point could be folded; if not it is counted as dropped.
	folded := func(ok bool) {
		if !ok {
			exceeded--
			c.add(countKey{kind: 2, tenant: budgetTenant, a: string(BudgetDrop)}, 1)
		}
	}
	overflowTenantOf := func() *overflowTenant {
		if ot == nil {
			if *ovf == nil {
				*ovf = newOverflowSet(tp.plan.tenantKey, metadata.ScopeName)
			}
			ot = (*ovf).tenant(budgetTenant, tr)
		}
		return ot
	}

	sms := rm.ScopeMetrics()
	sms.RemoveIf(func(sm pmetric.ScopeMetrics) bool {
		ms := sm.Metrics()
		ms.RemoveIf(func(m pmetric.Metric) bool {
			quantity = nil
			if s != nil && s.checksMetrics() {
				r, q := s.metricVerdict(m.Name(), m.Unit())
				if r != reasonNone {
					violations[r] += metricPoints(m)
					removed = true
					return true
				}
				quantity = q
			}
			var mh uint64
			if tp.budget != nil {
				mh = tp.budget.metricHash(m)
			}
			before := metricPoints(m)
			attrsRemoved = false
			numbers := func(dps pmetric.NumberDataPointSlice) {
				dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool {
					ok, ovfl := keep(mh, dp.Attributes())
					if ovfl {
						folded(overflowTenantOf().foldNumber(mh, m, dp))
					}
					return !ok
				})
			}
			switch m.Type() {
			case pmetric.MetricTypeGauge:
				numbers(m.Gauge().DataPoints())
			case pmetric.MetricTypeSum:
				numbers(m.Sum().DataPoints())
			case pmetric.MetricTypeHistogram:
				m.Histogram().DataPoints().RemoveIf(func(dp pmetric.HistogramDataPoint) bool {
					ok, ovfl := keep(mh, dp.Attributes())
					if ovfl {
						folded(overflowTenantOf().foldHistogram(mh, m, dp))
					}
					return !ok
				})
			case pmetric.MetricTypeExponentialHistogram:
				m.ExponentialHistogram().DataPoints().RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
					ok, ovfl := keep(mh, dp.Attributes())
					if ovfl {
						folded(false)
					}
					return !ok
				})
			case pmetric.MetricTypeSummary:
				m.Summary().DataPoints().RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
					ok, ovfl := keep(mh, dp.Attributes())
					if ovfl {
						folded(false)
					}
					return !ok
				})
			}
			if attrsRemoved {
				violations[reasonDuplicate] += dedupe(m)
			}
			if before > 0 && metricPoints(m) == 0 {
				removed = true
				return true
			}
			return false
		})
		return removed && ms.Len() == 0
	})
	tp.countSchema(c, tenant, &violations)
	if exceeded > 0 {
		action := BudgetDrop
		if overflow {
			action = BudgetOverflow
		}
		c.add(countKey{kind: 2, tenant: budgetTenant, a: string(action)}, exceeded)
	}
	return removed && sms.Len() == 0
}

func (tp *tenantProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	c := counts{}
	buf := tp.bufPool.Get().(*[]byte)
	defer tp.bufPool.Put(buf)
	s := tp.plan.schema
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		tenant, drop := tp.resource(rs.Resource(), func() int { return resourceSpans(rs) }, c, buf)
		if drop {
			return true
		}
		if s == nil {
			return false
		}
		var v [numReasons]int
		removed := enforceRecords[ptrace.ScopeSpans, ptrace.Span](s, &v, rs.ScopeSpans(), ptrace.ScopeSpans.Spans)
		tp.countSchema(c, tenant, &v)
		return removed && rs.ScopeSpans().Len() == 0
	})
	tp.flush(ctx, c)
	if td.ResourceSpans().Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

// processLogs labels logs as processTraces labels traces: per resource, then the schema on each
// log record's attributes (drop_data drops the record). Neither the metric checks of the schema
// nor duplicate_after_drop apply (two records alike are still two events), nor the series budget.
func (tp *tenantProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	c := counts{}
	buf := tp.bufPool.Get().(*[]byte)
	defer tp.bufPool.Put(buf)
	s := tp.plan.schema
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		tenant, drop := tp.resource(rl.Resource(), func() int { return resourceLogRecords(rl) }, c, buf)
		if drop {
			return true
		}
		if s == nil {
			return false
		}
		var v [numReasons]int
		removed := enforceRecords[plog.ScopeLogs, plog.LogRecord](s, &v, rl.ScopeLogs(), plog.ScopeLogs.LogRecords)
		tp.countSchema(c, tenant, &v)
		return removed && rl.ScopeLogs().Len() == 0
	})
	tp.flush(ctx, c)
	if ld.ResourceLogs().Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// removableSlice is a pdata slice of T (spans, scopes, log records …).
type removableSlice[T any] interface {
	RemoveIf(func(T) bool)
	Len() int
}

// enforceRecords applies the schema to the attributes of each record (span, log record) of one
// resource's scopes: a record the schema drops is removed, and once one was, a scope left empty
// goes too. It reports whether any record was removed.
func enforceRecords[S any, R interface{ Attributes() pcommon.Map }, SS removableSlice[S], RS removableSlice[R]](
	s *schema, v *[numReasons]int, scopes SS, records func(S) RS,
) (removed bool) {
	scopes.RemoveIf(func(sc S) bool {
		rs := records(sc)
		rs.RemoveIf(func(r R) bool {
			if drop, _ := s.enforce(r.Attributes(), v); drop {
				removed = true
				return true
			}
			return false
		})
		return removed && rs.Len() == 0
	})
	return removed
}

func metricPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

func resourcePoints(rm pmetric.ResourceMetrics) int {
	n := 0
	sms := rm.ScopeMetrics()
	for i := range sms.Len() {
		ms := sms.At(i).Metrics()
		for j := range ms.Len() {
			n += metricPoints(ms.At(j))
		}
	}
	return n
}

func resourceSpans(rs ptrace.ResourceSpans) int {
	n := 0
	for i := range rs.ScopeSpans().Len() {
		n += rs.ScopeSpans().At(i).Spans().Len()
	}
	return n
}

func resourceLogRecords(rl plog.ResourceLogs) int {
	n := 0
	for i := range rl.ScopeLogs().Len() {
		n += rl.ScopeLogs().At(i).LogRecords().Len()
	}
	return n
}

var dedupeSeed = maphash.MakeSeed()

// dedupe removes data points of m that have the attributes and timestamp of an earlier one
// (series merged by dropping attributes; backends reject a second sample for a timestamp).
func dedupe(m pmetric.Metric) int {
	seen := map[[2]uint64]bool{}
	n := 0
	first := func(attrs pcommon.Map, ts pcommon.Timestamp) bool {
		var h uint64
		for k, v := range attrs.All() {
			h += mix64(maphash.String(dedupeSeed, k) ^ maphash.String(dedupeSeed, v.AsString())*0x9e3779b97f4a7c15)
		}
		key := [2]uint64{h, uint64(ts)}
		if seen[key] {
			n++
			return false
		}
		seen[key] = true
		return true
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		m.Gauge().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool { return !first(dp.Attributes(), dp.Timestamp()) })
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool { return !first(dp.Attributes(), dp.Timestamp()) })
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(dp pmetric.HistogramDataPoint) bool { return !first(dp.Attributes(), dp.Timestamp()) })
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			return !first(dp.Attributes(), dp.Timestamp())
		})
	case pmetric.MetricTypeSummary:
		m.Summary().DataPoints().RemoveIf(func(dp pmetric.SummaryDataPoint) bool { return !first(dp.Attributes(), dp.Timestamp()) })
	}
	return n
}
