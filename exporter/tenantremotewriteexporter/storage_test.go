package tenantremotewriteexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/encoding/protowire"
)

// encodeMeta writes queue metadata the way the collector's queue does (proto3: zero fields omitted).
func encodeMeta(items, bytes int64, read, write uint64, dispatched ...uint64) []byte {
	var b []byte
	fixed := func(num protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, v)
		}
	}
	fixed(1, uint64(items))
	fixed(2, uint64(bytes))
	fixed(fieldReadIndex, read)
	fixed(fieldWriteIndex, write)
	if len(dispatched) > 0 {
		var packed []byte
		for _, d := range dispatched {
			packed = protowire.AppendFixed64(packed, d)
		}
		b = protowire.AppendTag(b, fieldDispatchedIndexes, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	return b
}

func TestRewindDispatched(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"nothing dispatched", encodeMeta(3, 300, 4, 7), encodeMeta(3, 300, 4, 7)},
		{"one dispatched", encodeMeta(3, 300, 5, 7, 4), encodeMeta(3, 300, 4, 7)},
		{"two contiguous", encodeMeta(4, 400, 6, 8, 5, 4), encodeMeta(4, 400, 4, 8)},
		{"first item", encodeMeta(1, 100, 1, 1, 0), encodeMeta(1, 100, 0, 1)},
		{"gap: left to the queue", encodeMeta(2, 200, 6, 8, 3), encodeMeta(2, 200, 6, 8, 3)},
		{"not just before read index", encodeMeta(2, 200, 6, 8, 4), encodeMeta(2, 200, 6, 8, 4)},
		{"garbage", []byte{0xff, 0xff}, []byte{0xff, 0xff}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rewindDispatched(tt.in)
			wantMeta, ok1 := parseQueueMeta(tt.want)
			gotMeta, ok2 := parseQueueMeta(got)
			assert.Equal(t, ok1, ok2)
			assert.Equal(t, wantMeta, gotMeta)
			if ok1 {
				assert.Equal(t, wantMeta.pending(), gotMeta.pending())
			}
		})
	}
	m, ok := parseQueueMeta(encodeMeta(3, 300, 5, 7, 4))
	assert.True(t, ok)
	assert.Equal(t, uint64(3), m.pending())
}
