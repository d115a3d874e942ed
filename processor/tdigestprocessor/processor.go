package tdigestprocessor

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadata"
)

const scopeName = "github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor"

// selector is a compiled MetricConfig.
type selector struct {
	idx      int
	cfg      *MetricConfig
	re       *regexp.Regexp
	filter   []filterKV
	groupAll bool

	// the group_by keys encoded from the current resource: piece i is
	// resBuf[resOff[i]:resOff[i+1]], 'r'+value or '-' when absent
	resGen uint64
	resBuf []byte
	resOff []int
}

type filterKV struct{ key, value string }

// seriesMeta is what a series remembers about itself for emission.
type seriesMeta struct {
	out    *quantile.Output
	resKey string
	res    pcommon.Map
	attrs  pcommon.Map
	allKey string // a series of a selector without group_by: its key in allIndex ("" when not in it)
}

type tdigestProcessor struct {
	set       processor.Settings
	cfg       *Config
	next      consumer.Metrics
	clock     clock.Clock
	tel       *metadata.TelemetryBuilder
	runner    *quantile.Runner
	sels      []*selector
	startTime pcommon.Timestamp

	refusedSeries  metric.AddOption
	refusedStreams metric.AddOption

	mu         sync.Mutex
	eng        *quantile.Engine[seriesMeta]
	streams    *streamTable
	builder    *quantile.Builder
	bySel      map[string][]*selector // metric name -> candidate selectors
	outputs    map[outputKey]*quantile.Output
	key        []byte
	skey       []byte
	raw        []rawBucket
	diff       []rawBucket
	sorter     quantile.AttrSorter
	resPrefix  []byte                                  // all attributes of curRes, encoded (see resourcePrefix)
	curRes     pcommon.Map                             // the resource being processed
	resEncoded bool                                    // resPrefix holds curRes
	allIndex   map[string]*quantile.Series[seriesMeta] // series of selectors without group_by (see findAll)
	resInOrder []byte                                  // curRes encoded in its order (see findAll)
	resInOK    bool                                    // resInOrder holds curRes
	allKey     []byte                                  // of the last point findAll looked for
	noAllIndex bool                                    // tests and benchmarks: find every series by its sorted encoding
	resGen     uint64                                  // counts resources, for selector.resGen
	lastName   string                                  // last metric name looked up in bySel
	lastCands  []*selector
	failing    bool // last emission failed downstream (log state changes only)
	batch      batchState
}

type outputKey struct {
	sel        int
	name, unit string
}

func newProcessor(set processor.Settings, cfg *Config, next consumer.Metrics, clock clock.Clock) (*tdigestProcessor, error) {
	eng, err := quantile.New[seriesMeta](cfg.Settings())
	if err != nil {
		return nil, err
	}
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &tdigestProcessor{
		set:            set,
		cfg:            cfg,
		next:           next,
		clock:          clock,
		tel:            tel,
		eng:            eng,
		streams:        newStreamTable(cfg.MaxSeries),
		builder:        quantile.NewBuilder(scopeName, set.BuildInfo.Version, cfg.Quantiles),
		bySel:          map[string][]*selector{},
		allIndex:       map[string]*quantile.Series[seriesMeta]{},
		outputs:        map[outputKey]*quantile.Output{},
		refusedSeries:  metric.WithAttributes(attribute.String("reason", "max_series")),
		refusedStreams: metric.WithAttributes(attribute.String("reason", "max_streams")),
	}
	for i := range cfg.Metrics {
		mc := &cfg.Metrics[i]
		s := &selector{idx: i, cfg: mc, groupAll: mc.GroupBy == nil}
		if mc.Regex != "" {
			if s.re, err = regexp.Compile(mc.Regex); err != nil {
				return nil, fmt.Errorf("metrics[%d]: regex %q: %w", i, mc.Regex, err)
			}
		}
		for k, v := range mc.Attributes {
			s.filter = append(s.filter, filterKV{k, v})
		}
		p.sels = append(p.sels, s)
	}
	eng.OnDrop(p.unindex)
	p.runner = quantile.NewRunner(clock, cfg.Slide, p.emit)
	return p, nil
}

// mutates reports whether some selector removes the points it digests.
func (c *Config) mutates() bool {
	for _, m := range c.Metrics {
		if !m.PassThrough {
			return true
		}
	}
	return false
}

func (p *tdigestProcessor) start(context.Context, component.Host) error {
	p.startTime = pcommon.NewTimestampFromTime(p.clock.Now())
	p.runner.Start()
	return nil
}

func (p *tdigestProcessor) shutdown(ctx context.Context) error {
	err := p.runner.Stop(ctx)
	p.tel.Shutdown()
	return err
}

// candidates returns the selectors whose name or regex matches name.
func (p *tdigestProcessor) candidates(name string) []*selector {
	if name == p.lastName && p.lastCands != nil {
		return p.lastCands
	}
	c, ok := p.bySel[name]
	if !ok {
		c = p.matchSelectors(name)
	}
	p.lastName, p.lastCands = name, c
	return c
}

func (p *tdigestProcessor) matchSelectors(name string) []*selector {
	var c []*selector
	for _, s := range p.sels {
		if (s.re == nil && s.cfg.Name == name) || (s.re != nil && s.re.MatchString(name)) {
			c = append(c, s)
		}
	}
	if c == nil {
		c = []*selector{}
	}
	if len(p.bySel) >= 4096 { // bound the cache against unbounded metric names
		clear(p.bySel)
	}
	p.bySel[name] = c
	return c
}

// pick returns the first candidate whose attribute filter accepts the point.
func pick(cands []*selector, res, attrs pcommon.Map) *selector {
	for _, s := range cands {
		ok := true
		for _, f := range s.filter {
			v, found := attrs.Get(f.key)
			if !found {
				v, found = res.Get(f.key)
			}
			if !found || v.AsString() != f.value {
				ok = false
				break
			}
		}
		if ok {
			return s
		}
	}
	return nil
}

// point is one data point being digested.
type point struct {
	sel   *selector
	res   pcommon.Map
	scope pcommon.InstrumentationScope
	m     pmetric.Metric
	attrs pcommon.Map
}

func (p *tdigestProcessor) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batch = batchState{idx: p.eng.SlideIndex(now), now: now}
	held := p.eng.Len()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		p.curRes, p.resEncoded, p.resInOK = res, false, false
		p.resGen++
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				cands := p.candidates(m.Name())
				if len(cands) == 0 {
					continue
				}
				b := &p.batch
				b.pt = point{res: res, scope: sm.Scope(), m: m}
				b.cands = cands
				mayRemove := false
				for _, c := range cands {
					mayRemove = mayRemove || !c.cfg.PassThrough
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps := m.Gauge().DataPoints()
					if mayRemove {
						dps.RemoveIf(p.gaugePoint)
					} else {
						for i := 0; i < dps.Len(); i++ {
							p.gaugePoint(dps.At(i))
						}
					}
				case pmetric.MetricTypeSum:
					b.sum = m.Sum()
					dps := b.sum.DataPoints()
					if mayRemove {
						dps.RemoveIf(p.sumPoint)
					} else {
						for i := 0; i < dps.Len(); i++ {
							p.sumPoint(dps.At(i))
						}
					}
				case pmetric.MetricTypeHistogram:
					b.temp = m.Histogram().AggregationTemporality()
					dps := m.Histogram().DataPoints()
					if mayRemove {
						dps.RemoveIf(p.histogramPoint)
					} else {
						for i := 0; i < dps.Len(); i++ {
							p.histogramPoint(dps.At(i))
						}
					}
				case pmetric.MetricTypeExponentialHistogram:
					b.temp = m.ExponentialHistogram().AggregationTemporality()
					dps := m.ExponentialHistogram().DataPoints()
					if mayRemove {
						dps.RemoveIf(p.expHistogramPoint)
					} else {
						for i := 0; i < dps.Len(); i++ {
							p.expHistogramPoint(dps.At(i))
						}
					}
				}
			}
		}
	}
	refused, refusedStreams, removedAny := p.batch.refused, p.batch.refusedStreams, p.batch.removed
	p.batch = batchState{}
	p.curRes = pcommon.Map{} // hold no reference to the batch
	if n := p.eng.Len() - held; n != 0 {
		p.tel.ProcessorTdigestSeries.Add(context.Background(), int64(n))
	}
	if refused > 0 {
		p.tel.ProcessorTdigestRefusedDataPoints.Add(context.Background(), refused, p.refusedSeries)
	}
	if refusedStreams > 0 {
		p.tel.ProcessorTdigestRefusedDataPoints.Add(context.Background(), refusedStreams, p.refusedStreams)
	}
	if removedAny {
		removeEmpty(md)
		if md.ResourceMetrics().Len() == 0 {
			return md, processorhelper.ErrSkipProcessingData
		}
	}
	return md, nil
}

// batchState is the context of the data point being processed (under p.mu),
// so that the per-point methods need no closures.
type batchState struct {
	idx            int64
	now            time.Time
	pt             point
	cands          []*selector
	sum            pmetric.Sum
	temp           pmetric.AggregationTemporality
	refused        int64
	refusedStreams int64
	removed        bool
}

// locate finds the series of a point; nil when no selector takes it or
// max_series refuses it. remove tells whether the point leaves the pipeline.
func (p *tdigestProcessor) locate(attrs pcommon.Map) (s *quantile.Series[seriesMeta], remove bool) {
	b := &p.batch
	sel := pick(b.cands, b.pt.res, attrs)
	if sel == nil {
		return nil, false
	}
	b.pt.sel, b.pt.attrs = sel, attrs
	s = p.series(&b.pt, b.now)
	if s == nil {
		b.refused++
	}
	if !sel.cfg.PassThrough {
		b.removed = true
		return s, true
	}
	return s, false
}

func (p *tdigestProcessor) gaugePoint(dp pmetric.NumberDataPoint) bool {
	s, remove := p.locate(dp.Attributes())
	if s != nil {
		if v, ok := numberValue(dp); ok {
			p.eng.Add(s, p.batch.idx, v)
		}
	}
	return remove
}

func (p *tdigestProcessor) sumPoint(dp pmetric.NumberDataPoint) bool {
	s, remove := p.locate(dp.Attributes())
	if s != nil && !p.addSum(&p.batch.pt, s, p.batch.idx, p.batch.sum, dp) {
		p.batch.refusedStreams++
	}
	return remove
}

func (p *tdigestProcessor) histogramPoint(dp pmetric.HistogramDataPoint) bool {
	s, remove := p.locate(dp.Attributes())
	if s != nil && !p.addHistogram(&p.batch.pt, s, p.batch.idx, p.batch.temp, dp) {
		p.batch.refusedStreams++
	}
	return remove
}

func (p *tdigestProcessor) expHistogramPoint(dp pmetric.ExponentialHistogramDataPoint) bool {
	s, remove := p.locate(dp.Attributes())
	if s != nil && !p.addExpHistogram(&p.batch.pt, s, p.batch.idx, p.batch.temp, dp) {
		p.batch.refusedStreams++
	}
	return remove
}

// removeEmpty drops metrics without data points, then empty scopes and resources.
func removeEmpty(md pmetric.Metrics) {
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					return m.Gauge().DataPoints().Len() == 0
				case pmetric.MetricTypeSum:
					return m.Sum().DataPoints().Len() == 0
				case pmetric.MetricTypeHistogram:
					return m.Histogram().DataPoints().Len() == 0
				case pmetric.MetricTypeExponentialHistogram:
					return m.ExponentialHistogram().DataPoints().Len() == 0
				}
				return false
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
}

// numberValue is the value of a number point; false for points flagged as
// having no recorded value and for NaN/Inf.
func numberValue(dp pmetric.NumberDataPoint) (float64, bool) {
	if dp.Flags().NoRecordedValue() {
		return 0, false
	}
	var v float64
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeDouble:
		v = dp.DoubleValue()
	case pmetric.NumberDataPointValueTypeInt:
		v = float64(dp.IntValue())
	default:
		return 0, false
	}
	return v, !math.IsNaN(v) && !math.IsInf(v, 0)
}

// series finds or creates the series of a point; nil when max_series refuses it.
func (p *tdigestProcessor) series(pt *point, now time.Time) *quantile.Series[seriesMeta] {
	sel := pt.sel
	name := pt.m.Name()
	if sel.cfg.OutputName != "" {
		name = sel.cfg.OutputName
	}
	keyName := ""
	if sel.cfg.Regex != "" && sel.cfg.OutputName == "" {
		// a regex selector names its series after each metric it matches
		keyName = name
	}
	indexed := sel.groupAll && !p.noAllIndex
	if indexed {
		if s := p.findAll(sel, keyName, pt.attrs); s != nil {
			return s
		}
	}
	b := p.key[:0]
	b = append(b, byte(sel.idx>>8), byte(sel.idx))
	if keyName != "" {
		b = quantile.AppendString(b, keyName)
	}
	if sel.groupAll {
		b = append(b, p.resourcePrefix()...)
		b = p.sorter.Append(b, pt.attrs)
	} else {
		if sel.resGen != p.resGen {
			sel.encodeResource(pt.res)
			sel.resGen = p.resGen
		}
		if pt.attrs.Len() == 0 {
			b = append(b, sel.resBuf...)
		} else {
			for i, k := range sel.cfg.GroupBy {
				if v, ok := pt.attrs.Get(k); ok {
					b = quantile.AppendValue(append(b, 'p'), v)
				} else {
					b = append(b, sel.resBuf[sel.resOff[i]:sel.resOff[i+1]]...)
				}
			}
		}
	}
	p.key = b
	s := p.eng.Get(b, now, func(m *seriesMeta) { p.initSeries(m, pt, name) })
	if indexed && s != nil && s.Meta.allKey == "" {
		p.indexAll(s)
	}
	return s
}

// Series of a selector without group_by are identified by all attributes of
// the resource and the point. Their key for the engine sorts the attributes,
// which is costly, so they are found first in allIndex by the attributes
// encoded in the maps' order (the resource's once per resource): equal keys
// and values in the same order imply equal sorted encodings. A miss (a new
// series, or attributes in another order than when the series was indexed)
// takes the sorted encoding to the engine.

// findAll returns the series of a point under a selector without group_by if
// it is indexed. It leaves the point's index key in p.allKey.
func (p *tdigestProcessor) findAll(sel *selector, keyName string, attrs pcommon.Map) *quantile.Series[seriesMeta] {
	if !p.resInOK {
		p.resInOrder = quantile.AppendInOrder(p.resInOrder[:0], p.curRes)
		p.resInOK = true
	}
	b := append(p.allKey[:0], byte(sel.idx>>8), byte(sel.idx))
	b = quantile.AppendString(b, keyName)
	b = append(b, p.resInOrder...)
	b = quantile.AppendInOrder(b, attrs)
	p.allKey = b
	return p.allIndex[string(b)]
}

// indexAll enters a new series of a selector without group_by into allIndex
// under the key findAll left for the series' point.
func (p *tdigestProcessor) indexAll(s *quantile.Series[seriesMeta]) {
	s.Meta.allKey = string(p.allKey)
	p.allIndex[s.Meta.allKey] = s
}

// unindex removes a series the engine dropped from allIndex.
func (p *tdigestProcessor) unindex(s *quantile.Series[seriesMeta]) {
	if s.Meta.allKey != "" && p.allIndex[s.Meta.allKey] == s {
		delete(p.allIndex, s.Meta.allKey)
	}
	s.Meta.allKey = ""
}

// encodeResource encodes the group_by keys found on the resource, once per
// resource: most points only add their own attributes to it.
func (s *selector) encodeResource(res pcommon.Map) {
	s.resBuf, s.resOff = s.resBuf[:0], append(s.resOff[:0], 0)
	for _, k := range s.cfg.GroupBy {
		if v, ok := res.Get(k); ok {
			s.resBuf = quantile.AppendValue(append(s.resBuf, 'r'), v)
		} else {
			s.resBuf = append(s.resBuf, '-')
		}
		s.resOff = append(s.resOff, len(s.resBuf))
	}
}

// resourcePrefix encodes all attributes of the current resource, once.
func (p *tdigestProcessor) resourcePrefix() []byte {
	if !p.resEncoded {
		p.resPrefix = p.sorter.Append(p.resPrefix[:0], p.curRes)
		p.resEncoded = true
	}
	return p.resPrefix
}

// initSeries fills the identity of a new series: its output names and the
// attributes it keeps.
func (p *tdigestProcessor) initSeries(m *seriesMeta, pt *point, name string) {
	ok := outputKey{sel: pt.sel.idx, name: name, unit: pt.m.Unit()}
	out, found := p.outputs[ok]
	if !found {
		desc := pt.m.Description()
		if desc == "" {
			desc = pt.m.Name()
		}
		out = &quantile.Output{
			Name: name,
			Unit: pt.m.Unit(),
			Description: fmt.Sprintf("Quantiles over a %v window sliding by %v of: %s",
				p.cfg.Window, p.cfg.Slide, desc),
			Outputs: pt.sel.cfg.Outputs,
		}
		if len(p.outputs) >= 4096 {
			clear(p.outputs)
		}
		p.outputs[ok] = out
	}
	m.out = out
	m.res = pcommon.NewMap()
	m.attrs = pcommon.NewMap()
	if pt.sel.groupAll {
		pt.res.CopyTo(m.res)
		pt.attrs.CopyTo(m.attrs)
	} else {
		for _, k := range pt.sel.cfg.GroupBy {
			if v, ok := pt.attrs.Get(k); ok {
				v.CopyTo(m.attrs.PutEmpty(k))
			} else if v, ok := pt.res.Get(k); ok {
				v.CopyTo(m.res.PutEmpty(k))
			}
		}
	}
	var rk []byte
	rk = p.sorter.Append(rk, m.res)
	m.resKey = string(rk)
}

// emit runs at every slide boundary: it computes the windows, sends them on
// and forgets idle series and streams.
func (p *tdigestProcessor) emit(ctx context.Context, now time.Time) {
	p.mu.Lock()
	before := p.eng.Len()
	after := p.eng.Emit(now, func(s *quantile.Series[seriesMeta], r *quantile.Result) {
		p.builder.Append(s.Meta.resKey, s.Meta.res, s.Meta.attrs, s.Meta.out, s.Start, r)
	})
	p.streams.expire(p.eng.SlideIndex(now) - int64(p.cfg.Window/p.cfg.Slide))
	md := p.builder.Take()
	p.mu.Unlock()
	if after != before {
		p.tel.ProcessorTdigestSeries.Add(context.Background(), int64(after-before))
	}
	if md.DataPointCount() == 0 {
		return
	}
	p.logDelivery(p.next.ConsumeMetrics(ctx, md))
}

func (p *tdigestProcessor) logDelivery(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil && !p.failing:
		p.failing = true
		p.set.Logger.Warn("Sending quantiles downstream failed; will retry with the next window", zap.Error(err))
	case err == nil && p.failing:
		p.failing = false
		p.set.Logger.Info("Sending quantiles downstream works again")
	}
}
