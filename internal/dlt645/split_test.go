package dlt645

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func collect(s *Splitter) []Frame {
	var out []Frame
	for {
		f, ok := s.Next()
		if !ok {
			return out
		}
		out = append(out, f)
	}
}

func TestSplitter(t *testing.T) {
	a := "68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16"
	b := "68 01 00 00 00 00 00 68 D1 01 35 D8 16"
	badSum := "68 01 00 00 00 00 00 68 D1 01 35 D9 16"
	// Data as sent: 33 33 34 33 16 16 68 16.
	with16 := hexOf(mustEncode(t, Frame{Address: Address{1}, Control: 0x91, Data: []byte{0, 0, 1, 0, 0xE3, 0xE3, 0x35, 0xE3}}))
	tests := []struct {
		name      string
		chunks    []string
		frames    int
		noise     uint64
		rejected  uint64
		remaining int
	}{
		{"one frame", []string{a}, 1, 0, 0, 0},
		{"wake-up bytes are not noise", []string{"FE FE FE FE " + a}, 1, 0, 0, 0},
		{"two frames back to back", []string{a + " " + b}, 2, 0, 0, 0},
		{"garbage before and between", []string{"00 11 22 " + a + " 16 16 " + b}, 2, 5, 0, 0},
		{"byte by byte", splitBytes(a + " " + b), 2, 0, 0, 0},
		{"bad checksum is rejected, next frame kept", []string{badSum + " " + a}, 1, 13, 1, 0},
		{"stray 68 in noise before a frame", []string{"68 " + a}, 1, 1, 0, 0},
		{"stray 68 68 with a huge length before a frame", []string{"68 00 00 00 00 00 00 68 11 FF " + a}, 1, 10, 0, 0},
		{"incomplete frame waits", []string{a[:30]}, 0, 0, 0, 10},
		{"16 and 68 inside data", []string{with16}, 1, 0, 0, 0},
		{"16 and 68 inside data, byte by byte", splitBytes(with16), 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Splitter
			var got []Frame
			for _, c := range tt.chunks {
				_, _ = s.Write(unhex(t, c))
				got = append(got, collect(&s)...)
			}
			assert.Len(t, got, tt.frames)
			assert.Equal(t, tt.noise, s.Noise(), "noise")
			assert.Equal(t, tt.rejected, s.Rejected(), "rejected")
			assert.Equal(t, tt.remaining, s.Buffered(), "buffered")
		})
	}
}

func TestSplitterFalseStartResolvedLater(t *testing.T) {
	// A noise 68 .. 68 announcing 0x40 bytes, then a good frame: the good
	// frame is taken as soon as it is complete, not after 0x40 more bytes.
	var s Splitter
	_, _ = s.Write(unhex(t, "68 00 00 00 00 00 00 68 11 40"))
	_, ok := s.Next()
	require.False(t, ok)
	_, _ = s.Write(unhex(t, "68 01 00 00 00 00 00 68 D1 01 35 D8"))
	_, ok = s.Next()
	require.False(t, ok)
	_, _ = s.Write(unhex(t, "16"))
	f, ok := s.Next()
	require.True(t, ok)
	assert.Equal(t, Control(0xD1), f.Control)
	assert.Equal(t, 0, s.Buffered())
}

func TestSplitterStaysBounded(t *testing.T) {
	var s Splitter
	junk := make([]byte, 10000)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	for i := 0; i < len(junk); i += 100 {
		_, _ = s.Write(junk[i : i+100])
		collect(&s)
		assert.LessOrEqual(t, s.Buffered(), MaxFrameLen+100)
	}
}

func splitBytes(s string) []string {
	b := unhexNoT(s)
	out := make([]string, len(b))
	for i, c := range b {
		out[i] = hexOf([]byte{c})
	}
	return out
}

func mustEncode(t testing.TB, f Frame) []byte {
	b, err := f.Encode(0)
	require.NoError(t, err)
	return b
}
