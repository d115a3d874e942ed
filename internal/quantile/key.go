package quantile

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Series keys are built by appending length-prefixed, type-tagged pieces to a
// reused buffer; Engine.Get looks them up without allocating.

// AppendString appends a length-prefixed string.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendValue appends a type-tagged attribute value.
func AppendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return AppendString(append(b, 's'), v.Str())
	case pcommon.ValueTypeInt:
		return binary.LittleEndian.AppendUint64(append(b, 'i'), uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		return binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(b, 'b', 1)
		}
		return append(b, 'b', 0)
	case pcommon.ValueTypeEmpty:
		return append(b, 'e')
	default: // maps, slices, bytes: rare as identifying attributes
		return AppendString(append(b, 'x', byte(v.Type())), v.AsString())
	}
}

// AppendInOrder appends the number of attributes of m and each key and value
// in the map's order. Maps holding the same keys and values in the same order
// append equal bytes, as they do with AttrSorter, without the cost of sorting;
// maps whose order differs append different bytes.
func AppendInOrder(b []byte, m pcommon.Map) []byte {
	b = binary.AppendUvarint(b, uint64(m.Len()))
	for k, v := range m.All() {
		b = AppendString(b, k)
		b = AppendValue(b, v)
	}
	return b
}

// AttrSorter appends all attributes of a map in key order (maps with equal
// contents yield equal keys whatever their insertion order). It reuses its
// scratch space; not safe for concurrent use.
type AttrSorter struct {
	keys []string
	vals []pcommon.Value
	idx  []int
}

// Append appends the number of attributes and each key and value, sorted by key.
func (a *AttrSorter) Append(b []byte, m pcommon.Map) []byte {
	a.keys, a.vals, a.idx = a.keys[:0], a.vals[:0], a.idx[:0]
	for k, v := range m.All() {
		a.idx = append(a.idx, len(a.keys))
		a.keys = append(a.keys, k)
		a.vals = append(a.vals, v)
	}
	b = binary.AppendUvarint(b, uint64(len(a.keys)))
	switch n := len(a.idx); {
	case n > 16:
		slices.SortFunc(a.idx, func(x, y int) int { return strings.Compare(a.keys[x], a.keys[y]) })
	case n > 1: // insertion sort: attribute sets are small
		for i := 1; i < n; i++ {
			for j := i; j > 0 && a.keys[a.idx[j]] < a.keys[a.idx[j-1]]; j-- {
				a.idx[j], a.idx[j-1] = a.idx[j-1], a.idx[j]
			}
		}
	}
	for _, i := range a.idx {
		b = AppendString(b, a.keys[i])
		b = AppendValue(b, a.vals[i])
	}
	clear(a.keys)
	clear(a.vals)
	return b
}
