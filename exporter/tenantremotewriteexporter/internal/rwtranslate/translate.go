// Package rwtranslate translates metrics to remote-write time series as contrib's
// prometheusremotewrite.FromMetrics does, with the same series, samples, exemplars, histograms and
// errors, but remembers each series' labels: a device's readings come back every poll with the same
// resource, names and attributes, and building their labels (sanitizing, merging, sorting, hashing)
// was most of the translation's cost.
package rwtranslate // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/rwtranslate"

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	prometheustranslator "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheus"
	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	prom "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/multierr"
)

// Cache bounds. An entry not used in the last maxIdle calls is dropped by the sweep that runs every
// sweepEvery calls; beyond maxEntries new series are translated without being remembered.
const (
	defaultMaxIdle    = 64
	defaultSweepEvery = 16
	defaultMaxEntries = 1 << 16
)

// Translator converts pmetric.Metrics to remote-write time series. It is safe for concurrent use.
type Translator struct {
	settings    prwt.Settings
	metricNamer otlptranslator.MetricNamer
	labelNamer  otlptranslator.LabelNamer // the points' labels
	targetNamer otlptranslator.LabelNamer // target_info's labels: contrib builds them with another namer
	targetName  string
	promoted    []string // resource attributes that every point gets (see New)

	mu      sync.RWMutex
	entries map[string]*entry

	internMu sync.Mutex
	strs     map[string]string // the one copy of each label name and value the entries share

	gen        atomic.Uint64 // calls so far: the clock of the entries' last use
	seriesHint atomic.Int64  // series of the last call: the capacity of the next one's
	sampleHint atomic.Int64  // samples per series in the last call, rounded up (see addSample)
	calls      sync.Pool

	maxIdle    uint64
	sweepEvery uint64
	maxEntries int
}

// entry is what a cache key (metric name, or resource context, metric and point attributes) comes
// to. It does not change once published; only used is written.
type entry struct {
	used atomic.Uint64
	err  error
	name string // a metric's Prometheus name
	// The series of a point: a number point's one; a histogram's _sum, _count, its buckets and
	// +Inf; a summary's _sum, _count and quantiles; target_info's one or none.
	series []labelSet
}

// New returns a Translator with contrib's settings. It refuses what it does not translate as
// FromMetrics does (the caller then uses FromMetrics). The promoted resource attributes become labels
// of every point that has no attribute of that key, as if copied onto the points before FromMetrics
// (the exporter's promote_resource_attributes) but without growing each point's attributes: only
// the labels of a series not yet in the cache are built from them.
func New(settings prwt.Settings, promoted ...string) (*Translator, error) {
	if settings.SendMetadata {
		return nil, errors.New("rwtranslate: SendMetadata is not supported")
	}
	if settings.ConvertExplicitHistogramsToNHCB {
		return nil, errors.New("rwtranslate: ConvertExplicitHistogramsToNHCB is not supported")
	}
	withSuffixes, utf8Allowed := translationConfiguration(settings)
	// Read once: feature gates are set before components start.
	permissive := prometheustranslator.DropSanitizationGate.IsEnabled()
	t := &Translator{
		settings:    settings,
		metricNamer: otlptranslator.MetricNamer{WithMetricSuffixes: withSuffixes, Namespace: settings.Namespace, UTF8Allowed: utf8Allowed},
		//nolint:staticcheck // SA1019: contrib v0.159.0 still sets it; the labels must be the same as its.
		labelNamer:  otlptranslator.LabelNamer{UnderscoreLabelSanitization: !permissive, PreserveMultipleUnderscores: permissive, UTF8Allowed: utf8Allowed},
		targetNamer: otlptranslator.LabelNamer{PreserveMultipleUnderscores: !permissive},
		targetName:  otlptranslator.TargetInfoMetricName,
		promoted:    slices.Clone(promoted),
		entries:     map[string]*entry{},
		strs:        map[string]string{},
		maxIdle:     defaultMaxIdle,
		sweepEvery:  defaultSweepEvery,
		maxEntries:  defaultMaxEntries,
	}
	if settings.Namespace != "" {
		t.targetName = settings.Namespace + "_" + t.targetName
	}
	t.calls.New = func() any { return &call{t: t, bySig: map[uint64]int32{}} }
	return t, nil
}

// translationConfiguration is contrib's: the strategy, when known, overrides AddMetricSuffixes.
func translationConfiguration(settings prwt.Settings) (withSuffixes, utf8Allowed bool) {
	switch settings.TranslationStrategy {
	case "UnderscoreEscapingWithSuffixes":
		return true, false
	case "UnderscoreEscapingWithoutSuffixes":
		return false, false
	case "NoUTF8EscapingWithSuffixes":
		return true, true
	case "NoTranslation":
		return false, true
	default:
		return settings.AddMetricSuffixes, false
	}
}

// Translate returns the time series of md, those FromMetrics returns (in another order), and the
// same errors. The caller owns the series, but their Labels slices are shared with the cache and
// with other calls' results: read-only.
func (t *Translator) Translate(md pmetric.Metrics) ([]prompb.TimeSeries, error) {
	c := t.calls.Get().(*call)
	c.gen = t.gen.Add(1)
	c.series = make([]prompb.TimeSeries, 0, t.seriesHint.Load())
	c.perSeries = int(max(1, t.sampleHint.Load()))

	t.mu.RLock()
	c.metrics(md)
	t.mu.RUnlock()
	t.publish(c)

	out, errs := c.series, c.errs
	t.seriesHint.Store(int64(len(out)))
	if len(out) > 0 {
		t.sampleHint.Store(min(maxSampleHint, (c.samples+int64(len(out))-1)/int64(len(out))))
	}
	c.reset()
	t.calls.Put(c)
	return out, errs
}

// intern makes the labels' names and values the translator's one copy of each string: a device's
// series share its job, instance and promoted values, all series the label names (each series had
// copies of its own, ~200 bytes a series). The table is emptied when it reaches maxEntries strings,
// so that values no series uses any more do not stay forever; the entries keep theirs.
func (t *Translator) intern(labels []prompb.Label) {
	t.internMu.Lock()
	defer t.internMu.Unlock()
	one := func(s string) string {
		if c, ok := t.strs[s]; ok {
			return c
		}
		if len(t.strs) >= t.maxEntries {
			clear(t.strs)
		}
		t.strs[s] = s
		return s
	}
	for i := range labels {
		labels[i].Name, labels[i].Value = one(labels[i].Name), one(labels[i].Value)
	}
}

// publish adds the call's new entries to the cache and, every sweepEvery calls, drops those not
// used for maxIdle calls.
func (t *Translator) publish(c *call) {
	sweep := c.gen%t.sweepEvery == 0
	if len(c.misses) == 0 && !sweep {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range c.misses {
		if len(t.entries) >= t.maxEntries {
			break
		}
		t.entries[k] = e
	}
	if sweep {
		// Against the newest call: a concurrent later call may have used an entry already.
		now := t.gen.Load()
		for k, e := range t.entries {
			if e.used.Load()+t.maxIdle < now {
				delete(t.entries, k)
			}
		}
	}
}

// call is one Translate's state; the buffers are kept for the next call.
type call struct {
	t      *Translator
	gen    uint64
	series []prompb.TimeSeries
	errs   error

	bySig map[uint64]int32 // a label hash to the first series with it
	next  []int32          // per series: the next one with the same hash, or -1
	arena []prompb.Sample  // backs the first samples of each series (fresh each call: the caller keeps it)
	// perSeries is the room each series gets in the arena; samples counts the call's samples
	perSeries int
	samples   int64
	misses    map[string]*entry
	key       []byte
	ctx       []byte
	bounds    []bucketBound
}

func (c *call) reset() {
	c.series, c.errs, c.arena, c.misses = nil, nil, nil, nil
	c.samples = 0
	clear(c.bySig)
	c.next = c.next[:0]
	c.bounds = c.bounds[:0]
}

func (c *call) fail(err error) {
	c.errs = multierr.Append(c.errs, err)
}

// lookup finds the entry of c.key, in the cache or among this call's new entries.
func (c *call) lookup() *entry {
	if e, ok := c.t.entries[string(c.key)]; ok {
		if e.used.Load() != c.gen {
			e.used.Store(c.gen)
		}
		return e
	}
	return c.misses[string(c.key)]
}

func (c *call) remember(e *entry) *entry {
	if c.misses == nil {
		c.misses = map[string]*entry{}
	}
	e.used.Store(c.gen)
	c.misses[string(c.key)] = e
	return e
}

// seriesOf returns the index of the call's series with these labels, adding it if new.
func (c *call) seriesOf(ls *labelSet) int32 {
	head, ok := c.bySig[ls.sig]
	if ok {
		for i := head; i >= 0; i = c.next[i] {
			if sameLabels(c.series[i].Labels, ls.labels) {
				return i
			}
		}
	} else {
		head = -1
	}
	i := int32(len(c.series))
	c.series = append(c.series, prompb.TimeSeries{Labels: ls.labels})
	c.next = append(c.next, head)
	c.bySig[ls.sig] = i
	return i
}

// maxSampleHint bounds the arena room of a series: a batch is a few polls of the same series.
const maxSampleHint = 64

func (c *call) addSample(ls *labelSet, s prompb.Sample) int32 {
	c.samples++
	i := c.seriesOf(ls)
	ts := &c.series[i]
	if ts.Samples != nil {
		ts.Samples = append(ts.Samples, s)
		return i
	}
	room := c.perSeries
	if len(c.arena)+room > cap(c.arena) {
		c.arena = make([]prompb.Sample, 0, max(64, room, min(2*cap(c.arena), 4096)))
	}
	n := len(c.arena)
	// Room for as many samples as a series had on average in the last call (a batch holds several
	// polls of the same series, a sample each): they are appended in place instead of growing a
	// slice of their own 1, 2, 4, 8. The capacity ends there: more go elsewhere, not over the next
	// series'.
	ts.Samples = append(c.arena[n:n:n+room], s)
	c.arena = c.arena[:n+room]
	return i
}

func (c *call) metrics(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		resource := rm.Resource()
		var newest pcommon.Timestamp
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			scope := sm.Scope()
			c.context(resource, scope)
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				c.metric(ms.At(k), resource, scope, &newest)
			}
		}
		c.targetInfo(resource, newest)
	}
}

func (c *call) metric(m pmetric.Metric, resource pcommon.Resource, scope pcommon.InstrumentationScope, newest *pcommon.Timestamp) {
	*newest = max(*newest, mostRecentTimestamp(m))
	if !validTemporality(m) {
		c.fail(fmt.Errorf("invalid temporality and type combination for metric %q", m.Name()))
		return
	}
	name, err := c.promName(m)
	if err != nil {
		c.fail(err)
		return
	}
	empty := func() { c.fail(fmt.Errorf("empty data points. %s is dropped", m.Name())) }
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		if m.Gauge().DataPoints().Len() == 0 {
			empty()
			return
		}
		c.numbers(m.Gauge().DataPoints(), resource, scope, name, false)
	case pmetric.MetricTypeSum:
		if m.Sum().DataPoints().Len() == 0 {
			empty()
			return
		}
		// Only counters carry their exemplars, as in contrib.
		c.numbers(m.Sum().DataPoints(), resource, scope, name, m.Sum().IsMonotonic())
	case pmetric.MetricTypeHistogram:
		if m.Histogram().DataPoints().Len() == 0 {
			empty()
			return
		}
		c.histograms(m.Histogram().DataPoints(), resource, scope, name)
	case pmetric.MetricTypeExponentialHistogram:
		if m.ExponentialHistogram().DataPoints().Len() == 0 {
			empty()
			return
		}
		c.exponentialHistograms(m.ExponentialHistogram().DataPoints(), resource, scope, name)
	case pmetric.MetricTypeSummary:
		if m.Summary().DataPoints().Len() == 0 {
			empty()
			return
		}
		c.summaries(m.Summary().DataPoints(), resource, scope, name)
	default:
		c.fail(errors.New("unsupported metric type"))
	}
}

// promName is the metric's Prometheus name (with suffixes, namespace), remembered by name, unit and
// type.
func (c *call) promName(m pmetric.Metric) (string, error) {
	monotonic := byte(0)
	if m.Type() == pmetric.MetricTypeSum && m.Sum().IsMonotonic() {
		monotonic = 1
	}
	c.key = append(c.key[:0], 'm', byte(m.Type()), monotonic)
	c.key = appendString(c.key, m.Name())
	c.key = appendString(c.key, m.Unit())
	e := c.lookup()
	if e == nil {
		name, err := c.t.metricNamer.Build(prom.TranslatorMetricFromOtelMetric(m))
		e = c.remember(&entry{name: strings.Clone(name), err: err})
	}
	return e.name, e.err
}

// context encodes what of the resource and the scope goes into a point's labels: the attributes
// that make job and instance, the promoted ones, and the scope unless its labels are disabled.
func (c *call) context(resource pcommon.Resource, scope pcommon.InstrumentationScope) {
	c.ctx = c.ctx[:0]
	attrs := resource.Attributes()
	c.ctx = appendKeys(c.ctx, attrs, identifyingAttrs)
	c.ctx = appendKeys(c.ctx, attrs, c.t.promoted)
	if !c.t.settings.DisableScopeInfo {
		c.ctx = appendString(c.ctx, scope.Name())
		c.ctx = appendString(c.ctx, scope.Version())
		c.ctx = appendMap(c.ctx, scope.Attributes())
	}
}

// pointKey starts c.key for the points of one metric: kind, context and name.
func (c *call) pointKey(kind byte, name string) int {
	c.key = append(c.key[:0], kind)
	c.key = append(c.key, c.ctx...)
	c.key = appendString(c.key, name)
	return len(c.key)
}

func (c *call) numbers(dps pmetric.NumberDataPointSlice, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string, exemplars bool) {
	mark := c.pointKey('n', name)
	for x := 0; x < dps.Len(); x++ {
		pt := dps.At(x)
		e := c.numberEntry(mark, pt.Attributes(), resource, scope, name)
		if e.err != nil {
			c.fail(e.err)
			continue
		}
		s := prompb.Sample{Timestamp: millis(pt.Timestamp())}
		switch pt.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			s.Value = float64(pt.IntValue())
		case pmetric.NumberDataPointValueTypeDouble:
			s.Value = pt.DoubleValue()
		case pmetric.NumberDataPointValueTypeEmpty:
		}
		s.Value = sampleValue(pt.Flags(), s.Value)
		i := c.addSample(&e.series[0], s)
		if exemplars && pt.Exemplars().Len() > 0 {
			c.series[i].Exemplars = append(c.series[i].Exemplars, promExemplars(pt.Exemplars())...)
		}
	}
}

// numberEntry is the entry of a point with one series named name (numbers, exponential histograms).
func (c *call) numberEntry(mark int, attrs pcommon.Map, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string) *entry {
	return c.pointEntry(mark, attrs, 0, nil, func() *entry {
		labels, err := createAttributes(resource, c.t.pointAttrs(attrs, resource), scope, c.t.settings.ExternalLabels, nil, c.t.labelNamer, c.t.settings.DisableScopeInfo, model.MetricNameLabel, name)
		if err != nil {
			return &entry{err: err}
		}
		c.t.intern(labels)
		return &entry{series: []labelSet{newLabelSet(labels)}}
	})
}

// pointAttrs is what a point's labels are made of: its attributes and, for each promoted key it has
// no attribute of, the resource's (appended in the order of the keys, as promoting them onto the
// point does). A copy, made only for a series not yet in the cache.
func (t *Translator) pointAttrs(attrs pcommon.Map, resource pcommon.Resource) pcommon.Map {
	res := resource.Attributes()
	merged, copied := attrs, false
	for _, k := range t.promoted {
		v, ok := res.Get(k)
		if !ok {
			continue
		}
		if _, ok := merged.Get(k); ok {
			continue
		}
		if !copied {
			merged, copied = pcommon.NewMap(), true
			attrs.CopyTo(merged)
		}
		v.CopyTo(merged.PutEmpty(k))
	}
	return merged
}

// pointEntry finds or builds the entry of a point: its metric's key (up to mark), its attributes and
// the n floats its series are named by (a histogram's bounds, a summary's quantiles).
func (c *call) pointEntry(mark int, attrs pcommon.Map, n int, float func(int) float64, build func() *entry) *entry {
	c.key = appendMap(c.key[:mark], attrs)
	c.key = appendUvarint(c.key, uint64(n))
	for i := range n {
		c.key = appendUint64(c.key, math.Float64bits(float(i)))
	}
	if e := c.lookup(); e != nil {
		return e
	}
	return c.remember(build())
}

// sampleValue is v, or the stale marker for a point flagged as having no recorded value.
func sampleValue(flags pmetric.DataPointFlags, v float64) float64 {
	if flags.NoRecordedValue() {
		return staleNaN
	}
	return v
}

func (c *call) exponentialHistograms(dps pmetric.ExponentialHistogramDataPointSlice, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string) {
	mark := c.pointKey('n', name)
	for x := 0; x < dps.Len(); x++ {
		pt := dps.At(x)
		e := c.numberEntry(mark, pt.Attributes(), resource, scope, name)
		if e.err != nil {
			c.fail(e.err)
			continue
		}
		// The series exists even when the point does not convert, as in contrib.
		i := c.seriesOf(&e.series[0])
		h, err := nativeHistogram(pt)
		if err != nil {
			c.fail(err)
			continue
		}
		ts := &c.series[i]
		ts.Histograms = append(ts.Histograms, h)
		if pt.Exemplars().Len() > 0 {
			ts.Exemplars = append(ts.Exemplars, promExemplars(pt.Exemplars())...)
		}
	}
}

type bucketBound struct {
	series int32
	bound  float64
}

// byBound sorts as contrib's byBucketBoundsData, with the same algorithm, so that equal bounds (0
// and -0) end in the same order and an exemplar lands in the same bucket.
type byBound []bucketBound

func (b byBound) Len() int           { return len(b) }
func (b byBound) Less(i, j int) bool { return b[i].bound < b[j].bound }
func (b byBound) Swap(i, j int)      { b[i], b[j] = b[j], b[i] }

func (c *call) histograms(dps pmetric.HistogramDataPointSlice, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string) {
	mark := c.pointKey('h', name)
	for x := 0; x < dps.Len(); x++ {
		pt := dps.At(x)
		bounds, counts := pt.ExplicitBounds(), pt.BucketCounts()
		n := min(bounds.Len(), counts.Len())
		e := c.pointEntry(mark, pt.Attributes(), n, bounds.At, func() *entry { return c.t.histogramEntry(pt, n, resource, scope, name) })
		if e.err != nil {
			c.fail(e.err)
			continue
		}
		ts := millis(pt.Timestamp())
		flags := pt.Flags()
		if pt.HasSum() {
			c.addSample(&e.series[0], prompb.Sample{Value: sampleValue(flags, pt.Sum()), Timestamp: ts})
		}
		c.addSample(&e.series[1], prompb.Sample{Value: sampleValue(flags, float64(pt.Count())), Timestamp: ts})
		withExemplars := pt.Exemplars().Len() > 0
		c.bounds = c.bounds[:0]
		var cumulative uint64
		for i := range n {
			cumulative += counts.At(i)
			s := c.addSample(&e.series[2+i], prompb.Sample{Value: sampleValue(flags, float64(cumulative)), Timestamp: ts})
			if withExemplars {
				c.bounds = append(c.bounds, bucketBound{series: s, bound: bounds.At(i)})
			}
		}
		s := c.addSample(&e.series[2+n], prompb.Sample{Value: sampleValue(flags, float64(pt.Count())), Timestamp: ts})
		if withExemplars {
			c.bounds = append(c.bounds, bucketBound{series: s, bound: math.Inf(1)})
			sort.Sort(byBound(c.bounds))
			for _, ex := range promExemplars(pt.Exemplars()) {
				for _, b := range c.bounds {
					if ex.Value <= b.bound {
						c.series[b.series].Exemplars = append(c.series[b.series].Exemplars, ex)
						break
					}
				}
			}
		}
	}
}

func (t *Translator) histogramEntry(pt pmetric.HistogramDataPoint, n int, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string) *entry {
	base, err := createAttributes(resource, t.pointAttrs(pt.Attributes(), resource), scope, t.settings.ExternalLabels, nil, t.labelNamer, t.settings.DisableScopeInfo)
	if err != nil {
		return &entry{err: err}
	}
	t.intern(base)
	series := make([]labelSet, 0, n+3)
	series = append(series, seriesLabels(name+sumSuffix, base), seriesLabels(name+countSuffix, base))
	for i := range n {
		le := strconv.FormatFloat(pt.ExplicitBounds().At(i), 'f', -1, 64)
		series = append(series, seriesLabels(name+bucketSuffix, base, leLabel, le))
	}
	series = append(series, seriesLabels(name+bucketSuffix, base, leLabel, infBound))
	return &entry{series: series}
}

func (c *call) summaries(dps pmetric.SummaryDataPointSlice, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string) {
	mark := c.pointKey('s', name)
	for x := 0; x < dps.Len(); x++ {
		pt := dps.At(x)
		qs := pt.QuantileValues()
		quantile := func(i int) float64 { return qs.At(i).Quantile() }
		e := c.pointEntry(mark, pt.Attributes(), qs.Len(), quantile, func() *entry { return c.t.summaryEntry(pt, resource, scope, name) })
		if e.err != nil {
			c.fail(e.err)
			continue
		}
		ts := millis(pt.Timestamp())
		flags := pt.Flags()
		c.addSample(&e.series[0], prompb.Sample{Value: sampleValue(flags, pt.Sum()), Timestamp: ts})
		c.addSample(&e.series[1], prompb.Sample{Value: sampleValue(flags, float64(pt.Count())), Timestamp: ts})
		for i := 0; i < qs.Len(); i++ {
			c.addSample(&e.series[2+i], prompb.Sample{Value: sampleValue(flags, qs.At(i).Value()), Timestamp: ts})
		}
	}
}

func (t *Translator) summaryEntry(pt pmetric.SummaryDataPoint, resource pcommon.Resource, scope pcommon.InstrumentationScope, name string) *entry {
	base, err := createAttributes(resource, t.pointAttrs(pt.Attributes(), resource), scope, t.settings.ExternalLabels, nil, t.labelNamer, t.settings.DisableScopeInfo)
	if err != nil {
		return &entry{err: err}
	}
	t.intern(base)
	qs := pt.QuantileValues()
	series := make([]labelSet, 0, qs.Len()+2)
	series = append(series, seriesLabels(name+sumSuffix, base), seriesLabels(name+countSuffix, base))
	for i := 0; i < qs.Len(); i++ {
		q := strconv.FormatFloat(qs.At(i).Quantile(), 'f', -1, 64)
		series = append(series, seriesLabels(name, base, quantileName, q))
	}
	return &entry{series: series}
}

// targetInfo adds the resource's target_info sample, at the time of its newest point.
func (c *call) targetInfo(resource pcommon.Resource, newest pcommon.Timestamp) {
	if c.t.settings.DisableTargetInfo || newest == 0 {
		return
	}
	c.key = append(c.key[:0], 't')
	c.key = appendMap(c.key, resource.Attributes())
	e := c.lookup()
	if e == nil {
		e = c.remember(c.t.targetInfoEntry(resource))
	}
	if e.err != nil {
		c.fail(e.err)
		return
	}
	if len(e.series) == 0 {
		return
	}
	c.addSample(&e.series[0], prompb.Sample{Value: 1, Timestamp: millis(newest)})
}

// targetInfoEntry holds target_info's labels, or no series where contrib sends none: a resource with
// only job and instance attributes, or none of them.
func (t *Translator) targetInfoEntry(resource pcommon.Resource) *entry {
	attrs := resource.Attributes()
	nonIdentifying := attrs.Len()
	for _, a := range identifyingAttrs {
		if _, ok := attrs.Get(a); ok {
			nonIdentifying--
		}
	}
	if nonIdentifying == 0 {
		return &entry{}
	}
	labels, err := createAttributes(resource, attrs, pcommon.NewInstrumentationScope(), t.settings.ExternalLabels, identifyingAttrs, t.targetNamer, t.settings.DisableScopeInfo, model.MetricNameLabel, t.targetName)
	if err != nil {
		return &entry{err: err}
	}
	for _, l := range labels {
		if l.Name == model.JobLabel || l.Name == model.InstanceLabel {
			t.intern(labels)
			return &entry{series: []labelSet{newLabelSet(labels)}}
		}
	}
	return &entry{}
}
