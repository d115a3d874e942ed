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
	return measureSeed(t, st, n, set, 42)
}

func measureSeed(t testing.TB, st stream, n int, set Settings, seed uint64) map[float64]accuracy {
	e, err := New[struct{}](set)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(seed, uint64(len(st.name))))
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

// BenchmarkAccuracy reports the mean and worst errors over 8 seeds of each
// 1e6-value stream at the default settings (the README's figures):
// go test -run '^$' -bench Accuracy -benchtime 1x ./internal/quantile/
func BenchmarkAccuracy(b *testing.B) {
	const seeds = 8
	for _, c := range []float64{DefaultCompression, 2 * DefaultCompression} {
		for _, st := range streams {
			b.Run(fmt.Sprintf("%s/compression=%v", st.name, c), func(b *testing.B) {
				set := defaultSettings()
				set.Compression = c
				for b.Loop() {
					var mean, worst [2]accuracy // P99, P99.9
					for seed := range seeds {
						acc := measureSeed(b, st, 1_000_000, set, uint64(seed))
						for i, q := range []float64{0.99, 0.999} {
							mean[i].rankErr += acc[q].rankErr / seeds
							mean[i].valueErr += acc[q].valueErr / seeds
							worst[i].rankErr = max(worst[i].rankErr, acc[q].rankErr)
							worst[i].valueErr = max(worst[i].valueErr, acc[q].valueErr)
						}
					}
					for i, name := range []string{"p99", "p999"} {
						b.ReportMetric(mean[i].rankErr, name+"-rank-pp-mean")
						b.ReportMetric(worst[i].rankErr, name+"-rank-pp-max")
						b.ReportMetric(mean[i].valueErr, name+"-value-%-mean")
						b.ReportMetric(worst[i].valueErr, name+"-value-%-max")
					}
				}
			})
		}
	}
}
