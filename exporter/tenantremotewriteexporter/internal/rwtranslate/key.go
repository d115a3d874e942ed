package rwtranslate // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/rwtranslate"

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// A cache key is the inputs of a series' labels written out without loss: strings length-prefixed,
// values tagged with their type, so that two different inputs never write the same key and the map
// lookup itself is the equality check. Values of the same text but another type (the string "1"
// and the integer 1) get keys of their own, with the same labels.

func appendUvarint(b []byte, v uint64) []byte {
	return binary.AppendUvarint(b, v)
}

func appendUint64(b []byte, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(b, v)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v pcommon.Value) []byte {
	b = append(b, byte(v.Type()))
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return appendUint64(b, uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		return appendUint64(b, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	default:
		// Bytes, maps, slices and empty values, rare in attributes: by their text, which is all the
		// label takes of them.
		return appendString(b, v.AsString())
	}
}

func appendMap(b []byte, m pcommon.Map) []byte {
	b = binary.AppendUvarint(b, uint64(m.Len()))
	for k, v := range m.All() {
		b = appendString(b, k)
		b = appendValue(b, v)
	}
	return b
}

// appendKeys writes the values of the keys in m, each as absent or present and its value.
func appendKeys(b []byte, m pcommon.Map, keys []string) []byte {
	for _, k := range keys {
		v, ok := m.Get(k)
		if !ok {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = appendValue(b, v)
	}
	return b
}
