package dlt645

import (
	"bytes"
	"testing"
	"time"
)

// The seed corpus for these lives in testdata/fuzz/<FuzzName>; run
// go test -fuzz=FuzzDecode ./internal/dlt645 to search further.

func FuzzDecode(f *testing.F) {
	f.Add(unhexNoT("FE FE FE FE 68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16"))
	f.Add(unhexNoT("68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Decode(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		pre := 0
		for pre < n && b[pre] == WakeUp {
			pre++
		}
		again, err := fr.Encode(pre)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("encode(decode(x)) != x\n got % X\nwant % X", again, b[:n])
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0}, byte(0x91), []byte{0, 0, 1, 0, 0x67, 0x45, 0x23, 0x01}, uint8(4))
	f.Add([]byte{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}, byte(0x13), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, addr []byte, c byte, data []byte, preamble uint8) {
		var fr Frame
		copy(fr.Address[:], addr)
		fr.Control = Control(c)
		if len(data) > 0 {
			fr.Data = data
		}
		b, err := fr.Encode(int(preamble % 8))
		if len(data) > MaxDataLen {
			if err == nil {
				t.Fatal("accepted a data field longer than 255 bytes")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		back, n, err := Decode(b)
		if err != nil {
			t.Fatalf("decode(encode(x)): %v", err)
		}
		if n != len(b) || back.Address != fr.Address || back.Control != fr.Control || !bytes.Equal(back.Data, fr.Data) {
			t.Fatalf("decode(encode(x)) != x: %s vs %s", back, fr)
		}
		// The splitter finds it too, whatever noise comes before.
		var s Splitter
		_, _ = s.Write(append(append([]byte{0x68, 0x16, 0x00}, b...), 0x68))
		got, ok := s.Next()
		if !ok || got.Address != fr.Address || !bytes.Equal(got.Data, fr.Data) {
			t.Fatalf("splitter lost the frame %s", fr)
		}
	})
}

func FuzzSplitter(f *testing.F) {
	f.Add(unhexNoT("00 11 FE FE 68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16 16 68 01 00 00 00 00 00 68 D1 01 35 D8 16"), uint8(3))
	f.Add(unhexNoT("68 00 00 00 00 00 00 68 11 40 68 01 00 00 00 00 00 68 D1 01 35 D8 16"), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		step := int(chunk%32) + 1
		var s Splitter
		for i := 0; i < len(stream); i += step {
			_, _ = s.Write(stream[i:min(i+step, len(stream))])
			for {
				fr, ok := s.Next()
				if !ok {
					break
				}
				enc, err := fr.Encode(0)
				if err != nil || !bytes.Contains(stream, enc) {
					t.Fatalf("splitter returned a frame that is not in the stream: %s", fr)
				}
			}
			if s.Buffered() > MaxFrameLen+step {
				t.Fatalf("buffer grew to %d", s.Buffered())
			}
		}
	})
}

func FuzzNumber(f *testing.F) {
	f.Add([]byte{0x67, 0x45, 0x23, 0x01}, uint8(2), true)
	f.Add([]byte{0x45, 0x23, 0x81}, uint8(4), true)
	f.Fuzz(func(t *testing.T, b []byte, decimals uint8, signed bool) {
		if len(b) == 0 || len(b) > 7 {
			return
		}
		digits := 2 * len(b)
		dec := int(decimals) % (digits + 1)
		pattern := make([]byte, 0, digits+1)
		for i := range digits {
			if i == digits-dec && dec > 0 {
				pattern = append(pattern, '.')
			}
			pattern = append(pattern, 'X')
		}
		fm, err := ParseFormat(string(pattern), signed)
		if err != nil {
			t.Fatal(err)
		}
		v, err := fm.Decode(b)
		if err != nil {
			return
		}
		back, err := fm.Encode(v)
		if err != nil {
			t.Fatalf("encode(decode(% X)) = %v: %v", b, v, err)
		}
		want := append([]byte(nil), b...)
		if v == 0 && signed {
			want[len(want)-1] &^= 0x80 // -0 comes back as +0
		}
		if !bytes.Equal(back, want) {
			t.Fatalf("encode(decode(% X)) = % X (value %v)", b, back, v)
		}
	})
}

func FuzzParseReadReply(f *testing.F) {
	f.Add(unhexNoT("68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16"), true)
	f.Add(unhexNoT("68 01 00 00 00 00 00 68 81 06 43 C3 9A 78 56 34 FA 16"), false)
	f.Fuzz(func(t *testing.T, b []byte, v2007 bool) {
		fr, _, err := Decode(b)
		if err != nil {
			return
		}
		v, di := V1997, DI(0x9010)
		if v2007 {
			v, di = V2007, 0x00010000
		}
		for _, req := range []Frame{ReadRequest(v, fr.Address, di), FollowUpRequest(v, fr.Address, di, 1)} {
			r, err := ParseReadReply(v, req, fr)
			if err == nil && r.Err == nil && len(r.Value) > len(fr.Data) {
				t.Fatal("value longer than the frame")
			}
		}
		_, _ = ParseAddressReply(fr)
		for _, e := range []DI{0x0001FF00, 0x0201FF00} {
			if m, ok := Builtin().Block(V2007, e); ok {
				_, _ = SplitBlock(m, fr.Data)
			}
		}
	})
}

// FuzzRecord feeds the record decoders (composite formats and load-profile records) arbitrary
// bytes: they must not panic, must not read past what they are given, and what they accept must
// encode back to the same bytes.
func FuzzRecord(f *testing.F) {
	f.Add(unhexNoT("56 34 12 30 14 05 03 24"), uint8(0))
	f.Add(unhexNoT("00 00 08 01 03 24 15 30 09 01 03 24"), uint8(1))
	f.Add(unhexNoT(profileRecordHex), uint8(2))
	f.Add(unhexNoT(profileRecordHex+profileRecordHex), uint8(9))
	formats := []string{FormatDemandRecord, "YYMMDDhhmmss,YYMMDDhhmmss", "XXXXXX,XXXXXX,XXXXXX,XXXXXX,XXXXXX,XXXXXX"}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		if int(which)%4 < len(formats) {
			fm := builtinFormat(formats[int(which)%4], false)
			fields, err := fm.DecodeRecord(b)
			if err != nil {
				return
			}
			var nums []Field
			var times []time.Time
			for _, fd := range fields {
				nums = append(nums, Field{Number: fd.Number})
				var at time.Time
				if fd.Kind.IsClock() && !fd.Empty {
					if at, err = fd.Clock.Time(time.UTC); err != nil {
						return // a day the month does not have: not a time, the receiver skips it
					}
				}
				times = append(times, at)
			}
			back, err := fm.EncodeRecord(nums, times)
			if err != nil {
				t.Fatalf("encode(decode(% X)): %v", b, err)
			}
			if !bytes.Equal(back, b) {
				t.Fatalf("encode(decode(% X)) = % X", b, back)
			}
			return
		}
		class := int(which) % 7
		recs, err := DecodeLoadProfile(class, b)
		if len(recs)*10 > len(b) {
			t.Fatalf("%d records from %d bytes", len(recs), len(b))
		}
		if err != nil || class != 0 {
			return
		}
		// Every record of an every-class read with all six separators encodes back to itself.
		var again []byte
		for _, r := range recs {
			if r.Bad {
				return
			}
			at, err := r.Time.Time(time.UTC)
			if err != nil {
				return
			}
			enc, err := EncodeLoadProfile(at, r.Values)
			if err != nil {
				t.Fatalf("encode(decode(% X)): %v", b, err)
			}
			again = append(again, enc...)
		}
		if len(again) == len(b) && !bytes.Equal(again, b) && !negZero(b) {
			t.Fatalf("encode(decode(% X)) = % X", b, again)
		}
	})
}

// negZero reports a signed zero with its sign bit somewhere in b (a -0 comes back as +0); the check
// is loose on purpose: such inputs skip the byte-for-byte comparison.
func negZero(b []byte) bool {
	for _, x := range b {
		if x == 0x80 {
			return true
		}
	}
	return false
}
