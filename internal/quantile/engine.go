package quantile

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/influxdata/tdigest"
)

// Settings configure an Engine. Config structs of the components validate the
// user's values first; New checks them again.
type Settings struct {
	// Window is the span of time a quantile covers; a multiple of Slide.
	Window time.Duration
	// Slide is the emission period and the granularity at which values age out.
	Slide time.Duration
	// Compression of the t-digests built for slides holding many values.
	Compression float64
	// ExactLimit is the number of values a slide keeps exactly before it is
	// turned into a digest (and the batch size merged into it afterwards).
	ExactLimit int
	// MaxSeries bounds the number of series; Get refuses new ones beyond it.
	MaxSeries int
	// Quantiles to compute, each in (0, 1), ascending.
	Quantiles []float64
}

// Validate reports every problem of s.
func (s Settings) Validate() error {
	var errs []error
	if s.Slide <= 0 {
		errs = append(errs, fmt.Errorf("slide %v must be positive", s.Slide))
	}
	if s.Window <= 0 {
		errs = append(errs, fmt.Errorf("window %v must be positive", s.Window))
	}
	if s.Slide > 0 && s.Window > 0 && s.Window%s.Slide != 0 {
		errs = append(errs, fmt.Errorf("window %v must be a multiple of slide %v", s.Window, s.Slide))
	}
	if s.Slide > 0 && s.Window/s.Slide > MaxSlides {
		errs = append(errs, fmt.Errorf("window %v / slide %v is %d slides, at most %d allowed", s.Window, s.Slide, s.Window/s.Slide, MaxSlides))
	}
	if !(s.Compression >= MinCompression && s.Compression <= MaxCompression) {
		errs = append(errs, fmt.Errorf("compression %v must be within [%v, %v]", s.Compression, MinCompression, MaxCompression))
	}
	if s.ExactLimit < 1 || s.ExactLimit > MaxExactLimit {
		errs = append(errs, fmt.Errorf("exact_limit %d must be within [1, %d]", s.ExactLimit, MaxExactLimit))
	}
	if s.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("max_series %d must be at least 1", s.MaxSeries))
	}
	if len(s.Quantiles) == 0 {
		errs = append(errs, errors.New("quantiles must not be empty"))
	}
	for i, q := range s.Quantiles {
		if !(q > 0 && q < 1) {
			errs = append(errs, fmt.Errorf("quantiles[%d] %v must be within (0, 1)", i, q))
		}
		if i > 0 && q <= s.Quantiles[i-1] {
			errs = append(errs, fmt.Errorf("quantiles[%d] %v must be greater than quantiles[%d] %v", i, q, i-1, s.Quantiles[i-1]))
		}
	}
	return errors.Join(errs...)
}

// Limits of the settings.
const (
	MaxSlides      = 360
	MinCompression = 20
	MaxCompression = 1000
	MaxExactLimit  = 65536
)

// Defaults shared by the components.
const (
	DefaultWindow      = 60 * time.Second
	DefaultSlide       = 10 * time.Second
	DefaultCompression = 100
	DefaultExactLimit  = 128
	DefaultMaxSeries   = 10000
)

// DefaultQuantiles returns P50, P90, P99 and P99.9.
func DefaultQuantiles() []float64 { return []float64{0.5, 0.9, 0.99, 0.999} }

// slot holds what one series observed during one slide.
type slot struct {
	idx   int64              // absolute slide index (see SlideIndex); meaningful when n > 0
	vals  []float64          // exact values of weight 1, not yet in cents
	cents []tdigest.Centroid // digest of the slot, sorted by mean; nil while the slot is exact
	wpend []tdigest.Centroid // weighted values not yet in cents
	n     float64            // total weight
	sum   float64            // sum of value*weight
	min   float64
	max   float64
	dirty bool // vals (or wpend) appended since last sorted
}

func (s *slot) exact() bool { return s.cents == nil && len(s.wpend) == 0 }

// Series is the sliding window of one series plus the owner's metadata M.
type Series[M any] struct {
	// Meta is the owner's data about the series (identity, output names, ...).
	Meta M
	// Start is when the series was created; cumulative totals count from it.
	Start time.Time

	slots      []slot
	last       int64 // newest slide index that received a value
	cur        *slot // the slot of slide last
	totalCount float64
	totalSum   float64
}

// Result is what Emit reports for one series. Slices are reused by the next series.
type Result struct {
	// WindowStart and WindowEnd bound the slides the window covers.
	WindowStart, WindowEnd time.Time
	// Count, Sum, Min and Max of the values in the window (Count is a weight sum).
	Count, Sum, Min, Max float64
	// Quantiles are parallel to Settings.Quantiles.
	Quantiles []float64
	// Exact is true when the window held no digested slide.
	Exact bool
	// TotalCount and TotalSum accumulate every value since Series.Start.
	TotalCount, TotalSum float64
}

// Engine keeps sliding-window quantile series keyed by an opaque byte string.
type Engine[M any] struct {
	set    Settings
	slides int64 // slides per window
	batch  int   // values buffered before they are merged into a digested slot
	series map[string]*Series[M]
	order  []*Series[M] // creation order, for deterministic emission
	keys   []string     // parallel to order
	onDrop func(s *Series[M])

	td     *tdigest.TDigest // scratch digest for compaction
	fvals  []float64
	fvals2 []float64
	srcs   []source
	cum    []float64
	bps    []float64
	means  []float64
	res    Result
}

// New returns an Engine or the problems of s.
func New[M any](s Settings) (*Engine[M], error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.Quantiles = slices.Clone(s.Quantiles)
	return &Engine[M]{
		set:    s,
		slides: int64(s.Window / s.Slide),
		batch:  batchSize(s),
		series: map[string]*Series[M]{},
		td:     tdigest.NewWithCompression(s.Compression),
		res:    Result{Quantiles: make([]float64, len(s.Quantiles))},
	}, nil
}

// OnDrop sets a function Emit calls for every series it drops (after it is
// gone from the engine), e.g. to forget the owner's index of it.
func (e *Engine[M]) OnDrop(fn func(s *Series[M])) { e.onDrop = fn }

// Settings returns the engine's settings.
func (e *Engine[M]) Settings() Settings { return e.set }

// Len is the number of series held.
func (e *Engine[M]) Len() int { return len(e.series) }

// SlideIndex is the slide now falls in; pass it to Add.
func (e *Engine[M]) SlideIndex(now time.Time) int64 { return SlideIndex(now, e.set.Slide) }

// Get returns the series of key, creating it (with init run on its Meta) if
// absent. It returns nil when the series is absent and MaxSeries are held.
func (e *Engine[M]) Get(key []byte, now time.Time, init func(m *M)) *Series[M] {
	if s, ok := e.series[string(key)]; ok {
		return s
	}
	if len(e.series) >= e.set.MaxSeries {
		return nil
	}
	s := &Series[M]{
		Start: now,
		slots: make([]slot, e.slides+1),
		last:  math.MinInt64,
	}
	if init != nil {
		init(&s.Meta)
	}
	k := string(key)
	e.series[k] = s
	e.order = append(e.order, s)
	e.keys = append(e.keys, k)
	return s
}

// slotFor returns the slot of slide idx, recycling the slot it replaces. A value
// from before the newest slide (a clock step back) goes to the newest slide.
func (e *Engine[M]) slotFor(s *Series[M], idx int64) *slot {
	if idx == s.last && s.cur != nil {
		return s.cur
	}
	if idx < s.last {
		idx = s.last
	}
	m := int64(len(s.slots))
	sl := &s.slots[((idx%m)+m)%m]
	if sl.idx != idx || sl.n == 0 {
		vals := sl.vals[:0]
		if cap(vals) > 2*e.set.ExactLimit {
			vals = nil
		}
		*sl = slot{idx: idx, vals: vals, wpend: sl.wpend[:0], min: math.Inf(1), max: math.Inf(-1)}
	}
	s.last, s.cur = idx, sl
	return sl
}

// Add records value v (weight 1) in slide idx of s. NaN and infinities are ignored.
func (e *Engine[M]) Add(s *Series[M], idx int64, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	sl := e.slotFor(s, idx)
	if n := len(sl.vals) + len(sl.wpend); n >= e.set.ExactLimit && (sl.cents == nil || n >= e.batch) {
		e.compact(sl)
	}
	sl.vals = append(sl.vals, v)
	sl.dirty = true
	sl.n++
	sl.sum += v
	sl.min = min(sl.min, v)
	sl.max = max(sl.max, v)
	s.totalCount++
	s.totalSum += v
}

// AddWeighted records value v with weight w (w > 0, e.g. a histogram bucket's
// share) in slide idx of s. Weight 1 is the same as Add.
func (e *Engine[M]) AddWeighted(s *Series[M], idx int64, v, w float64) {
	if w == 1 {
		e.Add(s, idx, v)
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || !(w > 0) || math.IsInf(w, 0) {
		return
	}
	sl := e.slotFor(s, idx)
	if n := len(sl.vals) + len(sl.wpend); n >= e.set.ExactLimit && (sl.cents == nil || n >= e.batch) {
		e.compact(sl)
	}
	sl.wpend = append(sl.wpend, tdigest.Centroid{Mean: v, Weight: w})
	sl.dirty = true
	sl.n += w
	sl.sum += v * w
	sl.min = min(sl.min, v)
	sl.max = max(sl.max, v)
	s.totalCount += w
	s.totalSum += v * w
}

func byMean(a, b tdigest.Centroid) int { return cmp.Compare(a.Mean, b.Mean) }

// compact folds the slot's exact and pending values into its digest. The input
// is fed to the scratch digest in sorted order, which its sort finds in linear time.
func (e *Engine[M]) compact(sl *slot) {
	if len(sl.vals) == 0 && len(sl.wpend) == 0 {
		return
	}
	if sl.dirty {
		slices.Sort(sl.vals)
		slices.SortFunc(sl.wpend, byMean)
		sl.dirty = false
	}
	td := e.td
	td.Reset()
	c, v, w := sl.cents, sl.vals, sl.wpend
	for len(c)+len(v)+len(w) > 0 {
		// pick the smallest head of the three sorted lists
		best, which := math.Inf(1), -1
		if len(c) > 0 && c[0].Mean <= best {
			best, which = c[0].Mean, 0
		}
		if len(v) > 0 && (which < 0 || v[0] < best) {
			best, which = v[0], 1
		}
		if len(w) > 0 && (which < 0 || w[0].Mean < best) {
			which = 2
		}
		switch which {
		case 0:
			td.AddCentroid(c[0])
			c = c[1:]
		case 1:
			td.AddCentroid(tdigest.Centroid{Mean: v[0], Weight: 1})
			v = v[1:]
		default:
			td.AddCentroid(w[0])
			w = w[1:]
		}
	}
	sl.cents = td.Centroids()
	sl.vals = sl.vals[:0]
	sl.wpend = sl.wpend[:0]
}

// Emit computes the window that ends at the slide boundary at or before now for
// every series with values in it, in creation order, and calls fn; the Result is
// only valid during the call. Series without a value for a whole window are
// dropped first. It returns the number of series still held.
func (e *Engine[M]) Emit(now time.Time, fn func(s *Series[M], r *Result)) int {
	end := e.SlideIndex(now) // first slide not in the window
	lo := end - e.slides
	j := 0
	for i, s := range e.order {
		if s.last < lo {
			delete(e.series, e.keys[i])
			if e.onDrop != nil {
				e.onDrop(s)
			}
			continue
		}
		e.order[j], e.keys[j] = s, e.keys[i]
		j++
		if e.window(s, lo, end) && fn != nil {
			fn(s, &e.res)
		}
	}
	clear(e.order[j:])
	clear(e.keys[j:])
	e.order, e.keys = e.order[:j], e.keys[:j]
	return j
}

// window fills e.res with the window [lo, end) of s; false if it holds nothing.
func (e *Engine[M]) window(s *Series[M], lo, end int64) bool {
	r := &e.res
	r.WindowStart = time.Unix(0, lo*int64(e.set.Slide))
	r.WindowEnd = time.Unix(0, end*int64(e.set.Slide))
	r.Count, r.Sum, r.Min, r.Max = 0, 0, math.Inf(1), math.Inf(-1)
	r.Exact = true
	r.TotalCount, r.TotalSum = s.totalCount, s.totalSum
	var one *slot
	nexact := 0
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.n == 0 || sl.idx < lo || sl.idx >= end {
			continue
		}
		if sl.exact() {
			if sl.dirty {
				slices.Sort(sl.vals)
				sl.dirty = false
			}
			one = sl
			nexact++
		} else {
			// a closed slide that went past the exact limit: fold its tail
			// in once and release the batch buffer
			e.compact(sl)
			sl.vals = nil
			r.Exact = false
		}
		r.Count += sl.n
		r.Sum += sl.sum
		r.Min = min(r.Min, sl.min)
		r.Max = max(r.Max, sl.max)
	}
	if r.Count == 0 {
		return false
	}
	// all exact values of the window as one sorted list
	var vals []float64
	switch {
	case nexact == 1:
		vals = one.vals
	case nexact > 1:
		// merge the sorted slides one after another (few short runs)
		e.fvals, e.fvals2 = e.fvals[:0], e.fvals2[:0]
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.n > 0 && sl.idx >= lo && sl.idx < end && sl.exact() {
				e.fvals2 = mergeSorted(e.fvals2[:0], e.fvals, sl.vals)
				e.fvals, e.fvals2 = e.fvals2, e.fvals
			}
		}
		vals = e.fvals
	}
	if r.Exact {
		exactQuantiles(vals, e.set.Quantiles, r.Quantiles)
		return true
	}
	// Digested window: the window's CDF is the sum of the CDFs of its digested
	// slides and of its exact values; each is piecewise linear, so the quantile
	// is found between two adjacent breakpoints and interpolated there.
	e.srcs = e.srcs[:0]
	e.cum = e.cum[:0]
	e.bps, e.fvals2 = e.bps[:0], e.fvals2[:0]
	if len(vals) > 0 {
		e.srcs = append(e.srcs, source{vals: vals, min: vals[0], max: vals[len(vals)-1], n: float64(len(vals))})
		e.bps = append(e.bps, vals...)
	}
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.n == 0 || sl.idx < lo || sl.idx >= end || sl.exact() {
			continue
		}
		off := len(e.cum)
		c := 0.0
		e.means = append(e.means[:0], sl.min)
		for _, ct := range sl.cents {
			e.cum = append(e.cum, c+ct.Weight/2)
			c += ct.Weight
			e.means = append(e.means, ct.Mean)
		}
		e.means = append(e.means, sl.max)
		e.fvals2 = mergeSorted(e.fvals2[:0], e.bps, e.means)
		e.bps, e.fvals2 = e.fvals2, e.bps
		e.srcs = append(e.srcs, source{cents: sl.cents, off: off, min: sl.min, max: sl.max, n: sl.n})
	}
	for i := range e.srcs {
		if e.srcs[i].cents != nil {
			e.srcs[i].cum = e.cum[e.srcs[i].off : e.srcs[i].off+len(e.srcs[i].cents)]
		}
	}
	e.bps = slices.Compact(e.bps)
	mixQuantiles(e.srcs, e.bps, r.Count, e.set.Quantiles, r.Quantiles)
	return true
}

// exactQuantiles writes the quantiles qs (ascending) of the sorted values xs to
// out, interpolating linearly between order statistics with the k-th smallest
// value at rank (k-0.5)/n (Hyndman & Fan definition 5). It is the inverse of
// source.cdf for weight-1 values, so exact and digested windows agree.
func exactQuantiles(xs []float64, qs, out []float64) {
	n := float64(len(xs))
	for i, q := range qs {
		h := q*n - 0.5
		switch {
		case h <= 0:
			out[i] = xs[0]
		case h >= n-1:
			out[i] = xs[len(xs)-1]
		default:
			k := int(h)
			f := h - float64(k)
			out[i] = xs[k] + f*(xs[k+1]-xs[k])
		}
	}
}

// batchSize is how many values a digested slot buffers before merging them:
// four times the compression (at least exact_limit), so that a merge of the
// slot's centroids is amortised over many values (a busy series then costs
// less per value than the library's own Add) without a large buffer.
func batchSize(s Settings) int {
	return max(s.ExactLimit, 4*int(s.Compression))
}

// mergeSorted appends the merge of the sorted a and b to dst.
func mergeSorted(dst, a, b []float64) []float64 {
	for len(a) > 0 && len(b) > 0 {
		if b[0] < a[0] {
			dst = append(dst, b[0])
			b = b[1:]
		} else {
			dst = append(dst, a[0])
			a = a[1:]
		}
	}
	dst = append(dst, a...)
	return append(dst, b...)
}

// CorrectSum adds d to the sum of slide idx of s and to its total without
// adding a value: for inputs whose values are estimated (histogram buckets)
// but whose sum is known. It does nothing when the slide holds no value.
func (e *Engine[M]) CorrectSum(s *Series[M], idx int64, d float64) {
	if math.IsNaN(d) || math.IsInf(d, 0) || s.last == math.MinInt64 {
		return
	}
	if idx < s.last {
		idx = s.last
	}
	m := int64(len(s.slots))
	sl := &s.slots[((idx%m)+m)%m]
	if sl.idx != idx || sl.n == 0 {
		return
	}
	sl.sum += d
	s.totalSum += d
}
