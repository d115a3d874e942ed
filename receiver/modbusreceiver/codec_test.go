package modbusreceiver

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"math"
	"testing"

	"github.com/simonvetter/modbus"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// wire lays the big-endian bytes of a value out as the device sends them in the given order, using
// explicit permutations (indices into the big-endian bytes), and packs them into registers.
func wire(be []byte, o ByteOrder) []uint16 {
	perm := map[int]map[ByteOrder][]int{
		2: {OrderABCD: {0, 1}, OrderCDAB: {0, 1}, OrderBADC: {1, 0}, OrderDCBA: {1, 0}},
		4: {OrderABCD: {0, 1, 2, 3}, OrderCDAB: {2, 3, 0, 1}, OrderBADC: {1, 0, 3, 2}, OrderDCBA: {3, 2, 1, 0}},
		8: {OrderABCD: {0, 1, 2, 3, 4, 5, 6, 7}, OrderCDAB: {6, 7, 4, 5, 2, 3, 0, 1}, OrderBADC: {1, 0, 3, 2, 5, 4, 7, 6}, OrderDCBA: {7, 6, 5, 4, 3, 2, 1, 0}},
	}[len(be)][o]
	out := make([]byte, len(be))
	for i, p := range perm {
		out[i] = be[p]
	}
	regs := make([]uint16, len(out)/2)
	for i := range regs {
		regs[i] = uint16(out[2*i])<<8 | uint16(out[2*i+1])
	}
	return regs
}

func be16(v uint16) []byte { b := make([]byte, 2); binary.BigEndian.PutUint16(b, v); return b }
func be32(v uint32) []byte { b := make([]byte, 4); binary.BigEndian.PutUint32(b, v); return b }
func be64(v uint64) []byte { b := make([]byte, 8); binary.BigEndian.PutUint64(b, v); return b }

func TestDecodeEveryTypeAndOrder(t *testing.T) {
	cases := []struct {
		typ  DataType
		be   []byte
		want float64
	}{
		{TypeUint16, be16(0xBEEF), 0xBEEF},
		{TypeInt16, be16(uint16(0xFFFF & -12345)), -12345},
		{TypeUint32, be32(0xDEADBEEF), 0xDEADBEEF},
		{TypeInt32, be32(uint32(0xFFFFFFFF & -123456789)), -123456789},
		{TypeUint64, be64(0x0123456789ABCDEF), float64(uint64(0x0123456789ABCDEF))},
		{TypeInt64, be64(uint64(0xFFFFFFFFFFFFFFFF & -9007199254740993)), float64(int64(-9007199254740993))},
		{TypeFloat32, be32(math.Float32bits(230.125)), 230.125},
		{TypeFloat32, be32(math.Float32bits(-1.5e-3)), float64(float32(-1.5e-3))},
		{TypeFloat64, be64(math.Float64bits(12345.678901234)), 12345.678901234},
		{TypeFloat16, be16(0x3C00), 1},
		{TypeFloat16, be16(0xC100), -2.5},
		{TypeFloat16, be16(0x0001), math.Ldexp(1, -24)},
		{TypeBool, be16(0x0100), 1},
		{TypeBool, be16(0), 0},
	}
	for _, c := range cases {
		for _, o := range []ByteOrder{OrderABCD, OrderCDAB, OrderBADC, OrderDCBA} {
			t.Run(fmt.Sprintf("%s/%s/%x", c.typ, o, c.be), func(t *testing.T) {
				f := fieldSpec{typ: c.typ, order: o, count: c.typ.registers(0)}
				got, _ := decodeRegisters(&f, wire(c.be, o))
				assert.Equal(t, c.want, got)
			})
		}
	}
}

func TestDecodeBitsAndBytes(t *testing.T) {
	for _, o := range []ByteOrder{OrderABCD, OrderCDAB, OrderBADC, OrderDCBA} {
		regs := wire(be16(0x8421), o) // bits 0, 5, 10, 15
		for bit := 0; bit < 16; bit++ {
			f := fieldSpec{typ: TypeBit, bit: bit, order: o, count: 1}
			got, _ := decodeRegisters(&f, regs)
			want := 0.0
			if bit == 0 || bit == 5 || bit == 10 || bit == 15 {
				want = 1
			}
			assert.Equal(t, want, got, "%s bit %d", o, bit)
		}
		regs = wire(be16(0x80FE), o) // high byte 0x80, low byte 0xFE
		for _, c := range []struct {
			typ  DataType
			high bool
			want float64
		}{{TypeUint8, true, 0x80}, {TypeUint8, false, 0xFE}, {TypeInt8, true, -128}, {TypeInt8, false, -2}} {
			f := fieldSpec{typ: c.typ, highByte: c.high, order: o, count: 1}
			got, _ := decodeRegisters(&f, regs)
			assert.Equal(t, c.want, got, "%s %s high=%v", o, c.typ, c.high)
		}
	}
}

func TestDecodeString(t *testing.T) {
	text := []byte("SN-12345\x00\x00")
	for _, o := range []ByteOrder{OrderABCD, OrderCDAB, OrderBADC, OrderDCBA} {
		regs := make([]uint16, 0, len(text)/2)
		for i := 0; i < len(text); i += 2 {
			regs = append(regs, wire(text[i:i+2], o)...)
		}
		f := fieldSpec{typ: TypeString, order: o, count: len(regs)}
		assert.Equal(t, "SN-12345", decodeString(&f, regs), o)
	}
}

func TestInvalidValues(t *testing.T) {
	f := fieldSpec{typ: TypeInt16, count: 1, invalid: []int64{0x8000}}
	_, raw := decodeRegisters(&f, []uint16{0x8000})
	assert.True(t, f.isInvalid(raw))
	f.invalid = []int64{-32768}
	assert.True(t, f.isInvalid(raw), "the signed spelling matches too")
	_, raw = decodeRegisters(&f, []uint16{0x7FFF})
	assert.False(t, f.isInvalid(raw))
	g := fieldSpec{typ: TypeUint32, count: 2, invalid: []int64{0xFFFFFFFF}}
	_, raw = decodeRegisters(&g, []uint16{0xFFFF, 0xFFFF})
	assert.True(t, g.isInvalid(raw))
}

// The library's own encodings agree with ours (STYLE §3: ABCD = BIG_ENDIAN + HIGH_WORD_FIRST …).
func TestOrdersMatchLibraryNames(t *testing.T) {
	v := math.Float32bits(3.14159)
	hi, lo := uint16(v>>16), uint16(v)
	swap := func(x uint16) uint16 { return x<<8 | x>>8 }
	for o, regs := range map[ByteOrder][]uint16{
		OrderABCD: {hi, lo},             // BIG_ENDIAN, HIGH_WORD_FIRST
		OrderCDAB: {lo, hi},             // BIG_ENDIAN, LOW_WORD_FIRST
		OrderBADC: {swap(hi), swap(lo)}, // LITTLE_ENDIAN, HIGH_WORD_FIRST
		OrderDCBA: {swap(lo), swap(hi)}, // LITTLE_ENDIAN, LOW_WORD_FIRST
	} {
		f := fieldSpec{typ: TypeFloat32, order: o, count: 2}
		got, _ := decodeRegisters(&f, regs)
		require.Equal(t, float64(float32(3.14159)), got, o)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint16(0x4366), uint16(0x2000), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, ti, oi uint8, a, b, c, d uint16) {
		typ := allTypes[int(ti)%len(allTypes)]
		o := []ByteOrder{OrderABCD, OrderCDAB, OrderBADC, OrderDCBA}[oi%4]
		fs := fieldSpec{typ: typ, order: o, count: typ.registers(4), bit: int(a % 16)}
		regs := []uint16{a, b, c, d}
		if typ == TypeString {
			_ = decodeString(&fs, regs)
			return
		}
		_, _ = decodeRegisters(&fs, regs)
	})
}

// Against the library: its (endianness, word order) encodings read the same registers as our orders.
func TestOrdersAgreeWithLibraryClient(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, 0x4049, 0x0FD0, 0x1234, 0xABCD)
	addr := startTCPServer(t, bank)
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + addr, Logger: log.New(io.Discard, "", 0)})
	require.NoError(t, err)
	require.NoError(t, c.Open())
	defer c.Close()
	raw, err := c.ReadRegisters(0, 4, modbus.HOLDING_REGISTER)
	require.NoError(t, err)
	for o, enc := range map[ByteOrder][2]uint{
		OrderABCD: {uint(modbus.BIG_ENDIAN), uint(modbus.HIGH_WORD_FIRST)},
		OrderCDAB: {uint(modbus.BIG_ENDIAN), uint(modbus.LOW_WORD_FIRST)},
		OrderBADC: {uint(modbus.LITTLE_ENDIAN), uint(modbus.HIGH_WORD_FIRST)},
		OrderDCBA: {uint(modbus.LITTLE_ENDIAN), uint(modbus.LOW_WORD_FIRST)},
	} {
		require.NoError(t, c.SetEncoding(modbus.Endianness(enc[0]), modbus.WordOrder(enc[1])))
		f32, err := c.ReadFloat32(0, modbus.HOLDING_REGISTER)
		require.NoError(t, err)
		u64, err := c.ReadUint64(0, modbus.HOLDING_REGISTER)
		require.NoError(t, err)
		got32, _ := decodeRegisters(&fieldSpec{typ: TypeFloat32, order: o, count: 2}, raw)
		_, got64 := decodeRegisters(&fieldSpec{typ: TypeUint64, order: o, count: 4}, raw)
		assert.Equal(t, float64(f32), got32, o)
		assert.Equal(t, u64, got64, o)
	}
}
