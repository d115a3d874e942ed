package dlt645sim

import (
	"fmt"
	"sort"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Records: what a meter stores with a time. A test sets them directly (SetRecord, SetRepeat,
// SetSettlementDays, AddProfileRecord), or makes the meter do what a real one does at a settlement
// day (Settle), a freeze (Freeze), or every load-profile interval (SetProfileInterval).

// profileRecord is one stored load-profile record.
type profileRecord struct {
	at     time.Time
	values [6][]float64
}

// SetRecord stores a catalogued record (maximum demand and its time, an event record): its number
// fields from nums and its clock fields from times, each in the order of the record's fields (a
// zero time writes zeros: no record).
func (m *Meter) SetRecord(di dlt645.DI, nums []float64, times []time.Time) error {
	e, ok := dlt645.Builtin().Lookup(m.version, di)
	if !ok {
		return fmt.Errorf("identifier %s is not in the DL/T 645-%s catalogue", di.Format(m.version), m.version)
	}
	fields := e.Format.Fields
	if e.Format.Kind != dlt645.Record {
		fields = []dlt645.Format{e.Format}
	}
	vals := make([]dlt645.Field, len(fields))
	ts := make([]time.Time, len(fields))
	for i, f := range fields {
		switch {
		case f.Kind == dlt645.Number && len(nums) > 0:
			vals[i].Number, nums = nums[0], nums[1:]
		case f.Kind.IsClock() && len(times) > 0:
			ts[i], times = times[0].In(m.location), times[1:]
		}
	}
	b, err := e.Format.EncodeRecord(vals, ts)
	if err != nil {
		return fmt.Errorf("identifier %s: %w", di.Format(m.version), err)
	}
	m.SetRaw(di, b)
	return nil
}

// SetRepeat stores a repeating value (a freeze's energies): the total, then one per tariff.
func (m *Meter) SetRepeat(di dlt645.DI, values ...float64) error {
	e, ok := dlt645.Builtin().Lookup(m.version, di)
	if !ok || !e.Repeat {
		return fmt.Errorf("identifier %s is not a repeating value of the catalogue", di.Format(m.version))
	}
	var b []byte
	for _, v := range values {
		var err error
		if b, err = e.Format.AppendEncode(b, v); err != nil {
			return fmt.Errorf("identifier %s value %v: %w", di.Format(m.version), v, err)
		}
	}
	m.SetRaw(di, b)
	return nil
}

// SetSettlementDays stores the settlement days (04000B01 to 04000B03); days not given are not set
// (9999).
func (m *Meter) SetSettlementDays(days ...dlt645.SettlementDay) {
	for i, di := range []dlt645.DI{dlt645.DISettlementDay1, dlt645.DISettlementDay2, dlt645.DISettlementDay3} {
		var d dlt645.SettlementDay
		if i < len(days) {
			d = days[i]
		}
		m.SetRaw(di, d.Encode())
	}
}

// Settle does what the meter does at a settlement day: every current energy it has (00 type tariff
// 00) and maximum demand (01 type tariff 00) moves to the last settlement day (…01), the older ones
// one further back (the 12th is dropped), and the current maximum demand starts again from none.
func (m *Meter) Settle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for di, b := range m.values {
		if (di.Byte(3) != 0x00 && di.Byte(3) != 0x01) || di.Byte(0) != 0 || di.Byte(1) == 0xFF {
			continue
		}
		if _, ok := dlt645.Builtin().Lookup(m.version, di|1); !ok {
			continue
		}
		for n := 12; n > 1; n-- {
			if old, ok := m.values[di|dlt645.DI(n-1)]; ok {
				m.values[di|dlt645.DI(n)] = old
			}
		}
		m.values[di|1] = append([]byte(nil), b...)
		if di.Byte(3) == 0x01 {
			m.values[di] = make([]byte, len(b))
		}
	}
}

// Freeze does what the meter does at a freeze of kind di2 (0x00 timed, 0x01 instant, 0x04 hourly,
// 0x06 daily) at time at: freeze 1 holds the time, the current energies (with their tariffs), forward
// and reverse maximum demand, and active and reactive power; older freezes move one further back.
func (m *Meter) Freeze(di2 byte, at time.Time) error {
	base := 0x05<<24 | dlt645.DI(di2)<<16
	if _, ok := dlt645.Builtin().Lookup(m.version, base|1); !ok {
		return fmt.Errorf("no freeze %02X in the catalogue", di2)
	}
	keep := 0
	for n := 1; n <= 0xFE; n++ {
		if _, ok := dlt645.Builtin().Lookup(m.version, base|dlt645.DI(n)); !ok {
			break
		}
		keep = n
	}
	t, _ := dlt645.ParseFormat(dlt645.FormatRecordTime, false)
	tb, err := t.EncodeClock(at.In(m.location))
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range []dlt645.DI{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0A, 0x10} {
		for n := keep; n > 1; n-- {
			if old, ok := m.values[base|d<<8|dlt645.DI(n-1)]; ok {
				m.values[base|d<<8|dlt645.DI(n)] = old
			}
		}
	}
	m.values[base|1] = tb
	if e, ok := dlt645.Builtin().Lookup(m.version, base|0x10<<8|1); ok {
		// the variables: active and reactive power, total and phases, if the meter has them all
		var b []byte
		for _, src := range []dlt645.DI{0x02030000, 0x02030100, 0x02030200, 0x02030300, 0x02040000, 0x02040100, 0x02040200, 0x02040300} {
			v, ok := m.values[src]
			if !ok {
				b = nil
				break
			}
			b = append(b, v...)
		}
		if len(b) == e.Format.Size {
			m.values[base|0x10<<8|1] = b
		}
	}
	for d := dlt645.DI(1); d <= 0x0A; d++ {
		e, ok := dlt645.Builtin().Lookup(m.version, base|d<<8|1)
		if !ok {
			continue
		}
		var src dlt645.DI // the current value: an energy (00 d tt 00) or a maximum demand (01 1/2 tt 00)
		if d <= 8 {
			src = d << 16
		} else {
			src = 0x01<<24 | (d-8)<<16
		}
		var b []byte
		last := 0x3F
		if !e.Repeat {
			last = 0
		}
		for tt := 0; tt <= last; tt++ {
			v, ok := m.values[src|dlt645.DI(tt)<<8]
			if !ok {
				break
			}
			b = append(b, v...)
		}
		if len(b) > 0 {
			m.values[base|d<<8|1] = b
		}
	}
	return nil
}

// AddProfileRecord stores a load-profile record: per class (index 0 = class 1) the values in the
// order of dlt645.ProfileClass, or nil for a class not recorded.
func (m *Meter) AddProfileRecord(at time.Time, values [6][]float64) error {
	if _, err := dlt645.EncodeLoadProfile(at.In(m.location), values); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addProfile(profileRecord{at: at, values: values})
	return nil
}

func (m *Meter) addProfile(r profileRecord) {
	i := sort.Search(len(m.profile), func(i int) bool { return !m.profile[i].at.Before(r.at) })
	if i < len(m.profile) && m.profile[i].at.Equal(r.at) {
		m.profile[i] = r
		return
	}
	m.profile = append(m.profile, profileRecord{})
	copy(m.profile[i+1:], m.profile[i:])
	m.profile[i] = r
	if len(m.profile) > m.profileDepth {
		m.profile = m.profile[len(m.profile)-m.profileDepth:]
	}
}

// SetProfileInterval makes the meter record its load profile every interval (0: no more), on the
// interval's boundaries of its own clock, from now on: each record holds the classes of values the
// meter has at that moment. It keeps the last depth records (default 2880).
func (m *Meter) SetProfileInterval(interval time.Duration, depth int, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.profileEvery = interval
	if depth > 0 {
		m.profileDepth = depth
	}
	m.profileNext = now.Add(m.clockOffset).Truncate(interval).Add(interval)
}

// catchUpProfile records the load-profile intervals that have passed by now (the meter's clock).
// Called with m.mu held.
func (m *Meter) catchUpProfile(now time.Time) {
	if m.profileEvery <= 0 {
		return
	}
	mt := now.Add(m.clockOffset)
	for !m.profileNext.After(mt) {
		m.addProfile(profileRecord{at: m.profileNext, values: m.snapshotClasses()})
		m.profileNext = m.profileNext.Add(m.profileEvery)
	}
}

// snapshotClasses is the values of every class the meter has all values of. Called with m.mu held.
func (m *Meter) snapshotClasses() [6][]float64 {
	var out [6][]float64
	for c := 1; c <= 6; c++ {
		var vals []float64
		for _, e := range dlt645.ProfileClass(c) {
			b, ok := m.values[e.DI]
			if !ok {
				vals = nil
				break
			}
			v, err := e.Format.Decode(b)
			if err != nil {
				vals = nil
				break
			}
			vals = append(vals, v)
		}
		out[c-1] = vals
	}
	return out
}

// profileReply answers a load-profile read: count records of the class (0: all), the earliest, from
// a given time on, or the latest. It returns the error word "no requested data" when there is none.
func (m *Meter) profileReply(data []byte, now time.Time) ([]byte, dlt645.ErrorWord) {
	di, count, from, err := dlt645.ParseLoadProfileRequest(data)
	if err != nil || count < 1 {
		return nil, 0x01
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.catchUpProfile(now)
	class := int(di.Byte(2))
	var sel []profileRecord
	switch dlt645.DI(di.Byte(0)) {
	case dlt645.ProfileEarliest:
		sel = m.profile[:min(count, len(m.profile))]
	case dlt645.ProfileLatest:
		sel = m.profile[max(0, len(m.profile)-count):]
	case dlt645.ProfileFrom:
		t, err := from.Time(m.location)
		if err != nil {
			return nil, 0x01
		}
		i := sort.Search(len(m.profile), func(i int) bool { return !m.profile[i].at.Before(t) })
		sel = m.profile[i:min(i+count, len(m.profile))]
	default:
		return nil, 0x01
	}
	var out []byte
	for _, r := range sel {
		vals := r.values
		if class > 0 {
			var only [6][]float64
			for c := range only {
				if c == class-1 {
					only[c] = vals[c]
				}
			}
			vals = only
		}
		b, err := dlt645.EncodeLoadProfile(r.at.In(m.location), vals)
		if err != nil {
			return nil, 0x01
		}
		out = append(out, b...)
	}
	if len(out) == 0 {
		return nil, m.noData()
	}
	return out, 0
}
