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
