package modbus

import (
	"fmt"
	"math"
	"strings"
)

// Byte orders name the bytes of a value in the order they arrive, A the most significant (as in the
// receiver): ABCD big-endian, CDAB words swapped, BADC bytes swapped in each word, DCBA little-endian;
// 64-bit values extend the rule to four words.
var Orders = []string{"ABCD", "CDAB", "BADC", "DCBA"}

func registers(typ string, length int) int {
	switch typ {
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	case "string":
		return length
	}
	return 1
}

// assemble combines the registers in raw (wire order, 2 bytes each, at most 4) into an integer.
func assemble(raw []byte, order string) uint64 {
	n := len(raw) / 2
	ws := order == "CDAB" || order == "DCBA"
	bs := order == "BADC" || order == "DCBA"
	var v uint64
	for i := 0; i < n; i++ {
		j := i
		if ws {
			j = n - 1 - i
		}
		hi, lo := raw[2*j], raw[2*j+1]
		if bs {
			hi, lo = lo, hi
		}
		v = v<<16 | uint64(hi)<<8 | uint64(lo)
	}
	return v
}

// decodeNumber returns the value of raw as typ before scaling, and the raw integer (for invalid_values).
func decodeNumber(typ, order, byteSel string, raw []byte) (float64, uint64, error) {
	need := 2 * registers(typ, 0)
	if len(raw) < need {
		return 0, 0, fmt.Errorf("%d bytes for a %s", len(raw), typ)
	}
	v := assemble(raw[:need], order)
	switch typ {
	case "uint16":
		return float64(v), v, nil
	case "int16":
		return float64(int16(v)), v, nil
	case "uint8", "int8":
		b := uint8(v)
		if strings.EqualFold(byteSel, "high") {
			b = uint8(v >> 8)
		}
		if typ == "int8" {
			return float64(int8(b)), uint64(b), nil
		}
		return float64(b), uint64(b), nil
	case "uint32":
		return float64(v), v, nil
	case "int32":
		return float64(int32(uint32(v))), v, nil
	case "uint64":
		return float64(v), v, nil
	case "int64":
		return float64(int64(v)), v, nil
	case "float16":
		return float16(uint16(v)), v, nil
	case "float32":
		return float64(math.Float32frombits(uint32(v))), v, nil
	case "float64":
		return math.Float64frombits(v), v, nil
	}
	return 0, 0, fmt.Errorf("type %q is not a number", typ)
}

func float16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1F
	frac := float64(h & 0x3FF)
	switch exp {
	case 0:
		return sign * frac / 1024 * math.Pow(2, -14)
	case 31:
		if frac == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + frac/1024) * math.Pow(2, float64(exp-15))
}

// decodeString reads text as the receiver does: two characters per register, the first in the high byte
// (BADC and DCBA swap the bytes of each register), trailing NULs and spaces dropped.
func decodeString(raw []byte, order string) string {
	b := make([]byte, len(raw))
	copy(b, raw)
	if order == "BADC" || order == "DCBA" {
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " ")
}
