package dlt645

import (
	"fmt"
	"slices"
	"time"
)

// Settlement days (DL/T 645-2007 04000B01 to 04000B03, DDhh): the moments of each month at which the
// meter settles its energies and demand into history (the last 1 to 12 settlement days, DI0 01-0C).

// Identifiers of the settlement days.
const (
	DISettlementDay1 DI = 0x04000B01
	DISettlementDay2 DI = 0x04000B02
	DISettlementDay3 DI = 0x04000B03
)

// SettlementDay is a day of the month and an hour; Day 0 is not set (the meter answers 9999).
type SettlementDay struct{ Day, Hour int }

// ParseSettlementDay reads a DDhh value (hh first on the wire).
func ParseSettlementDay(b []byte) (SettlementDay, error) {
	if len(b) != 2 {
		return SettlementDay{}, fmt.Errorf("%w: settlement day is 2 bytes, got %d", ErrSize, len(b))
	}
	if b[0] == 0x99 && b[1] == 0x99 {
		return SettlementDay{}, nil
	}
	v, err := builtinFormat("XXXX", false).Decode(b)
	if err != nil {
		return SettlementDay{}, err
	}
	d := SettlementDay{Day: int(v) / 100, Hour: int(v) % 100}
	if d.Day < 1 || d.Day > 28 || d.Hour > 23 {
		return SettlementDay{}, fmt.Errorf("%w: settlement day %02d hour %02d (want day 1-28, hour 0-23)", ErrRange, d.Day, d.Hour)
	}
	return d, nil
}

// Encode writes a settlement day (the simulator's side); the zero value is 9999, not set.
func (d SettlementDay) Encode() []byte {
	if d.Day == 0 {
		return []byte{0x99, 0x99}
	}
	b, _ := builtinFormat("XXXX", false).Encode(float64(d.Day*100 + d.Hour))
	return b
}

// LastSettlement is the n-th last settlement moment (n >= 1) at or before now, in now's location,
// given the meter's settlement days; false when none is set.
func LastSettlement(days []SettlementDay, n int, now time.Time) (time.Time, bool) {
	var set []SettlementDay
	for _, d := range days {
		if d.Day > 0 && !slices.Contains(set, d) {
			set = append(set, d)
		}
	}
	if len(set) == 0 || n < 1 {
		return time.Time{}, false
	}
	var moments []time.Time
	y, m, _ := now.Date()
	for back := 0; len(moments) < n || back <= n/len(set)+1; back++ {
		for _, d := range set {
			t := time.Date(y, m-time.Month(back), d.Day, d.Hour, 0, 0, 0, now.Location())
			if !t.After(now) {
				moments = append(moments, t)
			}
		}
		if back > n+2 {
			break
		}
	}
	slices.SortFunc(moments, func(a, b time.Time) int { return b.Compare(a) })
	if len(moments) < n {
		return time.Time{}, false
	}
	return moments[n-1], true
}
