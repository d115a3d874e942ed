package quantile

import "github.com/influxdata/tdigest"

// source is a part of a window whose distribution is known as a piecewise
// linear CDF: a digested slide (centroids) or the window's exact values.
//
// Its CDF goes through (min, 0), then through each centroid's mean at the
// weight below it plus half its own weight (for exact values: (x_i, i+0.5)),
// then (max, n): the t-digest interpolation rule.
type source struct {
	cents []tdigest.Centroid // digested slide, sorted by mean; nil for exact values
	cum   []float64          // cum[i]: weight below cents[i] plus half of its own
	off   int                // offset of cum in the engine's scratch
	vals  []float64          // sorted exact values (when cents is nil)
	min   float64
	max   float64
	n     float64 // total weight
}

func (s *source) len() int {
	if s.cents != nil {
		return len(s.cents)
	}
	return len(s.vals)
}

func (s *source) point(i int) (x, c float64) {
	if s.cents != nil {
		return s.cents[i].Mean, s.cum[i]
	}
	return s.vals[i], float64(i) + 0.5
}

// cdf is the weight at or below x (right-continuous).
func (s *source) cdf(x float64) float64 {
	if x < s.min {
		return 0
	}
	if x >= s.max {
		return s.n
	}
	// j: first point with position > x
	lo, hi := 0, s.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if px, _ := s.point(m); px > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	j := lo
	x0, c0 := s.min, 0.0
	if j > 0 {
		x0, c0 = s.point(j - 1)
	}
	x1, c1 := s.max, s.n
	if j < s.len() {
		x1, c1 = s.point(j)
	}
	// x0 <= x < x1
	return c0 + (x-x0)/(x1-x0)*(c1-c0)
}

func mixCDF(srcs []source, x float64) float64 {
	f := 0.0
	for i := range srcs {
		f += srcs[i].cdf(x)
	}
	return f
}

// mixQuantiles writes to out the quantiles qs of the sum of the sources' CDFs.
// bps are the sorted distinct breakpoints of all sources (every centroid mean,
// exact value, min and max): between two of them the sum is linear.
func mixQuantiles(srcs []source, bps []float64, total float64, qs, out []float64) {
	for i, q := range qs {
		target := q * total
		// smallest breakpoint b with F(b) >= target; F(last) == total
		lo, hi := 0, len(bps)-1
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if mixCDF(srcs, bps[m]) >= target {
				hi = m
			} else {
				lo = m + 1
			}
		}
		if lo == 0 {
			out[i] = bps[0]
			continue
		}
		xa, xb := bps[lo-1], bps[lo]
		fa := mixCDF(srcs, xa)
		// F is linear on [xa, xb); its left limit at xb from the midpoint
		mid := xa + (xb-xa)/2
		fb := fa + 2*(mixCDF(srcs, mid)-fa)
		if mid <= xa || mid >= xb || target >= fb || fb <= fa {
			out[i] = xb
			continue
		}
		out[i] = xa + (target-fa)/(fb-fa)*(xb-xa)
	}
}
