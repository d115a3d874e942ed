package tdigestprocessor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

// checkIndex asserts that allIndex holds exactly wantIndexed of the engine's
// series, each under its own key.
func checkIndex(t *testing.T, p *tdigestProcessor, wantIndexed int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[*quantile.Series[seriesMeta]]bool{}
	for k, s := range p.allIndex {
		require.Equal(t, k, s.Meta.allKey)
		require.False(t, seen[s], "a series under two keys")
		seen[s] = true
	}
	assert.Len(t, p.allIndex, wantIndexed, "indexed series")
}

// randomValue is one of a few values of several types, some of which encode
// alike as strings ("1", 1, 1.0, true …) but are different attribute values.
func randomValue(r *rand.Rand, v pcommon.Value) {
	switch r.IntN(6) {
	case 0:
		v.SetStr(fmt.Sprint(r.IntN(3)))
	case 1:
		v.SetInt(int64(r.IntN(3)))
	case 2:
		v.SetDouble(float64(r.IntN(3)))
	case 3:
		v.SetBool(r.IntN(2) == 0)
	case 4:
		v.SetEmptyBytes().FromRaw([]byte{byte(r.IntN(2))})
	default:
		v.SetEmptySlice().AppendEmpty().SetInt(int64(r.IntN(2)))
	}
}

// randomAttrs fills m with up to three of the keys a, b, c in random order.
func randomAttrs(r *rand.Rand, m pcommon.Map) {
	for _, i := range r.Perm(3)[:r.IntN(4)] {
		randomValue(r, m.PutEmpty(string(rune('a'+i))))
	}
}

// The index is a cache in front of the sorted encoding of all attributes: on
// random input (attributes in random order, of several types, on the resource
// or the point, two metric names under a regex selector, series that go idle
// and come back) a processor with it emits exactly what one without it does.
func TestAllIndexEmitsAsSortedKeys(t *testing.T) {
	cfg := func() *Config {
		return testConfig(func(c *Config) { c.Window = 20 * sec },
			sel("", func(m *MetricConfig) { m.Regex = `^m[12]$`; m.Attributes = map[string]string{"a": "0"} }),
			sel("m1", nil),
			sel("", func(m *MetricConfig) { m.Regex = `^m[12]$`; m.Outputs.Gauges = true }))
	}
	with, without := newHarness(t, cfg()), newHarness(t, cfg())
	without.p.noAllIndex = true
	r := rand.New(rand.NewPCG(7, 11))
	emitted := 0
	for step := 1; step <= 12; step++ {
		at := time.Duration(step) * 10 * sec
		with.at(at - 9*sec)
		without.at(at - 9*sec)
		devices := 40
		if step%5 == 0 {
			devices = 3 // most series go idle for a window and are dropped
		}
		for range 4 {
			md := pmetric.NewMetrics()
			for range r.IntN(devices) {
				rm := md.ResourceMetrics().AppendEmpty()
				randomAttrs(r, rm.Resource().Attributes())
				ms := rm.ScopeMetrics().AppendEmpty().Metrics()
				for range 1 + r.IntN(3) {
					m := ms.AppendEmpty()
					m.SetName(fmt.Sprintf("m%d", 1+r.IntN(2)))
					dps := m.SetEmptyGauge().DataPoints()
					for range 1 + r.IntN(3) {
						dp := dps.AppendEmpty()
						randomAttrs(r, dp.Attributes())
						dp.SetDoubleValue(float64(r.IntN(1000)))
					}
				}
			}
			cp := pmetric.NewMetrics()
			md.CopyTo(cp)
			with.consume(md)
			without.consume(cp)
		}
		got, want := flatten(with.emitAt(at)), flatten(without.emitAt(at))
		require.Equal(t, want, got, "step %d", step)
		emitted += len(got)
		require.Equal(t, without.p.eng.Len(), with.p.eng.Len())
		checkIndex(t, with.p, with.p.eng.Len())
		checkIndex(t, without.p, 0)
	}
	require.Greater(t, emitted, 1000, "the input makes many series")
}

// Attributes that make different series although they look alike: an
// attribute on the resource or on the point, the same value under another key,
// "1" and 1; a series that goes idle is forgotten, the others stay found.
func TestAllIndexTellsSeriesApart(t *testing.T) {
	h := newHarness(t, testConfig(func(c *Config) { c.Window = 20 * sec }, sel("v", nil)))
	h.at(1 * sec)
	inputs := []struct{ res, attrs kv }{
		{kv{"k": "x"}, nil},
		{nil, kv{"k": "x"}},
		{nil, kv{"j": "x"}},
		{nil, kv{"i": "x"}},
		{nil, kv{"k": "1"}},
		{nil, kv{"k": 1}},
		{nil, kv{"k": "x", "j": "y"}},
	}
	for round := range 2 {
		for i, in := range inputs {
			h.consume(gaugeMD("v", "", in.res, in.attrs, float64(10*i+round)))
		}
	}
	got := flatten(h.emitAt(10 * sec))
	require.Len(t, got, len(inputs))
	for _, o := range got {
		assert.Equal(t, uint64(2), o.Count, "%s %s", o.Res, o.Attrs)
	}
	checkIndex(t, h.p, len(inputs))

	// one goes idle and is dropped; the others stay found
	h.at(11 * sec)
	for i, in := range inputs {
		if i != 3-1 {
			h.consume(gaugeMD("v", "", in.res, in.attrs, float64(10*i+2)))
		}
	}
	h.at(21 * sec)
	for i, in := range inputs {
		if i != 3-1 {
			h.consume(gaugeMD("v", "", in.res, in.attrs, float64(10*i+3)))
		}
	}
	got = flatten(h.emitAt(30 * sec))
	require.Len(t, got, len(inputs)-1)
	for _, o := range got {
		assert.Equal(t, uint64(4), o.Count, "%s %s", o.Res, o.Attrs)
		assert.True(t, o.Start.Equal(t0.Add(1*sec)), "the series kept their start: %v", o.Start)
	}
	checkIndex(t, h.p, len(inputs)-1)

	// it comes back as a new series, and everything idles out
	h.at(31 * sec)
	h.consume(gaugeMD("v", "", inputs[2].res, inputs[2].attrs, 5))
	got = flatten(h.emitAt(40 * sec))
	require.Len(t, got, len(inputs))
	checkIndex(t, h.p, len(inputs))
	assert.Empty(t, h.emitAt(60*sec))
	checkIndex(t, h.p, 0)
	assert.Equal(t, 0, h.p.eng.Len())
}
