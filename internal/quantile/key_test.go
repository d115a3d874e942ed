package quantile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestAttrSorterOrderIndependent(t *testing.T) {
	var a AttrSorter
	for _, n := range []int{0, 1, 3, 20} {
		m1, m2 := pcommon.NewMap(), pcommon.NewMap()
		for i := range n {
			m1.PutStr(string(rune('a'+i)), "v")
		}
		for i := n - 1; i >= 0; i-- {
			m2.PutStr(string(rune('a'+i)), "v")
		}
		assert.Equal(t, a.Append(nil, m1), a.Append(nil, m2), "n=%d", n)
	}
	m := pcommon.NewMap()
	m.PutStr("k", "1")
	other := pcommon.NewMap()
	other.PutInt("k", 1)
	assert.NotEqual(t, a.Append(nil, m), a.Append(nil, other), "types are part of the key")
}

func TestAppendValueKinds(t *testing.T) {
	vals := []pcommon.Value{
		pcommon.NewValueStr("x"), pcommon.NewValueInt(1), pcommon.NewValueDouble(1),
		pcommon.NewValueBool(true), pcommon.NewValueBool(false), pcommon.NewValueEmpty(),
	}
	sl := pcommon.NewValueSlice()
	sl.Slice().AppendEmpty().SetStr("x")
	vals = append(vals, sl)
	seen := map[string]bool{}
	for _, v := range vals {
		k := string(AppendValue(nil, v))
		assert.False(t, seen[k], "distinct encodings: %v", v.AsString())
		seen[k] = true
	}
}

func TestAppendValueTypesOfStringForms(t *testing.T) {
	// maps, slices and bytes are keyed by their string form and their type
	b := pcommon.NewValueBytes()
	b.Bytes().FromRaw([]byte("x"))
	s := pcommon.NewValueSlice()
	s.Slice().AppendEmpty().SetStr("eA==")
	m := pcommon.NewValueMap()
	assert.NotEqual(t, AppendValue(nil, b), AppendValue(nil, s))
	assert.NotEqual(t, AppendValue(nil, m), AppendValue(nil, s))
	assert.NotEqual(t, AppendValue(nil, pcommon.NewValueStr(b.AsString())), AppendValue(nil, b))
}

func TestAppendInOrder(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("b", "2")
	m.PutInt("a", 1)
	want := AppendString([]byte{0xff, 2}, "b")
	want = AppendValue(want, pcommon.NewValueStr("2"))
	want = AppendValue(AppendString(want, "a"), pcommon.NewValueInt(1))
	assert.Equal(t, want, AppendInOrder([]byte{0xff}, m), "count, then keys and values in the map's order")

	// the same contents in another order: equal sorted, different in order
	var a AttrSorter
	other := pcommon.NewMap()
	other.PutInt("a", 1)
	other.PutStr("b", "2")
	assert.NotEqual(t, AppendInOrder(nil, m), AppendInOrder(nil, other))
	assert.Equal(t, a.Append(nil, m), a.Append(nil, other))
	// the count delimits maps appended one after the other
	empty := pcommon.NewMap()
	assert.NotEqual(t, AppendInOrder(AppendInOrder(nil, m), empty), AppendInOrder(AppendInOrder(nil, empty), m))
}
