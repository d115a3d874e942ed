package opcuareceiver

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Status code severity (Part 4, 7.39): the two top bits.
func isBad(s ua.StatusCode) bool       { return uint32(s)&0x80000000 != 0 }
func isUncertain(s ua.StatusCode) bool { return uint32(s)&0xC0000000 == 0x40000000 }

// statusName is the symbolic name of a status code (info bits ignored), e.g. BadNodeIdUnknown.
func statusName(s ua.StatusCode) string {
	code := ua.StatusCode(uint32(s) & 0xFFFF0000)
	if d, ok := ua.StatusCodes[code]; ok {
		return strings.TrimPrefix(d.Name, "Status")
	}
	return fmt.Sprintf("0x%08X", uint32(s))
}

// scalarValue converts a scalar of a numeric or Boolean type; ok is false for any other type.
func scalarValue(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int16:
		return float64(x), true
	case uint16:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint8:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// conversion turns a raw value of a node into the reading: raw × scale + offset.
//
// An integer value (SByte … UInt64, and arrays of them) stays an integer data point, never passing
// through float64, when scale and offset are integers — the identity, and also an exact multiplier such
// as 1000 for kWh → Wh: a 64-bit counter above 2^53 keeps its last digit. The result must fit an int64
// (data points hold signed 64-bit integers); one that does not (a UInt64 above 2^63−1, or a product
// that overflows) becomes the nearest double. Any other scale or offset (0.1, 0.5 …), and any Float,
// Double or Boolean value, gives a double computed in float64.
type conversion struct {
	scale, offset float64
	// iscale, ioffset are scale and offset as integers when exact is set: both are whole numbers within
	// ±2^53 (so the float64 is exactly that integer).
	iscale, ioffset int64
	exact           bool
	identity        bool
}

// maxExactFloatInt is 2^53: every integer up to it in magnitude is exactly a float64.
const maxExactFloatInt = 1 << 53

func newConversion(scale, offset float64) conversion {
	c := conversion{scale: scale, offset: offset, identity: scale == 1 && offset == 0}
	if scale == math.Trunc(scale) && math.Abs(scale) <= maxExactFloatInt &&
		offset == math.Trunc(offset) && math.Abs(offset) <= maxExactFloatInt {
		c.exact, c.iscale, c.ioffset = true, int64(scale), int64(offset)
	}
	return c
}

// identityConversion leaves values as the server sends them.
var identityConversion = newConversion(1, 0)

// number is one converted value: an integer data point when isInt, else a double.
type number struct {
	f     float64
	i     int64
	isInt bool
}

// record adds the number to the poll as an integer or a double data point.
func (n number) record(p *device.Poll, s *device.Series, ts time.Time) {
	if n.isInt {
		p.RecordInt(s, ts, n.i)
		return
	}
	p.Record(s, ts, n.f)
}

// float is the number as a float64 (the nearest one for a large integer).
func (n number) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

func (c conversion) ofInt(x int64) number {
	if c.exact {
		if r, ok := mulAddInt64(x, c.iscale, c.ioffset); ok {
			return number{i: r, isInt: true}
		}
	}
	return number{f: float64(x)*c.scale + c.offset}
}

func (c conversion) ofUint(x uint64) number {
	if x <= math.MaxInt64 {
		return c.ofInt(int64(x))
	}
	return number{f: float64(x)*c.scale + c.offset}
}

func (c conversion) ofFloat(f float64) number {
	if c.identity {
		return number{f: f}
	}
	return number{f: f*c.scale + c.offset}
}

// mulAddInt64 is x × m + a, ok false when it overflows an int64.
func mulAddInt64(x, m, a int64) (int64, bool) {
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

// convert converts a scalar of a numeric or Boolean type (a Boolean is 1 or 0, a double); ok is false
// for any other type.
func (c conversion) convert(v any) (number, bool) {
	switch x := v.(type) {
	case float64:
		return c.ofFloat(x), true
	case float32:
		return c.ofFloat(float64(x)), true
	case int32:
		return c.ofInt(int64(x)), true
	case uint32:
		return c.ofInt(int64(x)), true
	case int16:
		return c.ofInt(int64(x)), true
	case uint16:
		return c.ofInt(int64(x)), true
	case int64:
		return c.ofInt(x), true
	case uint64:
		return c.ofUint(x), true
	case int8:
		return c.ofInt(int64(x)), true
	case uint8:
		return c.ofInt(int64(x)), true
	case bool:
		if x {
			return c.ofFloat(1), true
		}
		return c.ofFloat(0), true
	}
	return number{}, false
}

// valueShape tells how a decoded Variant value is turned into points.
type valueShape int

const (
	shapeScalar      valueShape = iota // one number
	shapeArray                         // one number per index
	shapeUnsupported                   // a type we do not turn into numbers
)

// visitValue calls emit for every number in v, converted by c: once for a scalar (flat -1), once per
// element of an array (flat index; label "" for a one-dimensional array, "1,2" for an element of a
// matrix). It returns the shape; for shapeUnsupported emit is never called.
func visitValue(v any, c conversion, emit func(flat int, label string, n number)) valueShape {
	if n, ok := c.convert(v); ok {
		emit(-1, "", n)
		return shapeScalar
	}
	switch a := v.(type) {
	case []float64:
		for i, x := range a {
			emit(i, "", c.ofFloat(x))
		}
		return shapeArray
	case []float32:
		for i, x := range a {
			emit(i, "", c.ofFloat(float64(x)))
		}
		return shapeArray
	case []int32:
		for i, x := range a {
			emit(i, "", c.ofInt(int64(x)))
		}
		return shapeArray
	case ua.ByteArray:
		for i, x := range a {
			emit(i, "", c.ofInt(int64(x)))
		}
		return shapeArray
	case []byte:
		return shapeUnsupported // a ByteString is an opaque blob, not an array of Byte
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || !numericSlice(rv.Type()) {
		return shapeUnsupported
	}
	nested := rv.Type().Elem().Kind() == reflect.Slice
	flat := 0
	walkSlice(rv, nil, nested, &flat, c, emit)
	return shapeArray
}

// numericSlice tells whether t is a (possibly nested) slice of numbers or Booleans.
func numericSlice(t reflect.Type) bool {
	for t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func walkSlice(rv reflect.Value, idx []int, nested bool, flat *int, c conversion, emit func(int, string, number)) {
	for i := 0; i < rv.Len(); i++ {
		e := rv.Index(i)
		path := append(idx, i)
		if e.Kind() == reflect.Slice {
			walkSlice(e, path, nested, flat, c, emit)
			continue
		}
		n, _ := c.convert(e.Interface())
		label := ""
		if nested {
			parts := make([]string, len(path))
			for j, p := range path {
				parts[j] = strconv.Itoa(p)
			}
			label = strings.Join(parts, ",")
		}
		emit(*flat, label, n)
		*flat++
	}
}

// pointTime picks the data point's timestamp; zero means the poll's time.
func pointTime(mode TimestampSource, dv *ua.DataValue, collector time.Time) time.Time {
	switch mode {
	case TimestampSourceSource:
		if dv.EncodingMask&ua.DataValueSourceTimestamp != 0 && !dv.SourceTimestamp.IsZero() {
			return dv.SourceTimestamp
		}
		fallthrough
	case TimestampServer:
		if dv.EncodingMask&ua.DataValueServerTimestamp != 0 && !dv.ServerTimestamp.IsZero() {
			return dv.ServerTimestamp
		}
	}
	return collector
}

// timestampsToReturn is what to ask of the server for a timestamp mode.
func timestampsToReturn(mode TimestampSource) ua.TimestampsToReturn {
	switch mode {
	case TimestampSourceSource:
		return ua.TimestampsToReturnBoth
	case TimestampServer:
		return ua.TimestampsToReturnServer
	}
	return ua.TimestampsToReturnNeither
}
