package dlt645

import "testing"

var benchReply = unhexNoT("FE FE FE FE 68 01 00 00 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 D3 16")

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchReply)))
	for b.Loop() {
		if _, _, err := Decode(benchReply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	f := ReadRequest(V2007, Address{1}, 0x00010000)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = f.Append(buf[:0], 4); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitter(b *testing.B) {
	// A reply arriving in three pieces with noise in front, as on a line.
	noise := []byte{0x00, 0x68, 0x16}
	var s Splitter
	b.ReportAllocs()
	b.SetBytes(int64(len(benchReply) + len(noise)))
	for b.Loop() {
		_, _ = s.Write(noise)
		_, _ = s.Write(benchReply[:7])
		_, _ = s.Write(benchReply[7:15])
		_, _ = s.Write(benchReply[15:])
		if _, ok := s.Next(); !ok {
			b.Fatal("no frame")
		}
	}
}

func BenchmarkDecodeValue(b *testing.B) {
	e, _ := Builtin().Lookup(V2007, 0x00010000)
	v := []byte{0x67, 0x45, 0x23, 0x01}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Format.Decode(v); err != nil {
			b.Fatal(err)
		}
	}
}
