package quantile

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/influxdata/tdigest"
)

func benchValues(n int) []float64 {
	r := rand.New(rand.NewPCG(9, 9))
	v := make([]float64, n)
	for i := range v {
		v[i] = 0.02 * r.ExpFloat64()
	}
	return v
}

// The reference: the raw library loop, one digest at compression 100.
func BenchmarkRawTDigestAdd(b *testing.B) {
	vals := benchValues(1 << 16)
	td := tdigest.NewWithCompression(DefaultCompression)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		td.Add(vals[i&(1<<16-1)], 1)
	}
}

// Engine.Add on one busy series (digested slides, batches merged).
func BenchmarkEngineAddBusySeries(b *testing.B) {
	vals := benchValues(1 << 16)
	e, _ := New[struct{}](defaultSettings())
	s := e.Get([]byte("k"), t0, nil)
	idx := e.SlideIndex(t0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%100_000 == 0 { // a new slide every 100k values
			idx++
		}
		e.Add(s, idx, vals[i&(1<<16-1)])
	}
}

// Engine.Add over 1000 series, each slide holding few values (exact slides).
func BenchmarkEngineAdd1000Series(b *testing.B) {
	vals := benchValues(1 << 16)
	e, _ := New[struct{}](defaultSettings())
	ss := make([]*Series[struct{}], 1000)
	for i := range ss {
		ss[i] = e.Get(fmt.Appendf(nil, "series-%d", i), t0, nil)
	}
	idx := e.SlideIndex(t0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%10_000 == 0 { // 10 values per series and slide
			idx++
		}
		e.Add(ss[i%1000], idx, vals[i&(1<<16-1)])
	}
}

// Quantiles of a 60-value window: exact (sort) versus a digest.
func BenchmarkWindowOf60(b *testing.B) {
	vals := benchValues(60)
	qs := DefaultQuantiles()
	out := make([]float64, len(qs))
	b.Run("exact-sort", func(b *testing.B) {
		buf := make([]float64, 60)
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, vals)
			slices.Sort(buf)
			exactQuantiles(buf, qs, out)
		}
	})
	b.Run("tdigest", func(b *testing.B) {
		td := tdigest.NewWithCompression(DefaultCompression)
		b.ReportAllocs()
		for b.Loop() {
			td.Reset()
			for _, v := range vals {
				td.Add(v, 1)
			}
			for i, q := range qs {
				out[i] = td.Quantile(q)
			}
		}
	})
}

// fill gives n series one value per second for a whole window (60 s), or
// perSecond values per second.
func fill(e *Engine[struct{}], n, perSecond int) {
	vals := benchValues(1 << 16)
	k := 0
	for sec := range 60 {
		at := t0.Add(time.Duration(sec) * time.Second)
		idx := e.SlideIndex(at)
		for i := range n {
			s := e.Get(fmt.Appendf(nil, "series-%d", i), at, nil)
			for range perSecond {
				e.Add(s, idx, vals[k&(1<<16-1)])
				k++
			}
		}
	}
}

// Emit of 1000 series with a full window of one value per second.
func BenchmarkEmit1000Series(b *testing.B) {
	for _, perSecond := range []int{1, 100} {
		b.Run(fmt.Sprintf("%dpersec", perSecond), func(b *testing.B) {
			e, _ := New[struct{}](defaultSettings())
			fill(e, 1000, perSecond)
			now := t0.Add(60 * time.Second)
			e.Emit(now, nil) // first emit folds digested tails
			b.ReportAllocs()
			for b.Loop() {
				e.Emit(now, func(*Series[struct{}], *Result) {})
			}
		})
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Bytes per series: heap after a GC divided by the series count, for a full
// 60 s window (default settings), next to a naive ring of six library digests.
func BenchmarkBytesPerSeries(b *testing.B) {
	const n = 2000
	for _, perSecond := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("engine-%dpersec", perSecond), func(b *testing.B) {
			for b.Loop() {
				before := heapAfterGC()
				e, _ := New[struct{}](defaultSettings())
				fill(e, n, perSecond)
				e.Emit(t0.Add(60*time.Second), nil)
				after := heapAfterGC()
				b.ReportMetric(float64(after-before)/n, "bytes/series")
				runtime.KeepAlive(e)
			}
		})
	}
	b.Run("naive-6-digests-1persec", func(b *testing.B) {
		for b.Loop() {
			before := heapAfterGC()
			rings := make([][6]*tdigest.TDigest, n/10)
			for i := range rings {
				for j := range rings[i] {
					rings[i][j] = tdigest.NewWithCompression(DefaultCompression)
					for k := range 10 {
						rings[i][j].Add(float64(k), 1)
					}
				}
			}
			after := heapAfterGC()
			b.ReportMetric(float64(after-before)/float64(len(rings)), "bytes/series")
			runtime.KeepAlive(rings)
		}
	})
}
