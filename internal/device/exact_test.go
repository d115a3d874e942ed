package device

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Integer readings stay integers: 2^53+1 (which float64 rounds to 2^53) and the int64 limits come
// out exact; a uint64 above int64 becomes the nearest double.
func TestIntegerReadingsAreExact(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("energy", "Wh", "", KindSum, nil)
	p := r.Begin(t0)
	p.RecordInt(s, t0, 1<<53+1)
	p.RecordInt(s, t0.Add(1), math.MaxInt64)
	p.RecordInt(s, t0.Add(2), math.MinInt64)
	p.RecordUint(s, t0.Add(3), math.MaxInt64)
	p.RecordUint(s, t0.Add(4), math.MaxUint64)
	p.Record(s, t0.Add(5), 1.5)
	md, _ := p.End(t0, poll.BreakerClosed)
	_, _, ms, _ := metricsByName(t, md)
	dps := ms["energy"].Sum().DataPoints()
	require.Equal(t, 6, dps.Len())
	for i, want := range []int64{1<<53 + 1, math.MaxInt64, math.MinInt64, math.MaxInt64} {
		assert.Equal(t, pmetric.NumberDataPointValueTypeInt, dps.At(i).ValueType(), i)
		assert.Equal(t, want, dps.At(i).IntValue(), i)
	}
	assert.Equal(t, pmetric.NumberDataPointValueTypeDouble, dps.At(4).ValueType(), "above int64")
	assert.Equal(t, float64(math.MaxUint64), dps.At(4).DoubleValue())
	assert.Equal(t, 1.5, dps.At(5).DoubleValue())
	assert.NotEqual(t, int64(float64(1<<53+1)), int64(1<<53+1), "float64 would lose the last digit")
}
