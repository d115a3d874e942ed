package dtu

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStripper(t *testing.T) {
	hb := []byte("HB01")
	frame := []byte{0x68, 1, 2, 3, 4, 5, 6, 0x68, 0x91, 0x02, 0x33, 0x34, 0xAB, 0x16}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name     string
		reads    [][]byte
		flush    bool
		want     []byte
		stripped uint64
	}{
		{name: "no heartbeat", reads: [][]byte{frame}, want: frame},
		{name: "heartbeat alone", reads: [][]byte{hb}, want: nil, stripped: 1},
		{name: "before and after", reads: [][]byte{cat(hb, frame, hb)}, want: frame, stripped: 2},
		{name: "mid reply, one read", reads: [][]byte{cat(frame[:5], hb, frame[5:])}, want: frame, stripped: 1},
		{name: "mid reply, three reads", reads: [][]byte{frame[:5], hb, frame[5:]}, want: frame, stripped: 1},
		{name: "heartbeat cut across reads", reads: [][]byte{cat(frame[:5], hb[:2]), cat(hb[2:], frame[5:])}, want: frame, stripped: 1},
		{name: "heartbeat byte by byte", reads: [][]byte{frame[:3], hb[:1], hb[1:2], hb[2:3], hb[3:], frame[3:]}, want: frame, stripped: 1},
		{name: "prefix that is data, then more data", reads: [][]byte{cat(frame, []byte("HB")), []byte("xy")}, want: cat(frame, []byte("HBxy"))},
		{name: "prefix at the end, released by flush", reads: [][]byte{cat(frame, []byte("HB0"))}, flush: true, want: cat(frame, []byte("HB0"))},
		{name: "overlapping start", reads: [][]byte{[]byte("HHB01")}, want: []byte("H"), stripped: 1},
		{name: "back to back", reads: [][]byte{cat(hb, hb, hb)}, stripped: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stripper{patterns: [][]byte{hb}}
			var got []byte
			for _, r := range tt.reads {
				got = append(got, s.feed(r)...)
			}
			if tt.flush {
				assert.True(t, s.held())
				got = append(got, s.flush()...)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.stripped, s.stripped.Load())
			assert.False(t, s.held(), "nothing left behind")
		})
	}
}

func TestStripperRegistrationRepeated(t *testing.T) {
	s := &stripper{patterns: [][]byte{[]byte("HB")}}
	s.add([]byte("IMEI:862951034567890"))
	s.add([]byte("HB")) // already there
	s.add([]byte("x"))  // too short: ignored
	assert.Len(t, s.patterns, 2)
	got := s.feed([]byte("\x68\x01IMEI:862951034567890\x16HB"))
	assert.Equal(t, []byte("\x68\x01\x16"), got)
	assert.Equal(t, uint64(2), s.stripped.Load())
}

func FuzzStripper(f *testing.F) {
	f.Add([]byte("abcHB01def"), 3)
	f.Add([]byte("HB0HB01"), 1)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		hb := []byte("HB01")
		whole := &stripper{patterns: [][]byte{hb}}
		want := append([]byte(nil), whole.feed(data)...)
		want = append(want, whole.flush()...)
		// However the stream is cut into reads, the result is the same.
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		parts := &stripper{patterns: [][]byte{hb}}
		got := append([]byte(nil), parts.feed(data[:cut])...)
		got = append(got, parts.feed(data[cut:])...)
		got = append(got, parts.flush()...)
		if string(got) != string(want) {
			t.Fatalf("cut at %d: %q, whole: %q", cut, got, want)
		}
	})
}
