package quantile

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream generators: n values, deterministic.
type stream struct {
	name string
	gen  func(r *rand.Rand, i, n int) float64
}

var streams = []stream{
	{"uniform", func(r *rand.Rand, _, _ int) float64 { return r.Float64() * 100 }},
	// latency-like: median 20 ms, long right tail (sigma 1)
	{"lognormal", func(r *rand.Rand, _, _ int) float64 { return 0.020 * math.Exp(r.NormFloat64()) }},
	// two modes: 90 % fast around 5, 10 % slow around 50
	{"bimodal", func(r *rand.Rand, _, _ int) float64 {
		if r.Float64() < 0.9 {
			return 5 + r.NormFloat64()*0.5
		}
		return 50 + r.NormFloat64()*5
	}},
	// a sensor drifting from 20 to 80 over the window with noise
	{"drifting", func(r *rand.Rand, i, n int) float64 {
		return 20 + 60*float64(i)/float64(n) + r.NormFloat64()
	}},
}

// rankOf is the fraction of sorted values below v (mid-rank for ties).
func rankOf(sorted []float64, v float64) float64 {
	lo, _ := slices.BinarySearch(sorted, v)
	hi := lo
	for hi < len(sorted) && sorted[hi] == v {
		hi++
	}
	return (float64(lo) + float64(hi-lo)/2) / float64(len(sorted))
}

type accuracy struct {
	rankErr, valueErr float64 // rank error in percentage points, relative value error in %
}

// measure pushes n values spread evenly over the slides of one window and compares
// the emitted quantiles with quantiles of the sorted values.
func measure(t testing.TB, st stream, n int, set Settings) map[float64]accuracy {
	e, err := New[struct{}](set)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(42, uint64(len(st.name))))
	all := make([]float64, n)
	base := time.Unix(1_700_000_000, 0).Truncate(set.Slide)
	slides := int(set.Window / set.Slide)
	s := e.Get([]byte("k"), base, nil)
	for i := range n {
		v := st.gen(r, i, n)
		all[i] = v
		idx := e.SlideIndex(base.Add(time.Duration(i*slides/n) * set.Slide))
		e.Add(s, idx, v)
	}
	slices.Sort(all)
	want := make([]float64, len(set.Quantiles))
	exactQuantiles(all, set.Quantiles, want)
	out := map[float64]accuracy{}
	emitted := 0
	e.Emit(base.Add(set.Window), func(_ *Series[struct{}], res *Result) {
		emitted++
		require.InDelta(t, float64(n), res.Count, 0.5)
		require.Equal(t, all[0], res.Min)
		require.Equal(t, all[n-1], res.Max)
		for i, q := range set.Quantiles {
			got := res.Quantiles[i]
			out[q] = accuracy{
				rankErr:  100 * math.Abs(rankOf(all, got)-q),
				valueErr: 100 * math.Abs(got-want[i]) / math.Abs(want[i]),
			}
		}
	})
	require.Equal(t, 1, emitted)
	return out
}

func defaultSettings() Settings {
	return Settings{
		Window: DefaultWindow, Slide: DefaultSlide, Compression: DefaultCompression,
		ExactLimit: DefaultExactLimit, MaxSeries: DefaultMaxSeries, Quantiles: DefaultQuantiles(),
	}
}

func TestAccuracy1e6(t *testing.T) {
	for _, st := range streams {
		t.Run(st.name, func(t *testing.T) {
			acc := measure(t, st, 1_000_000, defaultSettings())
			for _, q := range defaultSettings().Quantiles {
				t.Logf("%s P%v: rank error %.4f pp, value error %.4f %%", st.name, 100*q, acc[q].rankErr, acc[q].valueErr)
			}
			assert.LessOrEqual(t, acc[0.99].rankErr, 0.1, "rank error at P99 (percentage points)")
			assert.LessOrEqual(t, acc[0.99].valueErr, 1.0, "value error at P99 (%)")
			assert.LessOrEqual(t, acc[0.5].rankErr, 0.1, "rank error at P50 (percentage points)")
		})
	}
}

var _ = fmt.Sprint
