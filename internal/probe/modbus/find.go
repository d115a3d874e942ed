package modbus

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
)

// FindConfig is what `modbus find` asks.
type FindConfig struct {
	Endpoint probe.Endpoint
	Line     Line
	Unit     int
	Timeout  time.Duration
	Value    float64
	// Tolerance is the largest difference accepted; 0: half a digit of the value as given plus 0.5 %
	// of it (the display rounds, and a live value moves between the display and the read).
	Tolerance float64
	Tables    []Table
	From, To  int // register range, inclusive
	// Name and Unit of the field printed.
	Name, UnitName string
	// Max is the most candidates printed.
	Max int
}

// DefaultTolerance is the tolerance used for a value as the user typed it.
func DefaultTolerance(text string, v float64) float64 {
	digits := 0
	if i := strings.IndexByte(text, '.'); i >= 0 {
		digits = len(text) - i - 1
	}
	return 0.5*math.Pow(10, -float64(digits)) + 0.005*math.Abs(v)
}

// Candidate is one way the registers produce the value.
type Candidate struct {
	Table   Table
	Address int
	Type    string
	Order   string
	Scale   float64
	Value   float64 // decoded and scaled
	rank    int
	err     float64
}

// FindResult is the outcome of a search.
type FindResult struct {
	Candidates []Candidate
	Read       map[Table]int // registers read per table
	Refused    map[Table]int // registers the device refused (exceptions)
	Unanswered []string      // blocks that timed out or came back garbled
	Requests   int
	Elapsed    time.Duration
}

var findTypes = []string{"uint16", "int16", "uint32", "int32", "float32", "float64"}
var findScales = []float64{1, 0.1, 0.01, 0.001}

// Find reads the register range of each table (in reads of up to 125 registers; a read the device
// refuses is split in halves down to single registers, so one gap does not hide its neighbours) and
// tries every type, byte order and scale at every address.
func Find(cfg FindConfig) (*FindResult, error) {
	start := time.Now()
	conn := NewConn(cfg.Endpoint, cfg.Line, cfg.Timeout)
	defer conn.Close()
	if err := conn.Open(); err != nil {
		return nil, err
	}
	tol := cfg.Tolerance
	res := &FindResult{Read: map[Table]int{}, Refused: map[Table]int{}}
	for _, table := range cfg.Tables {
		regs := map[int][2]byte{}
		var read func(addr, count int) error
		read = func(addr, count int) error {
			raw, err := conn.Read(uint8(cfg.Unit), table, addr, count)
			if err == nil {
				for i := 0; i < count; i++ {
					regs[addr+i] = [2]byte{raw[2*i], raw[2*i+1]}
				}
				return nil
			}
			o := Classify(err)
			switch o.Kind {
			case KindException:
				if count == 1 {
					res.Refused[table]++
					return nil
				}
				h := count / 2
				if err := read(addr, h); err != nil {
					return err
				}
				return read(addr+h, count-h)
			case KindTimeout, KindGarbled:
				// Some devices do not answer reads of registers they lack at all. Splitting would cost a
				// timeout per register: the block is reported unread and the search goes on.
				res.Unanswered = append(res.Unanswered, fmt.Sprintf("%s %d-%d (%s)", table, addr, addr+count-1, o.Kind))
				return nil
			case KindConnection:
				if err := conn.Open(); err != nil {
					return err
				}
			}
			return fmt.Errorf("%s %d-%d: %w", table, addr, addr+count-1, o)
		}
		for addr := cfg.From; addr <= cfg.To; addr += 125 {
			if err := read(addr, min(125, cfg.To-addr+1)); err != nil {
				return nil, err
			}
		}
		res.Read[table] = len(regs)
		if len(regs) == 0 && len(res.Unanswered) > 0 && res.Refused[table] == 0 {
			return nil, fmt.Errorf("unit %d does not answer reads of %s %d-%d (%s)", cfg.Unit, table, cfg.From, cfg.To, res.Unanswered[0])
		}
		res.Candidates = append(res.Candidates, match(table, regs, cfg.Value, tol)...)
	}
	slices.SortStableFunc(res.Candidates, func(a, b Candidate) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		switch {
		case a.err < b.err:
			return -1
		case a.err > b.err:
			return 1
		}
		return 0
	})
	res.Requests, res.Elapsed = conn.Requests, time.Since(start)
	return res, nil
}

// match tries every type, order and scale at every address of regs.
func match(table Table, regs map[int][2]byte, want, tol float64) []Candidate {
	addrs := make([]int, 0, len(regs))
	for a := range regs {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	var out []Candidate
	for _, a := range addrs {
		for _, typ := range findTypes {
			n := registers(typ, 0)
			raw := make([]byte, 0, 2*n)
			for i := 0; i < n; i++ {
				r, ok := regs[a+i]
				if !ok {
					break
				}
				raw = append(raw, r[0], r[1])
			}
			if len(raw) < 2*n {
				continue
			}
			orders := Orders
			if n == 1 {
				orders = []string{"ABCD", "BADC"} // word order does not apply to one register
			}
			for _, order := range orders {
				v, _, _ := decodeNumber(typ, order, "", raw)
				if math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				for _, scale := range findScales {
					got := v * scale
					if d := math.Abs(got - want); d <= tol {
						out = append(out, Candidate{Table: table, Address: a, Type: typ, Order: order, Scale: scale, Value: got,
							rank: rank(typ, order, scale), err: d})
					}
				}
			}
		}
	}
	return dedupe(out)
}

// rank orders candidates by how ordinary their encoding is: the common encodings first, so that a
// float32 holding the value beats a coincidence in the low word of a uint32.
func rank(typ, order string, scale float64) int {
	r := map[string]int{"float32": 0, "uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float64": 3}[typ]
	if order != "ABCD" {
		r += 2
		if order == "BADC" || order == "DCBA" {
			r++ // byte-swapped registers are rarer than swapped words
		}
	}
	if scale != 1 {
		r++
		if strings.HasPrefix(typ, "float") {
			r += 2 // a float that needs a decimal scale is rarer than a scaled integer
		}
	}
	return r
}

// dedupe keeps one candidate per register, type and order: the one with the ordinary scale (a uint16 of
// 0 matches 0 at every scale).
func dedupe(c []Candidate) []Candidate {
	type key struct {
		a          int
		typ, order string
	}
	seen := map[key]bool{}
	var out []Candidate
	for _, x := range c {
		k := key{x.Address, x.Type, x.Order}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, x)
	}
	return out
}

// Field renders a candidate as a field entry of a device.
func (c Candidate) Field(name, unit string) string {
	kv := []string{"name", probe.Q(name)}
	if c.Table != Holding {
		kv = append(kv, "table", string(c.Table))
	}
	kv = append(kv, "address", strconv.Itoa(c.Address), "type", c.Type)
	if c.Order != "ABCD" {
		kv = append(kv, "byte_order", c.Order)
	}
	if c.Scale != 1 {
		kv = append(kv, "scale", probe.Num(c.Scale))
	}
	if unit != "" {
		kv = append(kv, "unit", probe.Q(unit))
	}
	return probe.Map(kv...)
}

// WriteFind prints the candidates, best first, as a device entry the modbus receiver loads: the best
// candidate as the device's field, the others as commented alternatives (two encodings of one register
// would overlap, so only one can be active).
func WriteFind(w io.Writer, cfg FindConfig, r *FindResult) {
	var tables []string
	for _, t := range cfg.Tables {
		tables = append(tables, fmt.Sprintf("%s %d-%d (%d read, %d refused)", t, cfg.From, cfg.To, r.Read[t], r.Refused[t]))
	}
	probe.Comment(w, "otelcol-iiot-probe modbus find %s unit %d: value %s ± %s in %s", cfg.Endpoint.Raw, cfg.Unit,
		probe.Num(cfg.Value), probe.Num(roundSig(cfg.Tolerance, 3)), strings.Join(tables, ", "))
	probe.Comment(w, "%d candidates, best first (%d requests in %s)", len(r.Candidates), r.Requests, r.Elapsed.Round(time.Millisecond))
	if len(r.Unanswered) > 0 {
		probe.Comment(w, "not read (no answer): %s", strings.Join(r.Unanswered, ", "))
	}
	if len(r.Candidates) == 0 {
		probe.Comment(w, "no register produces the value: widen --range, add --table, raise --tolerance, or read the display again")
		return
	}
	if len(r.Candidates) > 10 && cfg.Value == math.Trunc(cfg.Value) && math.Abs(cfg.Value) < 10 {
		probe.Comment(w, "a small whole number matches many registers: search for a value with more digits")
	}
	if len(r.Candidates) > 1 {
		a, b := r.Candidates[0], r.Candidates[1]
		if a.Table == b.Table && a.Value == b.Value && a.Address < b.Address+registers(b.Type, 0) && b.Address < a.Address+registers(a.Type, 0) {
			probe.Comment(w, "the first candidates are ambiguous: the same registers read %s as %s at %d and as %s at %d (a neighbouring register",
				probe.Num(roundSig(a.Value, 7)), a.Type, a.Address, b.Type, b.Address)
			probe.Comment(w, "is 0 or 0xFFFF). Check the device's manual, or search again when the value is larger or of the other sign.")
		}
	}
	name := cfg.Name
	if name == "" {
		name = "value"
	}
	shown := r.Candidates
	if cfg.Max > 0 && len(shown) > cfg.Max {
		shown = shown[:cfg.Max]
	}
	fmt.Fprintln(w, "connections:")
	fmt.Fprintf(w, "  - endpoint: %s\n", probe.Q(cfg.Endpoint.Raw))
	writeLine(w, cfg.Endpoint, cfg.Line)
	fmt.Fprintln(w, "    devices:")
	fmt.Fprintf(w, "      - id: %s\n", probe.Q(fmt.Sprintf("unit-%d", cfg.Unit)))
	fmt.Fprintf(w, "        unit_id: %d\n", cfg.Unit)
	fmt.Fprintln(w, "        fields:")
	for i, c := range shown {
		prefix := "          "
		if i > 0 {
			prefix = "        # "
		}
		fmt.Fprintf(w, "%s- %s  # %d. reads %s\n", prefix, c.Field(name, cfg.UnitName), i+1, probe.Num(roundSig(c.Value, 7)))
	}
	if len(shown) < len(r.Candidates) {
		probe.Comment(w, "… %d more (--max)", len(r.Candidates)-len(shown))
	}
}
