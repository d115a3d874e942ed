package tdigestprocessor

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

// How input types become values:
//
//   - gauge: each point's value.
//   - sum, sums: value: each point's value. sums: delta: the increase since the
//     previous point of the same stream (a delta-temporality point is already
//     one); see addSum for resets.
//   - histogram, exponential histogram: each bucket's count spread evenly over
//     the bucket (at most spreadPoints positions of equal weight), buckets
//     clamped to the point's min/max when present; the open-ended first and last
//     explicit buckets collapse to their finite bound (the first to 0 when that
//     bound is positive), as Prometheus' histogram_quantile assumes. Cumulative
//     histograms contribute the bucket increases since the previous point.
const spreadPoints = 8

// rawBucket is one bucket of a histogram point before its bounds are known:
// explicit buckets by index, exponential ones by (sign, index).
type rawBucket struct {
	kind  int8 // kindExplicit, kindZero, kindPos, kindNeg
	index int32
	n     uint64
}

const (
	kindExplicit int8 = iota
	kindNeg
	kindZero
	kindPos
)

func cmpRaw(a, b rawBucket) int {
	if a.kind != b.kind {
		return int(a.kind) - int(b.kind)
	}
	switch {
	case a.index < b.index:
		return -1
	case a.index > b.index:
		return 1
	}
	return 0
}

// stream is the last point of a cumulative input stream, for deltas.
type stream struct {
	last    int64 // slide of the last point
	start   pcommon.Timestamp
	ts      pcommon.Timestamp
	value   float64 // sums
	count   uint64  // histograms
	sum     float64
	scale   int32
	bounds  []float64
	buckets []rawBucket
}

type streamTable struct {
	max int
	m   map[string]*stream
}

func newStreamTable(maxStreams int) *streamTable {
	return &streamTable{max: maxStreams, m: map[string]*stream{}}
}

// expire forgets streams without a point since slide lo.
func (t *streamTable) expire(lo int64) {
	for k, s := range t.m {
		if s.last < lo {
			delete(t.m, k)
		}
	}
}

// stream returns the cumulative-stream state of the point (its full identity:
// resource, scope, metric and all point attributes) and whether it is new; nil
// when max_series streams are tracked already.
func (p *tdigestProcessor) stream(pt *point, idx int64) (*stream, bool) {
	b := p.skey[:0]
	b = append(b, p.resourcePrefix()...)
	b = quantile.AppendString(b, pt.scope.Name())
	b = quantile.AppendString(b, pt.scope.Version())
	b = quantile.AppendString(b, pt.m.Name())
	b = p.sorter.Append(b, pt.attrs)
	p.skey = b
	if st, ok := p.streams.m[string(b)]; ok {
		st.last = idx
		return st, false
	}
	if len(p.streams.m) >= p.streams.max {
		return nil, false
	}
	st := &stream{last: idx}
	p.streams.m[string(b)] = st
	return st, true
}

// restarted tells whether a cumulative point starts a new run of its stream.
func restarted(st *stream, start pcommon.Timestamp) bool {
	return start != 0 && st.start != 0 && start != st.start
}

// addSum digests a Sum point; false when its cumulative stream was refused.
//
// Cumulative in sums: delta: the first point of a stream is only a baseline,
// unless its start time is after the processor started (then the whole value
// is the increase). A new start time starts a new run: its value is the
// increase. A monotonic sum that decreases without a new start time is taken
// as a reset: baseline only. Points not newer than the last are ignored.
func (p *tdigestProcessor) addSum(pt *point, s *quantile.Series[seriesMeta], idx int64, sum pmetric.Sum, dp pmetric.NumberDataPoint) bool {
	v, ok := numberValue(dp)
	if !ok {
		return true
	}
	if pt.sel.cfg.Sums == SumValue || sum.AggregationTemporality() == pmetric.AggregationTemporalityDelta {
		p.eng.Add(s, idx, v)
		return true
	}
	st, isNew := p.stream(pt, idx)
	if st == nil {
		return false
	}
	start, ts := dp.StartTimestamp(), dp.Timestamp()
	if isNew {
		st.value, st.start, st.ts = v, start, ts
		if start != 0 && start >= p.startTime {
			p.eng.Add(s, idx, v)
		}
		return true
	}
	if ts <= st.ts {
		return true
	}
	prev := st.value
	switch {
	case restarted(st, start):
		p.eng.Add(s, idx, v)
	case sum.IsMonotonic() && v < prev:
		// reset without a start time: baseline only
	default:
		p.eng.Add(s, idx, v-prev)
	}
	st.value, st.start, st.ts = v, start, ts
	return true
}

// histPoint is what both histogram kinds have in common.
type histPoint struct {
	start, ts pcommon.Timestamp
	count     uint64
	sum       float64
	hasSum    bool
	min, max  float64
	hasMin    bool
	hasMax    bool
	scale     int32                // exponential
	bounds    pcommon.Float64Slice // explicit
	explicit  bool
}

func (p *tdigestProcessor) addHistogram(pt *point, s *quantile.Series[seriesMeta], idx int64, temp pmetric.AggregationTemporality, dp pmetric.HistogramDataPoint) bool {
	if dp.Flags().NoRecordedValue() {
		return true
	}
	hp := histPoint{
		start: dp.StartTimestamp(), ts: dp.Timestamp(), count: dp.Count(),
		sum: dp.Sum(), hasSum: dp.HasSum(), min: dp.Min(), hasMin: dp.HasMin(), max: dp.Max(), hasMax: dp.HasMax(),
		bounds: dp.ExplicitBounds(), explicit: true,
	}
	counts := dp.BucketCounts()
	if counts.Len() != hp.bounds.Len()+1 {
		return true // malformed, or a count-only histogram without buckets: nothing to place
	}
	raw := p.raw[:0]
	for i := 0; i < counts.Len(); i++ {
		raw = append(raw, rawBucket{kind: kindExplicit, index: int32(i), n: counts.At(i)})
	}
	p.raw = raw
	return p.addBuckets(pt, s, idx, temp, &hp, raw)
}

func (p *tdigestProcessor) addExpHistogram(pt *point, s *quantile.Series[seriesMeta], idx int64, temp pmetric.AggregationTemporality, dp pmetric.ExponentialHistogramDataPoint) bool {
	if dp.Flags().NoRecordedValue() {
		return true
	}
	hp := histPoint{
		start: dp.StartTimestamp(), ts: dp.Timestamp(), count: dp.Count(),
		sum: dp.Sum(), hasSum: dp.HasSum(), min: dp.Min(), hasMin: dp.HasMin(), max: dp.Max(), hasMax: dp.HasMax(),
		scale: dp.Scale(),
	}
	raw := p.raw[:0]
	neg := dp.Negative()
	for i := neg.BucketCounts().Len() - 1; i >= 0; i-- { // most negative first
		raw = append(raw, rawBucket{kind: kindNeg, index: -(neg.Offset() + int32(i)), n: neg.BucketCounts().At(i)})
	}
	if dp.ZeroCount() > 0 {
		raw = append(raw, rawBucket{kind: kindZero, n: dp.ZeroCount()})
	}
	pos := dp.Positive()
	for i := 0; i < pos.BucketCounts().Len(); i++ {
		raw = append(raw, rawBucket{kind: kindPos, index: pos.Offset() + int32(i), n: pos.BucketCounts().At(i)})
	}
	p.raw = raw
	return p.addBuckets(pt, s, idx, temp, &hp, raw)
}

// addBuckets digests the buckets of a histogram point, or for a cumulative one
// their increase since the previous point of its stream (same rules as sums; a
// changed bucket layout or a decreasing count is a reset).
func (p *tdigestProcessor) addBuckets(pt *point, s *quantile.Series[seriesMeta], idx int64, temp pmetric.AggregationTemporality, hp *histPoint, raw []rawBucket) bool {
	sumDelta, hasSum := hp.sum, hp.hasSum
	if temp == pmetric.AggregationTemporalityCumulative {
		st, isNew := p.stream(pt, idx)
		if st == nil {
			return false
		}
		use := false
		switch {
		case isNew:
			use = hp.start != 0 && hp.start >= p.startTime
		case hp.ts <= st.ts:
			return true
		case restarted(st, hp.start):
			use = true
		case hp.count >= st.count && sameLayout(st, hp):
			var ok bool
			raw, ok = diffBuckets(p.diff[:0], raw, st.buckets)
			p.diff = raw
			use = ok
			sumDelta = hp.sum - st.sum
		}
		// remember this point whatever happened
		st.start, st.ts, st.count, st.sum, st.scale = hp.start, hp.ts, hp.count, hp.sum, hp.scale
		st.bounds = st.bounds[:0]
		if hp.explicit {
			for i := 0; i < hp.bounds.Len(); i++ {
				st.bounds = append(st.bounds, hp.bounds.At(i))
			}
		}
		st.buckets = append(st.buckets[:0], p.raw...)
		if !use {
			return true
		}
	}
	approx, added := 0.0, false
	for _, rb := range raw {
		if rb.n == 0 {
			continue
		}
		lo, hi, ok := hp.bucketRange(rb)
		if !ok {
			continue
		}
		approx += p.spread(s, idx, lo, hi, rb.n)
		added = true
	}
	if added && hasSum {
		p.eng.CorrectSum(s, idx, sumDelta-approx)
	}
	return true
}

func sameLayout(st *stream, hp *histPoint) bool {
	if !hp.explicit {
		return len(st.bounds) == 0 && st.scale == hp.scale
	}
	if hp.bounds.Len() != len(st.bounds) {
		return false
	}
	for i, b := range st.bounds {
		if hp.bounds.At(i) != b {
			return false
		}
	}
	return true
}

// diffBuckets appends cur minus prev (both sorted) to dst; false if some
// bucket decreased or vanished (a reset).
func diffBuckets(dst, cur, prev []rawBucket) ([]rawBucket, bool) {
	j := 0
	for _, c := range cur {
		for j < len(prev) && cmpRaw(prev[j], c) < 0 {
			if prev[j].n > 0 {
				return dst, false
			}
			j++
		}
		if j < len(prev) && cmpRaw(prev[j], c) == 0 {
			if c.n < prev[j].n {
				return dst, false
			}
			c.n -= prev[j].n
			j++
		}
		dst = append(dst, c)
	}
	for ; j < len(prev); j++ {
		if prev[j].n > 0 {
			return dst, false
		}
	}
	return dst, true
}

// bucketRange is the value range of a bucket, clamped to min/max; false when
// it cannot be placed (non-finite).
func (hp *histPoint) bucketRange(rb rawBucket) (lo, hi float64, ok bool) {
	switch rb.kind {
	case kindExplicit:
		n := hp.bounds.Len()
		if n == 0 { // a single bucket: min to max, else the mean
			switch {
			case hp.hasMin && hp.hasMax && hp.min <= hp.max:
				return hp.min, hp.max, true
			case hp.hasSum && hp.count > 0:
				m := hp.sum / float64(hp.count)
				return m, m, !math.IsInf(m, 0) && !math.IsNaN(m)
			}
			return 0, 0, false
		}
		i := int(rb.index)
		lo, hi = math.Inf(-1), math.Inf(1)
		if i > 0 && i-1 < n {
			lo = hp.bounds.At(i - 1)
		}
		if i < n {
			hi = hp.bounds.At(i)
		}
	case kindZero:
		lo, hi = 0, 0
	case kindPos, kindNeg:
		// bucket index i holds (base^i, base^(i+1)], base = 2^(2^-scale)
		i := float64(rb.index)
		if rb.kind == kindNeg {
			i = -i
		}
		f := math.Exp2(-float64(hp.scale))
		lo, hi = math.Exp2(i*f), math.Exp2((i+1)*f)
		if rb.kind == kindNeg {
			lo, hi = -hi, -lo
		}
	}
	if hp.hasMin && !math.IsNaN(hp.min) {
		lo = max(lo, hp.min)
		hi = max(hi, hp.min)
	}
	if hp.hasMax && !math.IsNaN(hp.max) {
		hi = min(hi, hp.max)
		lo = min(lo, hp.max)
	}
	if math.IsInf(lo, -1) {
		// open first bucket: from 0 when its bound is positive, else at its bound
		if hi > 0 {
			lo = 0
		} else {
			lo = hi
		}
	}
	if math.IsInf(hi, 1) {
		hi = lo // open last bucket: at its finite bound
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		return 0, 0, false
	}
	return lo, hi, true
}

// spread adds n values evenly over [lo, hi] and returns their sum.
func (p *tdigestProcessor) spread(s *quantile.Series[seriesMeta], idx int64, lo, hi float64, n uint64) float64 {
	if lo == hi {
		if n <= spreadPoints {
			for range n {
				p.eng.Add(s, idx, lo)
			}
		} else {
			p.eng.AddWeighted(s, idx, lo, float64(n))
		}
		return lo * float64(n)
	}
	k := min(n, spreadPoints)
	w := float64(n) / float64(k)
	total := 0.0
	for j := range k {
		v := lo + (hi-lo)*(float64(j)+0.5)/float64(k)
		p.eng.AddWeighted(s, idx, v, w)
		total += v * w
	}
	return total
}
