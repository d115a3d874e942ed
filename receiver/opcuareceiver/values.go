package opcuareceiver

import (
	"fmt"
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

// conversion turns a raw value of a node into the reading: raw × scale + offset, by the rule every
// receiver shares (device.Scale): an integer value (SByte … UInt64, and arrays of them) stays an exact
// integer data point when scale and offset are whole numbers and the result fits an int64; else, and
// for Float, Double and Boolean values, a double.
type conversion struct{ device.Scale }

func newConversion(scale, offset float64) conversion {
	return conversion{device.NewScale(scale, offset)}
}

// identityConversion leaves values as the server sends them.
var identityConversion = conversion{device.IdentityScale}

// number is one converted value: an integer data point when IsInt, else a double.
type number = device.Number

// convert converts a scalar of a numeric or Boolean type (a Boolean is 1 or 0, a double); ok is false
// for any other type.
func (c conversion) convert(v any) (number, bool) {
	switch x := v.(type) {
	case float64:
		return c.Float(x), true
	case float32:
		return c.Float(float64(x)), true
	case int32:
		return c.Int(int64(x)), true
	case uint32:
		return c.Int(int64(x)), true
	case int16:
		return c.Int(int64(x)), true
	case uint16:
		return c.Int(int64(x)), true
	case int64:
		return c.Int(x), true
	case uint64:
		return c.Uint(x), true
	case int8:
		return c.Int(int64(x)), true
	case uint8:
		return c.Int(int64(x)), true
	case bool:
		if x {
			return c.Float(1), true
		}
		return c.Float(0), true
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
			emit(i, "", c.Float(x))
		}
		return shapeArray
	case []float32:
		for i, x := range a {
			emit(i, "", c.Float(float64(x)))
		}
		return shapeArray
	case []int32:
		for i, x := range a {
			emit(i, "", c.Int(int64(x)))
		}
		return shapeArray
	case ua.ByteArray:
		for i, x := range a {
			emit(i, "", c.Int(int64(x)))
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
