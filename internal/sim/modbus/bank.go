// Package modbussim holds Modbus server-side helpers for tests, benchmarks and the simulator: a
// register bank that serves simonvetter's modbus.NewServer (tcp://, tcp+tls://), an RTU responder of
// our own (RTU framing over TCP or over a serial line), and simulated meters and inverters.
package modbussim

import (
	"errors"
	"slices"
	"sync"

	"github.com/simonvetter/modbus"
)

// Table names a Modbus data table.
type Table int

const (
	Holding Table = iota
	Input
	Coils
	Discrete
)

// Unit is the memory of one unit id.
type Unit struct {
	holding  [65536]uint16
	input    [65536]uint16
	coils    [65536]bool
	discrete [65536]bool
	faults   []fault
	exact    map[Table][]block // tables answering only these reads
}

type block struct{ addr, count int }

type fault struct {
	table       Table
	first, last int
	err         error
}

// Bank is the memory of every unit a server answers for. It is safe for concurrent use.
type Bank struct {
	mu    sync.RWMutex
	units map[uint8]*Unit
	// requests counts reads served, by unit.
	requests map[uint8]int
	// wrongUnit makes the next n answers to a unit come from another unit id (RTU only).
	wrongUnit map[uint8]int
	silent    map[uint8]bool
}

// NewBank returns a bank answering for the given unit ids.
func NewBank(units ...uint8) *Bank {
	b := &Bank{units: map[uint8]*Unit{}, requests: map[uint8]int{}, wrongUnit: map[uint8]int{}, silent: map[uint8]bool{}}
	for _, u := range units {
		b.units[u] = &Unit{}
	}
	return b
}

// AddUnit makes the bank answer for unit u.
func (b *Bank) AddUnit(u uint8) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.units[u] == nil {
		b.units[u] = &Unit{}
	}
}

// SetRegisters writes values from addr on in a register table.
func (b *Bank) SetRegisters(u uint8, t Table, addr int, values ...uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	unit := b.units[u]
	dst := unit.holding[:]
	if t == Input {
		dst = unit.input[:]
	}
	copy(dst[addr:], values)
}

// SetBits writes values from addr on in a bit table.
func (b *Bank) SetBits(u uint8, t Table, addr int, values ...bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	unit := b.units[u]
	dst := unit.coils[:]
	if t == Discrete {
		dst = unit.discrete[:]
	}
	copy(dst[addr:], values)
}

// Registers returns count registers of a table.
func (b *Bank) Registers(u uint8, t Table, addr, count int) []uint16 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	unit := b.units[u]
	src := unit.holding[:]
	if t == Input {
		src = unit.input[:]
	}
	return append([]uint16(nil), src[addr:addr+count]...)
}

// Fail makes every read of unit u that touches first..last of a table answer with err (a modbus.Err…
// exception such as modbus.ErrIllegalDataAddress).
func (b *Bank) Fail(u uint8, t Table, first, last int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.units[u].faults = append(b.units[u].faults, fault{table: t, first: first, last: last, err: err})
}

// ExactBlocks makes unit u answer reads of table t only when they ask for exactly one of the given
// blocks ({address, count}), as some firmware does; any other read of t raises "illegal data address".
// No blocks: t answers any read again.
func (b *Bank) ExactBlocks(u uint8, t Table, blocks ...[2]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	unit := b.units[u]
	if unit.exact == nil {
		unit.exact = map[Table][]block{}
	}
	unit.exact[t] = nil
	for _, x := range blocks {
		unit.exact[t] = append(unit.exact[t], block{addr: x[0], count: x[1]})
	}
}

// ClearFaults removes every fault of unit u.
func (b *Bank) ClearFaults(u uint8) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.units[u].faults = nil
}

// WrongUnit makes the next n RTU answers to unit u carry another unit id.
func (b *Bank) WrongUnit(u uint8, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wrongUnit[u] = n
}

// SetSilent makes the RTU responder ignore requests to unit u (a dead meter on the bus).
func (b *Bank) SetSilent(u uint8, silent bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.silent[u] = silent
}

// Requests returns how many reads unit u was sent.
func (b *Bank) Requests(u uint8) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.requests[u]
}

var errNoUnit = errors.New("no such unit")

// read serves one read; it returns registers (or bits as 0/1) or an exception.
func (b *Bank) read(u uint8, t Table, addr, count int) ([]uint16, []bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	unit, ok := b.units[u]
	if !ok {
		return nil, nil, errNoUnit
	}
	b.requests[u]++
	if addr+count > 65536 {
		return nil, nil, modbus.ErrIllegalDataAddress
	}
	if exact := unit.exact[t]; len(exact) > 0 && !slices.Contains(exact, block{addr: addr, count: count}) {
		return nil, nil, modbus.ErrIllegalDataAddress
	}
	for _, f := range unit.faults {
		if f.table == t && addr <= f.last && addr+count-1 >= f.first {
			return nil, nil, f.err
		}
	}
	switch t {
	case Holding:
		return append([]uint16(nil), unit.holding[addr:addr+count]...), nil, nil
	case Input:
		return append([]uint16(nil), unit.input[addr:addr+count]...), nil, nil
	case Coils:
		return nil, append([]bool(nil), unit.coils[addr:addr+count]...), nil
	default:
		return nil, append([]bool(nil), unit.discrete[addr:addr+count]...), nil
	}
}

func (b *Bank) write(u uint8, t Table, addr int, regs []uint16, bits []bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	unit, ok := b.units[u]
	if !ok {
		return errNoUnit
	}
	if addr+len(regs)+len(bits) > 65536 {
		return modbus.ErrIllegalDataAddress
	}
	if t == Holding {
		copy(unit.holding[addr:], regs)
	} else {
		copy(unit.coils[addr:], bits)
	}
	return nil
}

// Handler returns the bank as a handler for modbus.NewServer. A unit the bank does not hold answers
// with exception 0x0B (gateway target failed to respond), as a gateway would.
func (b *Bank) Handler() modbus.RequestHandler { return handler{b} }

type handler struct{ b *Bank }

func gw(err error) error {
	if errors.Is(err, errNoUnit) {
		return modbus.ErrGWTargetFailedToRespond
	}
	return err
}

func (h handler) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, gw(h.b.write(req.UnitId, Coils, int(req.Addr), nil, req.Args))
	}
	_, bits, err := h.b.read(req.UnitId, Coils, int(req.Addr), int(req.Quantity))
	return bits, gw(err)
}

func (h handler) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	_, bits, err := h.b.read(req.UnitId, Discrete, int(req.Addr), int(req.Quantity))
	return bits, gw(err)
}

func (h handler) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, gw(h.b.write(req.UnitId, Holding, int(req.Addr), req.Args, nil))
	}
	regs, _, err := h.b.read(req.UnitId, Holding, int(req.Addr), int(req.Quantity))
	return regs, gw(err)
}

func (h handler) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	regs, _, err := h.b.read(req.UnitId, Input, int(req.Addr), int(req.Quantity))
	return regs, gw(err)
}
