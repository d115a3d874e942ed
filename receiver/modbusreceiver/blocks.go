package modbusreceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Protocol limits of one read (Modbus application protocol v1.1b3, 6.1–6.4).
const (
	maxRegistersPerRead = 125
	maxBitsPerRead      = 2000
)

// RequestConfig bounds how fields are merged into reads, and holds per-device quirks. It is set at
// three levels, receiver → profile → device: a key a level sets replaces the one above, 0 and false
// included; a key it leaves out is inherited (see device.Layer).
type RequestConfig struct {
	// MaxRegisters is the most registers in one read of holding or input registers (1–125).
	MaxRegisters *int `mapstructure:"max_registers"`
	// MaxBits is the most coils or discrete inputs in one read (1–2000).
	MaxBits *int `mapstructure:"max_bits"`
	// MaxGap is the most unused registers (or bits) a read may bridge to serve two fields in one request.
	MaxGap *int `mapstructure:"max_gap"`
	// Pause is the wait between two requests of one poll (devices that need quiet time); 0: none.
	Pause *time.Duration `mapstructure:"pause"`
	// CloseAfterPoll closes the connection after each poll of the device.
	CloseAfterPoll *bool `mapstructure:"close_after_poll"`
	// RemergeAfter is how long reads split after an exception stay split before merging is tried
	// again; 0: they stay split.
	RemergeAfter *time.Duration `mapstructure:"remerge_after"`
	// Blocks, in a profile or a device, are the device's reads given explicitly, for firmware that
	// answers only exact blocks: they are read as given (never merged, split or planned) and every
	// field must lie inside one of them.
	Blocks []BlockConfig `mapstructure:"blocks"`
}

// BlockConfig is one explicit read: a range of one table.
type BlockConfig struct {
	// Table is holding (default), input, coil or discrete.
	Table Table `mapstructure:"table"`
	// Address is the 0-based protocol address of the first register (or bit).
	Address *int `mapstructure:"address"`
	// Register is the Modicon reference of the first register instead of Table and Address.
	Register int `mapstructure:"register"`
	// Count is the number of registers (1–125) or bits (1–2000) read.
	Count int `mapstructure:"count"`
}

// requestSpec is a device's RequestConfig with every level applied.
type requestSpec struct {
	MaxRegisters   int
	MaxBits        int
	MaxGap         int
	Pause          time.Duration
	CloseAfterPoll bool
	RemergeAfter   time.Duration
	Blocks         []BlockConfig
}

// newDefaultRequestSpec is what applies where no level sets a key.
func newDefaultRequestSpec() requestSpec {
	return requestSpec{MaxRegisters: maxRegistersPerRead, MaxBits: maxBitsPerRead, MaxGap: 16, RemergeAfter: time.Hour}
}

// over applies the keys a level sets.
func (r requestSpec) over(c RequestConfig) requestSpec {
	r.MaxRegisters = device.Layer(r.MaxRegisters, c.MaxRegisters)
	r.MaxBits = device.Layer(r.MaxBits, c.MaxBits)
	r.MaxGap = device.Layer(r.MaxGap, c.MaxGap)
	r.Pause = device.Layer(r.Pause, c.Pause)
	r.CloseAfterPoll = device.Layer(r.CloseAfterPoll, c.CloseAfterPoll)
	r.RemergeAfter = device.Layer(r.RemergeAfter, c.RemergeAfter)
	if c.Blocks != nil {
		r.Blocks = c.Blocks
	}
	return r
}

// clamped keeps limits within the protocol's (a bad value is reported by Validate).
func (r requestSpec) clamped() requestSpec {
	if r.MaxRegisters < 1 || r.MaxRegisters > maxRegistersPerRead {
		r.MaxRegisters = maxRegistersPerRead
	}
	if r.MaxBits < 1 || r.MaxBits > maxBitsPerRead {
		r.MaxBits = maxBitsPerRead
	}
	if r.MaxGap < 0 || r.MaxGap > maxBitsPerRead {
		r.MaxGap = 0
	}
	return r
}

// Validate reports every problem of the keys a level sets, named under prefix. Blocks are checked
// against the device's fields when the device is resolved (resolveBlocks).
func (r RequestConfig) Validate(prefix string) error {
	var errs []error
	if r.MaxRegisters != nil && (*r.MaxRegisters < 1 || *r.MaxRegisters > maxRegistersPerRead) {
		errs = append(errs, fmt.Errorf("%smax_registers: must be between 1 and %d, got %d", prefix, maxRegistersPerRead, *r.MaxRegisters))
	}
	if r.MaxBits != nil && (*r.MaxBits < 1 || *r.MaxBits > maxBitsPerRead) {
		errs = append(errs, fmt.Errorf("%smax_bits: must be between 1 and %d, got %d", prefix, maxBitsPerRead, *r.MaxBits))
	}
	if r.MaxGap != nil && (*r.MaxGap < 0 || *r.MaxGap > maxBitsPerRead) {
		errs = append(errs, fmt.Errorf("%smax_gap: must be between 0 and %d, got %d", prefix, maxBitsPerRead, *r.MaxGap))
	}
	if r.Pause != nil && *r.Pause < 0 {
		errs = append(errs, fmt.Errorf("%spause: must be >= 0, got %s", prefix, *r.Pause))
	}
	if r.RemergeAfter != nil && *r.RemergeAfter < 0 {
		errs = append(errs, fmt.Errorf("%sremerge_after: must be >= 0 (0: split reads stay split), got %s", prefix, *r.RemergeAfter))
	}
	return errors.Join(errs...)
}

// blockSpec is a validated explicit read.
type blockSpec struct {
	table Table
	start int // offset applied
	count int
}

func (b blockSpec) String() string {
	if b.count == 1 {
		return fmt.Sprintf("%s %d", b.table, b.start)
	}
	return fmt.Sprintf("%s %d–%d", b.table, b.start, b.start+b.count-1)
}

func (b blockSpec) overlaps(o blockSpec) bool {
	return o.table == b.table && b.start < o.start+o.count && o.start < b.start+b.count
}

// resolveBlock validates one explicit block (bp names it in errors).
func resolveBlock(c BlockConfig, regOffset int, bp string) (blockSpec, []error) {
	b := blockSpec{count: c.Count}
	var errs []error
	b.table, b.start, errs = locate(c.Table, c.Address, c.Register, bp, "address: required (0-based address of the first register, or register: the Modicon reference)")
	b.start += regOffset
	switch {
	case !b.table.valid():
		errs = append(errs, fmt.Errorf("%stable: unknown %q (want holding, input, coil or discrete)", bp, c.Table))
	case b.table.bits() && (b.count < 1 || b.count > maxBitsPerRead):
		errs = append(errs, fmt.Errorf("%scount: must be between 1 and %d bits, got %d", bp, maxBitsPerRead, b.count))
	case !b.table.bits() && (b.count < 1 || b.count > maxRegistersPerRead):
		errs = append(errs, fmt.Errorf("%scount: must be between 1 and %d registers, got %d", bp, maxRegistersPerRead, b.count))
	case b.start < 0 || b.start+b.count-1 > 65535:
		errs = append(errs, fmt.Errorf("%saddress: %d (with register_offset) to %d is outside 0–65535", bp, b.start, b.start+b.count-1))
	}
	return b, errs
}

// resolveBlocks validates explicit blocks (key names them in errors: requests.blocks, or the profile's)
// and checks that every field lies inside one of them.
func resolveBlocks(cfgs []BlockConfig, regOffset int, fields []fieldSpec, prefix, key string) ([]blockSpec, []error) {
	if len(cfgs) == 0 {
		return nil, []error{fmt.Errorf("%s%s: empty; list the reads the device answers (table, address, count), or leave blocks out to let the receiver plan the reads", prefix, key)}
	}
	var errs []error
	blocks := make([]blockSpec, 0, len(cfgs))
	valid := make([]bool, 0, len(cfgs))
	var usable []blockSpec // the blocks without errors
	for i, c := range cfgs {
		bp := fmt.Sprintf("%s%s[%d]: ", prefix, key, i)
		b, berrs := resolveBlock(c, regOffset, bp)
		ok := len(berrs) == 0
		errs = append(errs, berrs...)
		for j, o := range blocks {
			if ok && valid[j] && b.overlaps(o) {
				errs = append(errs, fmt.Errorf("%soverlaps %s[%d] (%s and %s); a register belongs to one block", bp, key, j, b, o))
				ok = false
			}
		}
		blocks = append(blocks, b)
		valid = append(valid, ok)
		if ok {
			usable = append(usable, b)
		}
	}
	if len(usable) == 0 {
		return nil, errs
	}
	errs = append(errs, fieldsOutside(usable, fields, prefix, key)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return blocks, nil
}

// fieldsOutside reports the fields that lie in none of blocks.
func fieldsOutside(blocks []blockSpec, fields []fieldSpec, prefix, key string) []error {
	var errs []error
	for i := range fields {
		f := &fields[i]
		if !f.table.valid() || f.count < 1 || f.address < 0 || f.address+f.count-1 > 65535 {
			continue // reported by buildFields
		}
		if blockOf(blocks, f) < 0 {
			list := make([]string, len(blocks))
			for j, b := range blocks {
				list[j] = b.String()
			}
			errs = append(errs, fmt.Errorf("%sfields[%d] %q: %s is not inside any of %s (%s); with explicit blocks every field must lie inside one",
				prefix, i, f.name, blockSpec{table: f.table, start: f.address, count: f.count}, key, strings.Join(list, ", ")))
		}
	}
	return errs
}

// blockOf returns the index of the block holding the whole of field f, or -1.
func blockOf(blocks []blockSpec, f *fieldSpec) int {
	for i, b := range blocks {
		if b.table == f.table && f.address >= b.start && f.address+f.count <= b.start+b.count {
			return i
		}
	}
	return -1
}
