// Package dlt645sim is a DL/T 645 meter simulator: meters with a table of
// identifiers, served over TCP (like a transparent serial server) or over a
// serial device (a pty from socat), with follow-up frames, error words, a
// meter clock, and optional line noise and wire-speed pacing. Tests run it
// in-process; cmd/dlt645sim runs it as a program.
package dlt645sim

import (
	"fmt"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Meter is one simulated meter. Its methods are safe for concurrent use.
type Meter struct {
	address dlt645.Address
	version dlt645.Version

	mu          sync.Mutex
	values      map[dlt645.DI][]byte
	errors      map[dlt645.DI]dlt645.ErrorWord
	off         bool
	noBlocks    bool // answer block identifiers (…FF…) with an error word, like meters that read only single ones
	clockOffset time.Duration
	location    *time.Location
	maxData     int
	followNext  map[dlt645.DI]int // 1997 follow-up position
	reads       map[dlt645.DI]int

	// load profile: records oldest first, the interval and next boundary of automatic recording, and
	// the last reply of each load-profile identifier (its follow-up frames carry only the identifier)
	profile      []profileRecord
	profileEvery time.Duration
	profileNext  time.Time
	profileDepth int
	lastProfile  map[dlt645.DI][]byte
}

// NewMeter returns a meter with an empty table, clock on time, local time
// zone, and up to 200 value bytes per frame.
func NewMeter(addr dlt645.Address, v dlt645.Version) *Meter {
	return &Meter{
		address:    addr,
		version:    v,
		values:     map[dlt645.DI][]byte{},
		errors:     map[dlt645.DI]dlt645.ErrorWord{},
		location:   time.Local,
		maxData:    200,
		followNext: map[dlt645.DI]int{},
		reads:      map[dlt645.DI]int{},

		profileDepth: 2880,
		lastProfile:  map[dlt645.DI][]byte{},
	}
}

// Address is the meter's address.
func (m *Meter) Address() dlt645.Address { return m.address }

// Version is the edition the meter speaks.
func (m *Meter) Version() dlt645.Version { return m.version }

// Set stores a number for a catalogued identifier, encoded in its format.
func (m *Meter) Set(di dlt645.DI, value float64) error {
	e, ok := dlt645.Builtin().Lookup(m.version, di)
	if !ok {
		return fmt.Errorf("identifier %s is not in the DL/T 645-%s catalogue: use SetFormatted or SetRaw", di.Format(m.version), m.version)
	}
	return m.SetFormatted(di, e.Format, value)
}

// SetFormatted stores a number encoded in format f.
func (m *Meter) SetFormatted(di dlt645.DI, f dlt645.Format, value float64) error {
	b, err := f.Encode(value)
	if err != nil {
		return fmt.Errorf("identifier %s value %v in format %s: %w", di.Format(m.version), value, f, err)
	}
	m.SetRaw(di, b)
	return nil
}

// SetRaw stores the value bytes (low byte first, before the 0x33 offset).
func (m *Meter) SetRaw(di dlt645.DI, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[di] = append([]byte(nil), value...)
}

// Delete removes an identifier from the table.
func (m *Meter) Delete(di dlt645.DI) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, di)
}

// SetError makes reads of di answer with an error word (0 clears it).
func (m *Meter) SetError(di dlt645.DI, w dlt645.ErrorWord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w == 0 {
		delete(m.errors, di)
		return
	}
	m.errors[di] = w
}

// SetRefuseBlocks makes the meter answer every block identifier (…FF…) with the error word "no
// requested data", as meters do that read only single identifiers; false serves blocks again.
func (m *Meter) SetRefuseBlocks(refuse bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noBlocks = refuse
}

// SetOff switches the meter off (it answers nothing) or on.
func (m *Meter) SetOff(off bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.off = off
}

// SetClock sets how far the meter's clock is ahead of the true time, and the
// time zone it keeps (nil: unchanged).
func (m *Meter) SetClock(offset time.Duration, loc *time.Location) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clockOffset = offset
	if loc != nil {
		m.location = loc
	}
}

// ClockOffset is how far the meter's clock is ahead of the true time.
func (m *Meter) ClockOffset() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clockOffset
}

// SetMaxData sets how many value bytes fit in one frame before the rest goes
// to follow-up frames (1 to 200).
func (m *Meter) SetMaxData(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maxData = min(max(n, 1), 200)
}

// Reads is how many read requests (not follow-ups) for di the meter answered.
func (m *Meter) Reads(di dlt645.DI) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads[di]
}

func (m *Meter) isOff() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.off
}

// noData is the error word for an identifier the meter does not have.
func (m *Meter) noData() dlt645.ErrorWord {
	return 0x02 // 2007: no requested data; 1997: data identifier error
}

// value returns the bytes of di (block identifiers are composed from their
// members), or the error word to answer with.
func (m *Meter) value(di dlt645.DI, now time.Time) ([]byte, dlt645.ErrorWord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.errors[di]; ok {
		return nil, w
	}
	if m.noBlocks && dlt645.IsBlock(m.version, di) {
		return nil, m.noData()
	}
	if b, ok := m.values[di]; ok {
		return b, 0
	}
	if e, ok := dlt645.Builtin().Lookup(m.version, di); ok && e.Kind == dlt645.ClockPart {
		b, err := e.Format.EncodeClock(now.Add(m.clockOffset).In(m.location))
		if err == nil {
			return b, 0
		}
	}
	if members, ok := dlt645.Builtin().Block(m.version, di); ok && members[0].DI != di {
		// (a repeating value is stored whole: its members share its identifier)
		var out []byte
		for _, e := range members {
			if w, ok := m.errors[e.DI]; ok {
				return nil, w
			}
			b, ok := m.values[e.DI]
			if !ok {
				break
			}
			out = append(out, b...)
		}
		if len(out) > 0 {
			return out, 0
		}
	}
	return nil, m.noData()
}

// answer builds the meter's reply to a request addressed to it, or nothing.
func (m *Meter) answer(req dlt645.Frame, now time.Time) (dlt645.Frame, bool) {
	v := m.version
	fn := req.Control.Func()
	switch {
	case v == dlt645.V2007 && fn == dlt645.FuncReadAddress2007:
		return dlt645.AddressResponse(m.address), true

	case v == dlt645.V2007 && fn == dlt645.FuncBroadcastTime, v == dlt645.V1997 && fn == dlt645.FuncBroadcastTime:
		m.setTime(req.Data, now)
		return dlt645.Frame{}, false

	case (v == dlt645.V2007 && fn == dlt645.FuncRead2007) || (v == dlt645.V1997 && fn == dlt645.FuncRead1997):
		di, ok := readDI(v, req.Data)
		if !ok {
			return dlt645.ErrorResponse(m.address, fn, 0x01), true
		}
		var value []byte
		var w dlt645.ErrorWord
		if isProfile(v, di) {
			value, w = m.profileReply(req.Data, now)
		} else {
			value, w = m.value(di, now)
		}
		m.mu.Lock()
		if isProfile(v, di) {
			m.lastProfile[di] = value
		}
		m.reads[di]++
		m.followNext[di] = 1
		max := m.maxData
		m.mu.Unlock()
		if w != 0 {
			return dlt645.ErrorResponse(m.address, fn, w), true
		}
		n := min(len(value), max)
		return dlt645.ReadResponse(v, m.address, di, value[:n], len(value) > n), true

	case (v == dlt645.V2007 && fn == dlt645.FuncReadFollowUp07) || (v == dlt645.V1997 && fn == dlt645.FuncReadFollowUp97):
		di, ok := readDI(v, req.Data)
		if !ok {
			return dlt645.ErrorResponse(m.address, fn, 0x01), true
		}
		value, w := m.value(di, now)
		if isProfile(v, di) {
			m.mu.Lock()
			value, w = m.lastProfile[di], 0
			m.mu.Unlock()
		}
		if w != 0 {
			return dlt645.ErrorResponse(m.address, fn, w), true
		}
		m.mu.Lock()
		seq := m.followNext[di]
		if v == dlt645.V2007 {
			if len(req.Data) < 5 {
				m.mu.Unlock()
				return dlt645.ErrorResponse(m.address, fn, 0x01), true
			}
			seq = int(req.Data[4])
		}
		m.followNext[di] = seq + 1
		max := m.maxData
		m.mu.Unlock()
		from := seq * max
		if seq < 1 || from >= len(value) {
			return dlt645.ErrorResponse(m.address, fn, m.noData()), true
		}
		to := min(from+max, len(value))
		return dlt645.FollowUpResponse(v, m.address, di, value[from:to], byte(seq), to < len(value)), true
	}
	// A function this meter does not know: "other error" / "illegal data".
	return dlt645.ErrorResponse(m.address, fn, 0x01), true
}

// isProfile reports a load-profile identifier, whose reads carry a count (and a start time).
func isProfile(v dlt645.Version, di dlt645.DI) bool {
	e, ok := dlt645.Builtin().Lookup(v, di)
	return ok && e.Kind == dlt645.LoadProfile
}

func readDI(v dlt645.Version, b []byte) (dlt645.DI, bool) {
	n := v.DISize()
	if len(b) < n {
		return 0, false
	}
	var d dlt645.DI
	for i := n - 1; i >= 0; i-- {
		d = d<<8 | dlt645.DI(b[i])
	}
	return d, true
}

// setTime applies a broadcast time sync (ss mm hh DD MM YY).
func (m *Meter) setTime(data []byte, now time.Time) {
	if len(data) != 6 {
		return
	}
	d := make([]int, 6)
	for i, b := range data {
		if b>>4 > 9 || b&0x0F > 9 {
			return
		}
		d[i] = int(b>>4)*10 + int(b&0x0F)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := time.Date(2000+d[5], time.Month(d[4]), d[3], d[2], d[1], d[0], 0, m.location)
	m.clockOffset = t.Sub(now).Round(time.Second)
}
