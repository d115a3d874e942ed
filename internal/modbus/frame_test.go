package modbus

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// Vectors from the Modbus serial line guide: read holding registers 0 (1 register) of unit 1.
func TestEncodeKnownFrames(t *testing.T) {
	pdu := []byte{3, 0, 0, 0, 1}
	require.Equal(t, unhexT(t, "01 03 00 00 00 01 84 0A"), RTU.Append(nil, Frame{Unit: 1, PDU: pdu}))
	require.Equal(t, ":010300000001FB\r\n", string(ASCII.Append(nil, Frame{Unit: 1, PDU: pdu})))
	require.Equal(t, unhexT(t, "00 07 00 00 00 06 01 03 00 00 00 01"), MBAP.Append(nil, Frame{TxID: 7, Unit: 1, PDU: pdu}))
}

func TestDecodeASCII(t *testing.T) {
	// Reply: unit 1, function 3, 2 bytes, 0x1234; LRC = -(1+3+2+0x12+0x34).
	f, n, err := ASCII.Decode([]byte(":0103021234B4\r\nrest"))
	require.NoError(t, err)
	require.Equal(t, 15, n)
	require.Equal(t, Frame{Unit: 1, PDU: []byte{3, 2, 0x12, 0x34}}, f)

	// lower-case hex is accepted
	_, _, err = ASCII.Decode([]byte(":0103021234b4\r\n"))
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		in   string
		n    int
		want error
	}{
		"incomplete":   {":0103021234", 0, nil},
		"bad LRC":      {":01030212349A\r\n", 15, ErrChecksum},
		"noise":        {"xx:0103", 2, ErrNoise},
		"odd digits":   {":01030212344\r\n", 14, ErrFrame},
		"not hex":      {":0103021G34B4\r\n", 15, ErrFrame},
		"no CR":        {":0103021234B4\n", 14, ErrFrame},
		"cut by colon": {":010302:0103021234B4\r\n", 7, ErrFrame},
		"too short":    {":01FF\r\n", 7, ErrFrame},
	} {
		t.Run(name, func(t *testing.T) {
			_, n, err := ASCII.Decode([]byte(tc.in))
			require.Equal(t, tc.n, n)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
	// A line without LF never grows past the longest frame.
	_, n, err = ASCII.Decode([]byte(":" + strings.Repeat("0", MaxASCII)))
	require.ErrorIs(t, err, ErrFrame)
	require.Equal(t, MaxASCII, n)
}

func TestDecodeRTU(t *testing.T) {
	reply := RTU.Append(nil, Frame{Unit: 5, PDU: []byte{4, 4, 0, 1, 0, 2}})
	f, n, err := RTU.Decode(append(reply, 0xAA))
	require.NoError(t, err)
	require.Equal(t, len(reply), n)
	require.Equal(t, Frame{Unit: 5, PDU: []byte{4, 4, 0, 1, 0, 2}}, f)

	_, n, err = RTU.Decode(reply[:len(reply)-1])
	require.NoError(t, err)
	require.Zero(t, n, "a frame missing its last byte needs more")

	bad := append([]byte(nil), reply...)
	bad[4] ^= 1
	_, _, err = RTU.Decode(bad)
	require.ErrorIs(t, err, ErrChecksum)

	_, _, err = RTU.Decode([]byte{1, 0x41, 0, 0})
	require.ErrorIs(t, err, ErrFrame)

	exc := RTU.Append(nil, Frame{Unit: 1, PDU: []byte{0x83, 2}})
	f, n, err = RTU.Decode(exc)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, []byte{0x83, 2}, f.PDU)
}

func TestDecodeMBAP(t *testing.T) {
	b := MBAP.Append(nil, Frame{TxID: 0x102, Unit: 9, PDU: []byte{3, 2, 0, 7}})
	f, n, err := MBAP.Decode(b)
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	require.Equal(t, Frame{TxID: 0x102, Unit: 9, PDU: []byte{3, 2, 0, 7}}, f)
	_, n, err = MBAP.Decode(b[:len(b)-1])
	require.NoError(t, err)
	require.Zero(t, n)
	b[2] = 1
	_, _, err = MBAP.Decode(b)
	require.True(t, errors.Is(err, ErrFrame))
}
