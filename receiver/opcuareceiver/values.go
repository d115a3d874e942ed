package opcuareceiver

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
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

// valueShape tells how a decoded Variant value is turned into points.
type valueShape int

const (
	shapeScalar      valueShape = iota // one number
	shapeArray                         // one number per index
	shapeUnsupported                   // a type we do not turn into numbers
)

// visitValue calls emit for every number in v: once for a scalar (flat -1), once per element of an
// array (flat index; label "" for a one-dimensional array, "1,2" for an element of a matrix). It
// returns the shape; for shapeUnsupported emit is never called.
func visitValue(v any, emit func(flat int, label string, f float64)) valueShape {
	if f, ok := scalarValue(v); ok {
		emit(-1, "", f)
		return shapeScalar
	}
	switch a := v.(type) {
	case []float64:
		for i, x := range a {
			emit(i, "", x)
		}
		return shapeArray
	case []float32:
		for i, x := range a {
			emit(i, "", float64(x))
		}
		return shapeArray
	case []int32:
		for i, x := range a {
			emit(i, "", float64(x))
		}
		return shapeArray
	case []bool:
		for i, x := range a {
			f := 0.0
			if x {
				f = 1
			}
			emit(i, "", f)
		}
		return shapeArray
	case ua.ByteArray:
		for i, x := range a {
			emit(i, "", float64(x))
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
	walkSlice(rv, nil, nested, &flat, emit)
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

func walkSlice(rv reflect.Value, idx []int, nested bool, flat *int, emit func(int, string, float64)) {
	for i := 0; i < rv.Len(); i++ {
		e := rv.Index(i)
		path := append(idx, i)
		if e.Kind() == reflect.Slice {
			walkSlice(e, path, nested, flat, emit)
			continue
		}
		f, _ := scalarValue(e.Interface())
		label := ""
		if nested {
			parts := make([]string, len(path))
			for j, p := range path {
				parts[j] = strconv.Itoa(p)
			}
			label = strings.Join(parts, ",")
		}
		emit(*flat, label, f)
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
