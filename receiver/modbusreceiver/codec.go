package modbusreceiver

import (
	"math"
	"strings"
)

// The codec turns raw register values (each uint16 as it came off the wire: high byte first) into
// numbers. Byte orders name the bytes of the value in the order they arrive, A being the most
// significant: ABCD is big-endian with the high word first, CDAB has the words swapped, BADC the bytes
// of each word swapped, DCBA is fully little-endian. For 64-bit values the same rule extends to four
// words (CDAB = low word first, BADC = bytes swapped in each word, DCBA = reversed).

// wordSwap tells whether the order puts the least significant word first.
func (o ByteOrder) wordSwap() bool { return o == OrderCDAB || o == OrderDCBA }

// byteSwap tells whether each register carries its bytes low first.
func (o ByteOrder) byteSwap() bool { return o == OrderBADC || o == OrderDCBA }

func swap16(v uint16) uint16 { return v<<8 | v>>8 }

// assemble combines n registers (n ≤ 4) into an integer in the given order.
func assemble(regs []uint16, o ByteOrder) uint64 {
	var v uint64
	n := len(regs)
	bs, ws := o.byteSwap(), o.wordSwap()
	for i := 0; i < n; i++ {
		r := regs[i]
		if ws {
			r = regs[n-1-i]
		}
		if bs {
			r = swap16(r)
		}
		v = v<<16 | uint64(r)
	}
	return v
}

// decodeRegisters returns the value of a numeric field read from regs (at least the field's
// registers) before scaling, and its raw bit pattern for invalid-value checks.
func decodeRegisters(f *fieldSpec, regs []uint16) (value float64, raw uint64) {
	switch f.typ {
	case TypeUint16:
		v := assemble(regs[:1], f.order)
		return float64(v), v
	case TypeInt16:
		v := assemble(regs[:1], f.order)
		return float64(int16(v)), v
	case TypeUint8, TypeInt8:
		v := assemble(regs[:1], f.order)
		b := uint8(v)
		if f.highByte {
			b = uint8(v >> 8)
		}
		if f.typ == TypeInt8 {
			return float64(int8(b)), uint64(b)
		}
		return float64(b), uint64(b)
	case TypeUint32:
		v := assemble(regs[:2], f.order)
		return float64(v), v
	case TypeInt32:
		v := assemble(regs[:2], f.order)
		return float64(int32(uint32(v))), v
	case TypeUint64:
		v := assemble(regs[:4], f.order)
		return float64(v), v
	case TypeInt64:
		v := assemble(regs[:4], f.order)
		return float64(int64(v)), v
	case TypeFloat16:
		v := assemble(regs[:1], f.order)
		return float16(uint16(v)), v
	case TypeFloat32:
		v := assemble(regs[:2], f.order)
		return float64(math.Float32frombits(uint32(v))), v
	case TypeFloat64:
		v := assemble(regs[:4], f.order)
		return math.Float64frombits(v), v
	case TypeBool:
		v := assemble(regs[:1], f.order)
		if v != 0 {
			return 1, v
		}
		return 0, v
	case TypeBit:
		// A bit number counts in the register's value, whatever the byte order on the wire.
		v := assemble(regs[:1], f.order)
		return float64((v >> f.bit) & 1), v
	}
	return math.NaN(), 0
}

// float16 decodes an IEEE 754 half-precision value.
func float16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// decodeString returns the text of a string field: two characters per register, registers in
// address order (a word order does not apply to text), the first character in the high byte unless
// the order swaps bytes (BADC, DCBA); NULs and trailing blanks are removed.
func decodeString(f *fieldSpec, regs []uint16) string {
	buf := make([]byte, 0, 2*len(regs))
	for _, r := range regs {
		if f.order.byteSwap() {
			r = swap16(r)
		}
		buf = append(buf, byte(r>>8), byte(r))
	}
	s := strings.TrimRight(strings.ReplaceAll(string(buf), "\x00", ""), " ")
	return strings.ToValidUTF8(s, "?")
}

// isInvalid tells whether the raw bit pattern is one of the field's "not available" values; a value
// may be given as the pattern (0x8000) or as the signed number (-32768).
func (f *fieldSpec) isInvalid(raw uint64) bool {
	bits := 16 * f.count
	if f.typ == TypeInt8 || f.typ == TypeUint8 {
		bits = 8
	}
	mask := uint64(1)<<bits - 1
	if bits >= 64 {
		mask = math.MaxUint64
	}
	for _, v := range f.invalid {
		if uint64(v)&mask == raw {
			return true
		}
	}
	return false
}
