package dlt645

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in                     string
		kind                   FormatKind
		digits, decimals, size int
	}{
		{"XXXXXX.XX", Number, 8, 2, 4},
		{"XXX.X", Number, 4, 1, 2},
		{"XXX.XXX", Number, 6, 3, 3},
		{"XX.XXXX", Number, 6, 4, 3},
		{"X.XXX", Number, 4, 3, 2},
		{"XX.XX", Number, 4, 2, 2},
		{"XXX", Number, 3, 0, 2},
		{"NNNNNNNNNNNN", Number, 12, 0, 6},
		{"YYMMDDWW", Date, 0, 0, 4},
		{"hhmmss", TimeOfDay, 0, 0, 3},
		{"YYMMDDWWhhmmss", DateTime, 0, 0, 7},
	}
	for _, tt := range tests {
		f, err := ParseFormat(tt.in, false)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.kind, f.Kind, tt.in)
		assert.Equal(t, tt.digits, f.Digits, tt.in)
		assert.Equal(t, tt.decimals, f.Decimals, tt.in)
		assert.Equal(t, tt.size, f.Size, tt.in)
	}
	for _, bad := range []string{"", "XX..X", "X.X.X", "abc", "XXXXXXXXXXXXXXX", "."} {
		_, err := ParseFormat(bad, false)
		assert.Error(t, err, bad)
	}
	_, err := ParseFormat("hhmmss", true)
	assert.Error(t, err)
}

// Values and their bytes (low byte first, before the 0x33 offset), worked out
// by hand.
func TestNumberFormats(t *testing.T) {
	tests := []struct {
		format string
		signed bool
		value  float64
		bytes  []byte
	}{
		{"XXXXXX.XX", false, 12345.67, []byte{0x67, 0x45, 0x23, 0x01}},
		{"XXXXXX.XX", false, 0, []byte{0, 0, 0, 0}},
		{"XXXXXX.XX", false, 999999.99, []byte{0x99, 0x99, 0x99, 0x99}},
		{"XXXXXX.XX", true, -1.5, []byte{0x50, 0x01, 0x00, 0x80}},
		{"XXX.X", false, 220.1, []byte{0x01, 0x22}},
		{"XXX.XXX", true, 5.5, []byte{0x00, 0x55, 0x00}},
		{"XXX.XXX", true, -5.5, []byte{0x00, 0x55, 0x80}},
		{"XX.XXXX", true, -1.2345, []byte{0x45, 0x23, 0x81}},
		{"XX.XXXX", true, 79.9999, []byte{0x99, 0x99, 0x79}},
		{"X.XXX", true, -0.866, []byte{0x66, 0x88}},
		{"X.XXX", true, 1, []byte{0x00, 0x10}},
		{"XX.XX", false, 50.01, []byte{0x01, 0x50}},
		{"XXX", false, 230, []byte{0x30, 0x02}},
		{"XX.XX", false, 12.34, []byte{0x34, 0x12}},
	}
	for _, tt := range tests {
		f, err := ParseFormat(tt.format, tt.signed)
		require.NoError(t, err)
		got, err := f.Encode(tt.value)
		require.NoError(t, err, "%s %v", tt.format, tt.value)
		assert.Equal(t, tt.bytes, got, "encode %s %v", tt.format, tt.value)
		v, err := f.Decode(tt.bytes)
		require.NoError(t, err)
		assert.Equal(t, tt.value, v, "decode %s % X", tt.format, tt.bytes)
	}
}

func TestNumberErrors(t *testing.T) {
	f, _ := ParseFormat("XXX.X", false)
	_, err := f.Decode([]byte{0x1A, 0x22})
	assert.ErrorIs(t, err, ErrBCD)
	_, err = f.Decode([]byte{0x01})
	assert.ErrorIs(t, err, ErrSize)
	_, err = f.Encode(-1)
	assert.ErrorIs(t, err, ErrRange, "unsigned format takes no negative value")
	_, err = f.Encode(1000)
	assert.ErrorIs(t, err, ErrRange)
	s, _ := ParseFormat("XX.XXXX", true)
	_, err = s.Encode(80)
	assert.ErrorIs(t, err, ErrRange, "the sign bit leaves 0..79.9999")
	// An unsigned reading of a byte with the top bit set is a plain digit.
	u, _ := ParseFormat("XX.XXXX", false)
	v, err := u.Decode([]byte{0x45, 0x23, 0x81})
	require.NoError(t, err)
	assert.Equal(t, 81.2345, v)
}

func TestClockFormats(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	ts := time.Date(2024, 3, 5, 14, 30, 45, 0, loc) // a Tuesday
	date, _ := ParseFormat("YYMMDDWW", false)
	b, err := date.EncodeClock(ts)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x02, 0x05, 0x03, 0x24}, b)
	c, err := date.DecodeClock(b)
	require.NoError(t, err)
	assert.Equal(t, Clock{Year: 2024, Month: 3, Day: 5, Weekday: 2, Hour: -1, Minute: -1, Second: -1}, c)

	tod, _ := ParseFormat("hhmmss", false)
	b, err = tod.EncodeClock(ts)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x45, 0x30, 0x14}, b)
	c, err = tod.DecodeClock(b)
	require.NoError(t, err)
	assert.Equal(t, Clock{Year: -1, Month: -1, Day: -1, Weekday: -1, Hour: 14, Minute: 30, Second: 45}, c)

	dt, _ := ParseFormat("YYMMDDWWhhmmss", false)
	b, err = dt.EncodeClock(ts)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x45, 0x30, 0x14, 0x02, 0x05, 0x03, 0x24}, b)
	c, err = dt.DecodeClock(b)
	require.NoError(t, err)
	assert.Equal(t, Clock{2024, 3, 5, 2, 14, 30, 45}, c)

	_, err = tod.DecodeClock([]byte{0x45, 0x60, 0x14})
	assert.ErrorIs(t, err, ErrRange)
	_, err = date.DecodeClock([]byte{0x02, 0x05, 0x13, 0x24})
	assert.ErrorIs(t, err, ErrRange)
	_, err = date.DecodeClock([]byte{0x02, 0x0A, 0x03, 0x24})
	assert.ErrorIs(t, err, ErrBCD)
}

func TestRescaleExact(t *testing.T) {
	f := builtinFormat("XXXXXX.XX", false)
	naiveWrong := 0
	for n := uint64(0); n < 100000000; n += 99991 {
		b, err := f.Encode(float64(n) / 100)
		require.NoError(t, err)
		v, err := f.Decode(b)
		require.NoError(t, err)
		got := Rescale(v, f.Decimals, ExpKilo)
		require.Equal(t, float64(n*10), got, "%d (in 10 Wh) as Wh", n)
		if v*1000 != float64(n*10) {
			naiveWrong++
		}
	}
	assert.Positive(t, naiveWrong, "multiplying the decoded kWh by 1000 is not exact: Rescale is needed")

	kw := builtinFormat("XX.XXXX", true)
	b, err := kw.Encode(-12.3456)
	require.NoError(t, err)
	v, err := kw.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, -12345.6, Rescale(v, kw.Decimals, ExpKilo))
	assert.Equal(t, 221.5, Rescale(221.5, 1, 0), "exp 0: unchanged")
}
