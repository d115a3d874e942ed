package quantile

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Unix(1_700_000_000, 0) // a multiple of 10 s

type emitted struct {
	key string
	Result
}

func emitAll(e *Engine[string], now time.Time) []emitted {
	var out []emitted
	e.Emit(now, func(s *Series[string], r *Result) {
		c := *r
		c.Quantiles = slices.Clone(r.Quantiles)
		out = append(out, emitted{key: s.Meta, Result: c})
	})
	return out
}

func newEngine(t *testing.T, mod func(*Settings)) *Engine[string] {
	set := defaultSettings()
	if mod != nil {
		mod(&set)
	}
	e, err := New[string](set)
	require.NoError(t, err)
	return e
}

func add(e *Engine[string], key string, at time.Time, vals ...float64) {
	s := e.Get([]byte(key), at, func(m *string) { *m = key })
	if s == nil {
		return
	}
	for _, v := range vals {
		e.Add(s, e.SlideIndex(at), v)
	}
}

func TestSettingsValidate(t *testing.T) {
	require.NoError(t, defaultSettings().Validate())
	err := Settings{
		Window: 25 * time.Second, Slide: 10 * time.Second, Compression: 5, ExactLimit: 0,
		MaxSeries: 0, Quantiles: []float64{0.9, 0.5, 1, 0},
	}.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"window 25s must be a multiple of slide 10s",
		"compression 5 must be within [20, 1000]",
		"exact_limit 0 must be within [1, 65536]",
		"max_series 0 must be at least 1",
		"quantiles[1] 0.5 must be greater than quantiles[0] 0.9",
		"quantiles[2] 1 must be within (0, 1)",
		"quantiles[3] 0 must be within (0, 1)",
	} {
		assert.ErrorContains(t, err, want)
	}
	err = Settings{Window: time.Hour, Slide: time.Second, Compression: 100, ExactLimit: 1, MaxSeries: 1}.Validate()
	assert.ErrorContains(t, err, "3600 slides, at most 360 allowed")
	assert.ErrorContains(t, err, "quantiles must not be empty")
	assert.ErrorContains(t, Settings{Compression: 100, ExactLimit: 1, MaxSeries: 1, Quantiles: []float64{0.5}}.Validate(), "slide 0s must be positive")
	_, err = New[string](Settings{})
	require.Error(t, err)
}

// hazen is an independent implementation of the exact quantile the engine
// promises: 1-based position h = n*q + 1/2, clamped, linear in between.
func hazen(vals []float64, q float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	h := float64(len(s))*q + 0.5
	if h <= 1 {
		return s[0]
	}
	if h >= float64(len(s)) {
		return s[len(s)-1]
	}
	lo := math.Floor(h)
	return s[int(lo)-1] + (h-lo)*(s[int(lo)]-s[int(lo)-1])
}

func TestExactKnownValues(t *testing.T) {
	e := newEngine(t, func(s *Settings) { s.Quantiles = []float64{0.05, 0.5, 0.9, 0.99} })
	add(e, "a", t0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	got := emitAll(e, t0.Add(10*time.Second))
	require.Len(t, got, 1)
	r := got[0]
	assert.True(t, r.Exact)
	assert.Equal(t, []float64{1, 5.5, 9.5, 10}, r.Quantiles)
	assert.Equal(t, 10.0, r.Count)
	assert.Equal(t, 55.0, r.Sum)
	assert.Equal(t, 1.0, r.Min)
	assert.Equal(t, 10.0, r.Max)
	assert.Equal(t, t0.Add(-50*time.Second), r.WindowStart)
	assert.Equal(t, t0.Add(10*time.Second), r.WindowEnd)
}

// While every slide of the window holds at most ExactLimit values the
// quantiles are exact, whatever the distribution and however the values are
// spread over the slides.
func TestExactBelowThreshold(t *testing.T) {
	qs := []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999}
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		e := newEngine(t, func(s *Settings) { s.Quantiles = qs })
		var all []float64
		for slide := range 6 {
			n := r.IntN(e.set.ExactLimit + 1)
			if trial%10 == 0 {
				n = e.set.ExactLimit // full slides
			}
			at := t0.Add(time.Duration(slide) * 10 * time.Second)
			for range n {
				v := math.Round(r.NormFloat64()*1000) / 10 // ties happen
				all = append(all, v)
				add(e, "k", at, v)
			}
		}
		if len(all) == 0 {
			continue
		}
		got := emitAll(e, t0.Add(time.Minute))
		require.Len(t, got, 1)
		require.True(t, got[0].Exact)
		for i, q := range qs {
			require.InDelta(t, hazen(all, q), got[0].Quantiles[i], 1e-9, "trial %d q %v n %d", trial, q, len(all))
		}
	}
}

func TestDigestPastThreshold(t *testing.T) {
	e := newEngine(t, nil)
	var all []float64
	for i := range e.set.ExactLimit + 1 {
		all = append(all, float64(i))
	}
	add(e, "k", t0, all...)
	got := emitAll(e, t0.Add(10*time.Second))
	require.Len(t, got, 1)
	assert.False(t, got[0].Exact)
	assert.Equal(t, float64(len(all)), got[0].Count)
	// still close: a 129-value digest at compression 100 is nearly exact
	for i, q := range e.set.Quantiles {
		assert.InDelta(t, hazen(all, q), got[0].Quantiles[i], 1, "q %v", q)
	}
	// and a window mixing a digested and an exact slide
	add(e, "k", t0.Add(10*time.Second), 1000, 1001, 1002)
	got = emitAll(e, t0.Add(20*time.Second))
	require.Len(t, got, 1)
	assert.False(t, got[0].Exact)
	assert.Equal(t, float64(len(all)+3), got[0].Count)
	assert.Equal(t, 1002.0, got[0].Max)
	assert.Equal(t, 1002.0, got[0].Quantiles[3], "P99.9 of 132 values is the maximum")
	assert.InDelta(t, 65.5, got[0].Quantiles[0], 1)
}

// Values enter the window when their slide has closed and leave it when the
// slide is older than the window.
func TestWindowSlides(t *testing.T) {
	e := newEngine(t, func(s *Settings) { s.Window = 30 * time.Second })
	add(e, "k", t0, 1)
	add(e, "k", t0.Add(10*time.Second), 2)
	add(e, "k", t0.Add(20*time.Second), 3)
	add(e, "k", t0.Add(35*time.Second), 4)

	// the open slide is not emitted: a value added at 5 s is not in the window ending at 0 s
	assert.Empty(t, emitAll(e, t0))
	type win struct{ count, min, max float64 }
	check := func(at time.Duration, want win) {
		t.Helper()
		got := emitAll(e, t0.Add(at))
		require.Len(t, got, 1, "emit at %v", at)
		assert.Equal(t, want, win{got[0].Count, got[0].Min, got[0].Max}, "emit at %v", at)
		assert.Equal(t, t0.Add(at.Truncate(10*time.Second)-30*time.Second), got[0].WindowStart)
	}
	check(10*time.Second, win{1, 1, 1})
	check(30*time.Second, win{3, 1, 3})
	check(39*time.Second, win{3, 1, 3}) // late emitter: same window
	check(40*time.Second, win{3, 2, 4})
	check(50*time.Second, win{2, 3, 4})
	check(60*time.Second, win{1, 4, 4})
	assert.Equal(t, 1, e.Len())
	// idle for a whole window: dropped without an emission
	assert.Empty(t, emitAll(e, t0.Add(70*time.Second)))
	assert.Equal(t, 0, e.Len())
	// a new series starts with fresh totals
	add(e, "k", t0.Add(70*time.Second), 10)
	got := emitAll(e, t0.Add(80*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, 1.0, got[0].TotalCount)
	assert.Equal(t, 10.0, got[0].TotalSum)
}

// The ring is reused across long gaps without leaking old values.
func TestRingReuseAfterGap(t *testing.T) {
	e := newEngine(t, nil)
	for i := range 7 {
		add(e, "k", t0.Add(time.Duration(i)*10*time.Second), float64(100+i))
	}
	// jump ahead 1000 slides minus a bit; the old slots map onto the same ring positions
	later := t0.Add(10000 * time.Second)
	add(e, "k", later, 1)
	got := emitAll(e, later.Add(10*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, 1.0, got[0].Count)
	assert.Equal(t, []float64{1, 1, 1, 1}, got[0].Quantiles)
	assert.Equal(t, 8.0, got[0].TotalCount)

	// a clock step back lands in the newest slide
	add(e, "k", later.Add(-time.Hour), 2)
	got = emitAll(e, later.Add(10*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, 2.0, got[0].Count)
}

func TestMaxSeries(t *testing.T) {
	e := newEngine(t, func(s *Settings) { s.MaxSeries = 2 })
	require.NotNil(t, e.Get([]byte("a"), t0, nil))
	require.NotNil(t, e.Get([]byte("b"), t0, nil))
	assert.Nil(t, e.Get([]byte("c"), t0, nil), "third series refused")
	assert.NotNil(t, e.Get([]byte("a"), t0, nil), "existing series still served")
	add(e, "b", t0.Add(time.Minute), 1)
	// "a" never received a value and is dropped at the next emit; "b" stays
	e.Emit(t0.Add(time.Minute), nil)
	assert.Equal(t, 1, e.Len())
	assert.NotNil(t, e.Get([]byte("c"), t0, nil), "room again")
	assert.Equal(t, 2, e.Len())
}

func TestOnDrop(t *testing.T) {
	e := newEngine(t, nil)
	var dropped []string
	e.OnDrop(func(s *Series[string]) {
		dropped = append(dropped, s.Meta)
		assert.Nil(t, e.series[s.Meta], "gone from the engine first")
	})
	add(e, "old", t0, 1)
	add(e, "new", t0.Add(50*time.Second), 1)
	e.Emit(t0.Add(60*time.Second), nil) // window [0s, 60s): both kept
	assert.Empty(t, dropped)
	e.Emit(t0.Add(70*time.Second), nil) // [10s, 70s): "old" idle for a window
	assert.Equal(t, []string{"old"}, dropped)
	assert.Equal(t, 1, e.Len())
}

func TestEmitOrderAndSkips(t *testing.T) {
	e := newEngine(t, nil)
	for _, k := range []string{"z", "a", "m"} {
		add(e, k, t0, 1)
	}
	add(e, "late", t0.Add(10*time.Second), 1) // only in the open slide
	got := emitAll(e, t0.Add(10*time.Second))
	var keys []string
	for _, g := range got {
		keys = append(keys, g.key)
	}
	assert.Equal(t, "z,a,m", strings.Join(keys, ","), "creation order, series without a closed value skipped")
	assert.Equal(t, 4, e.Len())
}

func TestNonFiniteIgnored(t *testing.T) {
	e := newEngine(t, nil)
	add(e, "k", t0, math.NaN(), math.Inf(1), math.Inf(-1), 3)
	s := e.Get([]byte("k"), t0, nil)
	e.AddWeighted(s, e.SlideIndex(t0), math.NaN(), 2)
	e.AddWeighted(s, e.SlideIndex(t0), 5, 0)
	e.AddWeighted(s, e.SlideIndex(t0), 5, -1)
	e.AddWeighted(s, e.SlideIndex(t0), 5, math.Inf(1))
	got := emitAll(e, t0.Add(10*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, 1.0, got[0].Count)
	assert.True(t, got[0].Exact)
}

func TestWeighted(t *testing.T) {
	e := newEngine(t, func(s *Settings) { s.Quantiles = []float64{0.25, 0.5, 0.75} })
	s := e.Get([]byte("k"), t0, nil)
	idx := e.SlideIndex(t0)
	// 100 at 1, 100 at 3: weight is honoured
	e.AddWeighted(s, idx, 1, 100)
	e.AddWeighted(s, idx, 3, 100)
	e.AddWeighted(s, idx, 2, 1) // weight 1 is a plain value
	got := emitAll(e, t0.Add(10*time.Second))
	require.Len(t, got, 1)
	r := got[0]
	assert.False(t, r.Exact)
	assert.Equal(t, 201.0, r.Count)
	assert.Equal(t, 402.0, r.Sum)
	assert.InDelta(t, 1, r.Quantiles[0], 0.05)
	assert.InDelta(t, 2, r.Quantiles[1], 0.05)
	assert.InDelta(t, 3, r.Quantiles[2], 0.05)
}

// Many values in one slide over several batches stay accurate and the slot
// keeps no more than a digest plus one batch.
func TestHeavySlideMemoryBounded(t *testing.T) {
	e := newEngine(t, nil)
	s := e.Get([]byte("k"), t0, nil)
	idx := e.SlideIndex(t0)
	r := rand.New(rand.NewPCG(1, 1))
	var all []float64
	for range 100_000 {
		v := r.ExpFloat64()
		all = append(all, v)
		e.Add(s, idx, v)
	}
	sl := e.slotFor(s, idx)
	assert.LessOrEqual(t, len(sl.vals), e.batch)
	assert.LessOrEqual(t, len(sl.cents), 4*int(e.set.Compression))
	got := emitAll(e, t0.Add(10*time.Second))
	require.Len(t, got, 1)
	assert.Nil(t, sl.vals, "closed digested slide released its batch buffer")
	slices.Sort(all)
	for i, q := range e.set.Quantiles {
		want := hazen(all, q)
		assert.InDelta(t, want, got[0].Quantiles[i], want*0.02, "q %v", q)
	}
}
