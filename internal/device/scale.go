package device

import (
	"math"
	"time"
)

// Scale turns a raw reading into the value recorded: raw × Factor + Offset. It is the one rule every
// receiver follows for integers (see README, "Exact integers"):
//
//   - an integer raw value (a Modbus int/uint register, an OPC UA SByte … UInt64) stays an integer data
//     point, never passing through float64, when Factor and Offset are whole numbers and the result fits
//     an int64 — the identity, and also an exact multiplier such as 1000 for kWh → Wh, so a 64-bit
//     counter above 2^53 keeps its last digit;
//   - a result that does not fit an int64 (a product or sum that overflows, a uint64 above 2^63−1) is
//     the nearest double;
//   - a fractional Factor or Offset (0.1, 273.15 …), and any floating-point raw value, gives a double
//     computed in float64.
//
// The zero Scale multiplies by 0; use NewScale.
type Scale struct {
	Factor, Offset float64
	// ifactor, ioffset are Factor and Offset as integers when whole is set.
	ifactor, ioffset int64
	whole            bool
	identity         bool
}

// IdentityScale leaves values as the device sends them.
var IdentityScale = NewScale(1, 0)

// two63 is 2^63 as a float64: whole floats in [−2^63, 2^63) convert to int64 exactly.
const two63 = 1 << 63

// NewScale returns the scale value = raw × factor + offset.
func NewScale(factor, offset float64) Scale {
	s := Scale{Factor: factor, Offset: offset, identity: factor == 1 && offset == 0}
	if isWholeInt64(factor) && isWholeInt64(offset) {
		s.whole, s.ifactor, s.ioffset = true, int64(factor), int64(offset)
	}
	return s
}

func isWholeInt64(f float64) bool {
	return f == math.Trunc(f) && f >= -two63 && f < two63 // false for NaN and ±Inf
}

// Identity reports whether the scale leaves values unchanged (factor 1, offset 0).
func (s Scale) Identity() bool { return s.identity }

// KeepsIntegers reports whether integer values stay integers (factor and offset are whole numbers),
// unless a result overflows an int64.
func (s Scale) KeepsIntegers() bool { return s.whole }

// Int converts a signed integer reading.
func (s Scale) Int(x int64) Number {
	if s.whole {
		if r, ok := MulAddInt64(x, s.ifactor, s.ioffset); ok {
			return Number{Int: r, IsInt: true}
		}
	}
	return Number{Float: float64(x)*s.Factor + s.Offset}
}

// Uint converts an unsigned integer reading; one above the int64 limit is the nearest double
// (data points hold signed 64-bit integers).
func (s Scale) Uint(x uint64) Number {
	if x <= math.MaxInt64 {
		return s.Int(int64(x))
	}
	return Number{Float: float64(x)*s.Factor + s.Offset}
}

// Float converts a floating-point reading (NaN and ±Inf pass through the arithmetic unchanged).
func (s Scale) Float(f float64) Number {
	if s.identity {
		return Number{Float: f}
	}
	return Number{Float: f*s.Factor + s.Offset}
}

// MulAddInt64 is x × m + a; ok is false when the product or the sum overflows an int64.
func MulAddInt64(x, m, a int64) (int64, bool) {
	p := x
	if m != 1 {
		p = x * m
		if x != 0 && (p/x != m || (x == -1 && m == math.MinInt64) || (m == -1 && x == math.MinInt64)) {
			return 0, false
		}
	}
	r := p + a
	if (a > 0 && r < p) || (a < 0 && r > p) {
		return 0, false
	}
	return r, true
}

// Number is one converted reading: an integer data point when IsInt, else a double.
type Number struct {
	Float float64
	Int   int64
	IsInt bool
}

// IntNumber and FloatNumber make a Number.
func IntNumber(i int64) Number     { return Number{Int: i, IsInt: true} }
func FloatNumber(f float64) Number { return Number{Float: f} }

// Record adds the number to the poll as an integer or a double data point.
func (n Number) Record(p *Poll, s *Series, ts time.Time) {
	if n.IsInt {
		p.RecordInt(s, ts, n.Int)
		return
	}
	p.Record(s, ts, n.Float)
}

// Value is the number as a float64 (the nearest one for a large integer).
func (n Number) Value() float64 {
	if n.IsInt {
		return float64(n.Int)
	}
	return n.Float
}
