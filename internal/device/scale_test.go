package device

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The one rule for integers: whole scale and offset keep an integer reading an exact integer unless
// the result overflows an int64; everything else is a double.
func TestScale(t *testing.T) {
	const p53 = 1<<53 + 1 // float64 rounds it to 2^53
	tests := []struct {
		name        string
		factor, off float64
		in          any // int64, uint64 or float64
		want        Number
	}{
		{"identity 2^53+1", 1, 0, int64(p53), IntNumber(p53)},
		{"identity -(2^53+1)", 1, 0, int64(-p53), IntNumber(-p53)},
		{"identity int64 max", 1, 0, int64(math.MaxInt64), IntNumber(math.MaxInt64)},
		{"identity int64 min", 1, 0, int64(math.MinInt64), IntNumber(math.MinInt64)},
		{"identity uint64 at int64 max", 1, 0, uint64(math.MaxInt64), IntNumber(math.MaxInt64)},
		{"uint64 above int64: nearest double", 1, 0, uint64(math.MaxInt64) + 1, FloatNumber(1 << 63)},
		{"uint64 max: nearest double", 1, 0, uint64(math.MaxUint64), FloatNumber(math.MaxUint64)},
		{"uint64 above int64 scaled: double", 1000, 0, uint64(math.MaxUint64), FloatNumber(float64(math.MaxUint64) * 1000)},
		{"kWh to Wh, 2^53+1 kept", 1000, 0, int64(p53), IntNumber(p53 * 1000)},
		{"kWh to Wh, uint64", 1000, 0, uint64(p53), IntNumber(p53 * 1000)},
		{"whole offset", 1, -40, int64(p53), IntNumber(p53 - 40)},
		{"negative scale", -1, 0, int64(5), IntNumber(-5)},
		{"negative scale at int64 max", -1, 0, int64(math.MaxInt64), IntNumber(-math.MaxInt64)},
		{"negative scale at int64 min overflows", -1, 0, int64(math.MinInt64), FloatNumber(-float64(math.MinInt64))},
		{"product overflows: double", 1000, 0, int64(math.MaxInt64), FloatNumber(float64(math.MaxInt64) * 1000)},
		{"product overflows below: double", 2, 0, int64(math.MinInt64), FloatNumber(float64(math.MinInt64) * 2)},
		{"offset overflows: double", 1, 1, int64(math.MaxInt64), FloatNumber(float64(math.MaxInt64) + 1)},
		{"offset overflows below: double", 1, -1, int64(math.MinInt64), FloatNumber(float64(math.MinInt64) - 1)},
		{"offset brings it back", -1, -1, int64(math.MaxInt64), IntNumber(math.MinInt64)},
		{"fractional scale", 0.1, 0, int64(2215), FloatNumber(float64(2215) * 0.1)},
		{"fractional offset", 1, 273.15, int64(21), FloatNumber(21 + 273.15)},
		{"whole scale, fractional offset", 1000, 0.5, int64(3), FloatNumber(3000.5)},
		{"float stays double under whole scale", 1000, 0, 1.5, FloatNumber(1500)},
		{"float identity as sent", 1, 0, 0.1, FloatNumber(0.1)},
		{"NaN passes", 1000, 0, math.Inf(1), FloatNumber(math.Inf(1))},
		{"scale ≥ 2^63 is not whole int64", 1 << 63, 0, int64(0), FloatNumber(0)},
		{"large whole scale within int64", 1 << 62, 0, int64(1), IntNumber(1 << 62)},
		{"large whole scale overflows", 1 << 62, 0, int64(2), FloatNumber(1 << 63)},
	}
	for _, tt := range tests {
		s := NewScale(tt.factor, tt.off)
		var got Number
		switch x := tt.in.(type) {
		case int64:
			got = s.Int(x)
		case uint64:
			got = s.Uint(x)
		case float64:
			got = s.Float(x)
		}
		assert.Equal(t, tt.want, got, tt.name)
	}
	assert.True(t, math.IsNaN(NewScale(1000, 0).Float(math.NaN()).Float), "NaN stays NaN")
	assert.True(t, IdentityScale.Identity() && IdentityScale.KeepsIntegers())
	assert.True(t, NewScale(1000, -3).KeepsIntegers())
	assert.False(t, NewScale(0.001, 0).KeepsIntegers())
	assert.False(t, NewScale(1, 0.5).KeepsIntegers())
	assert.False(t, NewScale(math.NaN(), 0).KeepsIntegers())
	assert.False(t, NewScale(math.Inf(1), 0).KeepsIntegers())
	assert.Equal(t, float64(p53), IntNumber(p53).Value(), "Value is the nearest float64")
}

func TestMulAddInt64(t *testing.T) {
	tests := []struct {
		x, m, a int64
		want    int64
		ok      bool
	}{
		{3, 1000, 0, 3000, true},
		{-3, 1000, 7, -2993, true},
		{math.MaxInt64, 1, 0, math.MaxInt64, true},
		{math.MaxInt64, 1, 1, 0, false},
		{math.MinInt64, 1, -1, 0, false},
		{math.MinInt64, -1, 0, 0, false},
		{-1, -1, math.MaxInt64 - 1, math.MaxInt64, true},
		{math.MaxInt64/2 + 1, 2, 0, 0, false},
		{math.MinInt64 / 2, 2, 0, math.MinInt64, true},
		{0, 1 << 53, math.MinInt64, math.MinInt64, true},
		{1 << 11, 1 << 53, 0, 0, false}, // 2^64 overflows
	}
	for _, tt := range tests {
		got, ok := MulAddInt64(tt.x, tt.m, tt.a)
		assert.Equal(t, tt.ok, ok, "%d×%d+%d", tt.x, tt.m, tt.a)
		if tt.ok {
			assert.Equal(t, tt.want, got, "%d×%d+%d", tt.x, tt.m, tt.a)
		}
	}
}
