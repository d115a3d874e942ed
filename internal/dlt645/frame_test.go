package dlt645

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unhex reads "68 01 00 ..." into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func mustAddr(t testing.TB, s string) Address {
	t.Helper()
	a, err := ParseAddress(s)
	require.NoError(t, err)
	return a
}

// The frames below were worked out by hand from the standards (checksums
// summed digit by digit), not produced by this code.
func TestEncodeHandWorkedFrames(t *testing.T) {
	meter := mustAddr(t, "000000000001")
	tests := []struct {
		name     string
		frame    Frame
		preamble int
		want     string
	}{
		{
			name:     "2007 read forward active energy total",
			frame:    ReadRequest(V2007, meter, 0x00010000),
			preamble: 4,
			want:     "FE FE FE FE 68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16",
		},
		{
			name:  "2007 reply 12345.67 kWh",
			frame: ReadResponse(V2007, meter, 0x00010000, []byte{0x67, 0x45, 0x23, 0x01}, false),
			want:  "68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16",
		},
		{
			name:  "2007 error reply, no requested data",
			frame: ErrorResponse(meter, FuncRead2007, 0x02),
			want:  "68 01 00 00 00 00 00 68 D1 01 35 D8 16",
		},
		{
			name:  "2007 read follow-up, sequence 1",
			frame: FollowUpRequest(V2007, meter, 0x00010000, 1),
			want:  "68 01 00 00 00 00 00 68 12 05 33 33 34 33 34 E9 16",
		},
		{
			name:  "2007 read address (wildcard)",
			frame: ReadAddressRequest(),
			want:  "68 AA AA AA AA AA AA 68 13 00 DF 16",
		},
		{
			name:  "2007 read address reply 123456789012",
			frame: AddressResponse(mustAddr(t, "123456789012")),
			want:  "68 12 90 78 56 34 12 68 93 06 45 C3 AB 89 67 45 07 16",
		},
		{
			name:  "broadcast time sync 2024-03-05 14:30:45",
			frame: TimeSyncRequest(time.Date(2024, 3, 5, 14, 30, 45, 0, time.UTC)),
			want:  "68 99 99 99 99 99 99 68 08 06 78 63 47 38 36 57 5B 16",
		},
		{
			name:  "1997 read forward active energy total (9010)",
			frame: ReadRequest(V1997, meter, 0x9010),
			want:  "68 01 00 00 00 00 00 68 01 02 43 C3 DA 16",
		},
		{
			name:  "1997 reply 12345.67 kWh",
			frame: ReadResponse(V1997, meter, 0x9010, []byte{0x67, 0x45, 0x23, 0x01}, false),
			want:  "68 01 00 00 00 00 00 68 81 06 43 C3 9A 78 56 34 FA 16",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.frame.Encode(tt.preamble)
			require.NoError(t, err)
			assert.Equal(t, strings.ReplaceAll(tt.want, " ", ""), strings.ToUpper(hex.EncodeToString(got)))

			back, n, err := Decode(got)
			require.NoError(t, err)
			assert.Equal(t, len(got), n)
			assert.Equal(t, tt.frame.Address, back.Address)
			assert.Equal(t, tt.frame.Control, back.Control)
			assert.Equal(t, tt.frame.Data, back.Data)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := "68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16"
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrShort},
		{"only wake-up", "FE FE FE", ErrShort},
		{"header cut", "68 01 00 00 00", ErrShort},
		{"data cut", good[:len(good)-9], ErrShort},
		{"no start", "16 01 00 00 00 00 00 68 91 00 00 16", ErrStart},
		{"second 68 missing", "68 01 00 00 00 00 00 69 91 00 00 16", ErrStart},
		{"checksum off by one", strings.Replace(good, "D3 16", "D4 16", 1), ErrChecksum},
		{"bad end byte", strings.Replace(good, "D3 16", "D3 17", 1), ErrEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode(unhex(t, tt.in))
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestDecodeDataContaining16And68(t *testing.T) {
	// Data bytes 0x16 and 0x68 as sent (value bytes E3 and 35 before the
	// offset) must not end or restart the frame.
	f := ReadResponse(V2007, mustAddr(t, "1"), 0x00010000, []byte{0xE3, 0x35, 0xE3, 0xE3}, false)
	b, err := f.Encode(0)
	require.NoError(t, err)
	require.Contains(t, string(b[10:]), "\x16\x68\x16\x16")
	back, n, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, len(b), n)
	assert.Equal(t, f.Data, back.Data)
}

func TestEncodeTooLong(t *testing.T) {
	_, err := Frame{Data: make([]byte, 256)}.Encode(0)
	assert.ErrorIs(t, err, ErrTooLong)
	b, err := Frame{Data: make([]byte, 255)}.Encode(0)
	require.NoError(t, err)
	assert.Len(t, b, MaxFrameLen)
}

func TestAddress(t *testing.T) {
	tests := []struct {
		in, want string
		wire     [6]byte
	}{
		{"123456789012", "123456789012", [6]byte{0x12, 0x90, 0x78, 0x56, 0x34, 0x12}},
		{"1", "000000000001", [6]byte{0x01}},
		{"AAAAAAAAAAAA", "AAAAAAAAAAAA", [6]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}},
		{"aaaa00001234", "AAAA00001234", [6]byte{0x34, 0x12, 0x00, 0x00, 0xAA, 0xAA}},
		{"999999999999", "999999999999", [6]byte{0x99, 0x99, 0x99, 0x99, 0x99, 0x99}},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, Address(tt.wire), a, tt.in)
		assert.Equal(t, tt.want, a.String())
	}
	for _, bad := range []string{"", "1234567890123", "12x4", "A1", "12-34"} {
		_, err := ParseAddress(bad)
		assert.Error(t, err, bad)
	}
	assert.True(t, WildcardAddress.Matches(mustAddr(t, "123456789012")))
	assert.True(t, mustAddr(t, "AAAAAA789012").Matches(mustAddr(t, "123456789012")))
	assert.False(t, mustAddr(t, "AAAAAA789013").Matches(mustAddr(t, "123456789012")))
}

func TestControl(t *testing.T) {
	c := Control(0xB1)
	assert.True(t, c.IsReply())
	assert.True(t, c.HasMore())
	assert.False(t, c.IsAbnormal())
	assert.Equal(t, FuncRead2007, c.Func())
	c = Control(0xC1)
	assert.True(t, c.IsAbnormal())
	assert.Equal(t, FuncRead1997, c.Func())
	assert.Equal(t, "D1", Control(0xD1).String())
}
