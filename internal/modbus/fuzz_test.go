package modbus

import (
	"bytes"
	"errors"
	"testing"
)

// Run go test -fuzz=FuzzDecodeASCII ./internal/modbus (or FuzzDecodeRTU) to search further.

// A decoder never panics, never claims more bytes than it was given, and a frame it accepts encodes
// back to exactly the bytes it came from (upper-case hex for ASCII).
func FuzzDecodeASCII(f *testing.F) {
	f.Add([]byte(":0103021234B4\r\n"))
	f.Add([]byte(":010300000001FB\r\n"))
	f.Add([]byte("noise:01830279\r\n"))
	f.Add([]byte(":01030212349A\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := ASCII.Decode(b)
		if n > len(b) || n < 0 {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if err != nil {
			if n == 0 {
				t.Fatalf("error without bytes to drop: %v", err)
			}
			return
		}
		if n == 0 {
			return
		}
		again := ASCII.Append(nil, fr)
		if !bytes.Equal(again, bytes.ToUpper(b[:n])) {
			t.Fatalf("encode(decode(x)) != x\n got %q\nwant %q", again, b[:n])
		}
	})
}

func FuzzDecodeRTU(f *testing.F) {
	f.Add([]byte{1, 3, 2, 0x12, 0x34, 0xB5, 0x33})
	f.Add([]byte{1, 0x83, 2, 0xC0, 0xF1})
	f.Add([]byte{1, 6, 0, 1, 0, 3, 0x98, 0x0B})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := RTU.Decode(b)
		if n > len(b) || n < 0 {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if err != nil || n == 0 {
			if err != nil && !errors.Is(err, ErrFrame) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		again := RTU.Append(nil, fr)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("encode(decode(x)) != x\n got % X\nwant % X", again, b[:n])
		}
	})
}

// Whatever is framed decodes back to itself.
func FuzzRoundTrip(f *testing.F) {
	f.Add(byte(1), []byte{3, 2, 0, 1})
	f.Fuzz(func(t *testing.T, unit byte, pdu []byte) {
		if len(pdu) == 0 || len(pdu) > MaxPDU {
			return
		}
		b := ASCII.Append(nil, Frame{Unit: unit, PDU: pdu})
		fr, n, err := ASCII.Decode(b)
		if err != nil || n != len(b) || fr.Unit != unit || !bytes.Equal(fr.PDU, pdu) {
			t.Fatalf("ascii round trip of %d % X: %v %d %v", unit, pdu, fr, n, err)
		}
	})
}
