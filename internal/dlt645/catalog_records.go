package dlt645

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Metric names of records: values the meter stores with their time.
const (
	// MetricMaxDemandActive, MetricMaxDemandReactive and MetricMaxDemandApparent are the maximum
	// demand of a billing period, stamped with the time it occurred (01…). The current period and
	// the last 12 settled ones are points of one series at their own times.
	MetricMaxDemandActive   = "electrical.demand.max.active"
	MetricMaxDemandReactive = "electrical.demand.max.reactive"
	MetricMaxDemandApparent = "electrical.demand.max.apparent"
	// SuffixSettled is added to an energy's metric name for its value at a settlement day (00…01 to
	// 00…0C), stamped with that day's settlement time.
	SuffixSettled = ".settled"
	// SuffixFrozen is added to an energy's (or maximum demand's) metric name for its value in a
	// freeze (05…), stamped with the freeze time; attribute freeze tells which.
	SuffixFrozen = ".frozen"
	// MetricHarmonicVoltage and MetricHarmonicCurrent are the harmonic content by phase and order
	// (020A…, 020B…), in percent of the fundamental.
	MetricHarmonicVoltage = "electrical.voltage.harmonic"
	MetricHarmonicCurrent = "electrical.current.harmonic"
	// MetricEventCount counts events (power-down, over-voltage, cover-open, programming) since the
	// meter's events were last cleared: a monotonic sum.
	MetricEventCount = "dlt645.event.count"
	// MetricEventDuration is the accumulated duration of an event by phase (over-voltage), in minutes.
	MetricEventDuration = "dlt645.event.duration"
	// MetricEventLastTime is when the last event of a kind began, as Unix seconds (a gauge: compare
	// it with time()).
	MetricEventLastTime = "dlt645.event.last.time"
	// MetricEventLastDuration is how long the last event of a kind lasted.
	MetricEventLastDuration = "dlt645.event.last.duration"
)

// Attribute keys of records.
const (
	// AttrOrder is the harmonic order, 1 to 21.
	AttrOrder = "order"
	// AttrFreeze is the kind of freeze: timed, instant, hourly, daily.
	AttrFreeze = "freeze"
	// AttrEvent is the kind of event: power_down, over_voltage, cover_open, terminal_cover_open,
	// programming.
	AttrEvent = "event"
)

// Formats of records.
const (
	FormatDemandRecord = "XX.XXXX,YYMMDDhhmm"
	FormatRecordTime   = "YYMMDDhhmm"
)

// Freezes of DL/T 645-2007 (DI2 of 05…) with how many of each the meter keeps (DI0 1..n).
var freezes = []struct {
	di2  byte
	name string
	n    int
	full bool // energies of every kind with tariffs, and demand; else forward and reverse active totals
}{
	{0x00, "timed", 12, true},
	{0x01, "instant", 3, true},
	{0x04, "hourly", 254, false},
	{0x06, "daily", 62, true},
}

// addRecords2007 adds the records of DL/T 645-2007 appendix A: maximum demand and its time, freezes,
// load profile, harmonics and events (settlement-day energies and older demand and freezes are
// derived by history).
func addRecords2007(c *Catalog) {
	add := func(e Entry) {
		e.Version = V2007
		c.entries[catalogKey{V2007, e.DI}] = e
	}
	addDemand(add)
	addFreezes(c, add)
	addHarmonics(add)
	addEvents(add)
	addLoadProfile(add)
}

// History entries (an energy at the n-th last settlement day, the maximum demand of the n-th last
// settled period, the n-th last freeze) are derived from the current (or latest) one when looked up,
// not stored: there are some 17000 of them.

// settled is energy e (DI0 00) at the n-th last settlement day.
func settled(e Entry, n int) Entry {
	h := e
	h.DI = e.DI | DI(n)
	h.Name = e.Name + ", at the " + nthLast(n) + " settlement day"
	h.Metric = e.Metric + SuffixSettled
	h.Kind = Gauge // a register at a past moment: each point is stamped, none is a running total
	h.Stamp, h.History = StampSettlement, n
	return h
}

// history derives the entry of a history identifier (see above).
func (c *Catalog) history(di DI) (Entry, bool) {
	n := int(di.Byte(0))
	switch di.Byte(3) {
	case 0x00:
		base, ok := c.entries[catalogKey{V2007, di &^ 0xFF}]
		if !ok || n < 1 || n > 12 || base.Stamp != StampNone {
			return Entry{}, false
		}
		return settled(base, n), true
	case 0x01:
		base, ok := c.entries[catalogKey{V2007, di &^ 0xFF}]
		if !ok || n < 1 || n > 12 {
			return Entry{}, false
		}
		base.DI = di
		base.Name += ", of the " + nthLast(n) + " settlement period"
		return base, true
	case 0x05:
		base, ok := c.entries[catalogKey{V2007, di&^0xFF | 1}]
		if !ok || n < 2 || n > freezeDepth(di.Byte(2)) {
			return Entry{}, false
		}
		base.DI = di
		base.Name = strings.Replace(base.Name, " freeze 1 ", " freeze "+strconv.Itoa(n)+" ", 1)
		if base.Stamp == StampIdentifier {
			base.TimeDI = base.TimeDI&^0xFF | DI(n)
		}
		return base, true
	}
	return Entry{}, false
}

func freezeDepth(di2 byte) int {
	for _, fz := range freezes {
		if fz.di2 == di2 {
			return fz.n
		}
	}
	return 0
}

type demandKind struct {
	di2      byte
	name     string
	metric   string
	unit     string
	key, val string
}

// demandAttrs are a maximum demand's attributes: its direction, quadrant or combination, the whole
// meter's phase, and the tariff.
func demandAttrs(d demandKind, tariff string) []Attribute {
	return []Attribute{{d.key, d.val}, {AttrPhase, PhaseTotal}, {AttrTariff, tariff}}
}

var demandKinds = []demandKind{
	{0x01, "forward active maximum demand", MetricMaxDemandActive, UnitActivePower, AttrDirection, DirectionImport},
	{0x02, "reverse active maximum demand", MetricMaxDemandActive, UnitActivePower, AttrDirection, DirectionExport},
	{0x03, "combined reactive 1 maximum demand", MetricMaxDemandReactive, UnitReactivePower, AttrCombination, "1"},
	{0x04, "combined reactive 2 maximum demand", MetricMaxDemandReactive, UnitReactivePower, AttrCombination, "2"},
	{0x05, "quadrant I maximum demand", MetricMaxDemandReactive, UnitReactivePower, AttrQuadrant, "1"},
	{0x06, "quadrant II maximum demand", MetricMaxDemandReactive, UnitReactivePower, AttrQuadrant, "2"},
	{0x07, "quadrant III maximum demand", MetricMaxDemandReactive, UnitReactivePower, AttrQuadrant, "3"},
	{0x08, "quadrant IV maximum demand", MetricMaxDemandReactive, UnitReactivePower, AttrQuadrant, "4"},
	{0x09, "forward apparent maximum demand", MetricMaxDemandApparent, UnitApparentPower, AttrDirection, DirectionImport},
	{0x0A, "reverse apparent maximum demand", MetricMaxDemandApparent, UnitApparentPower, AttrDirection, DirectionExport},
}

// addDemand: 01 type tariff period, XX.XXXX + YYMMDDhhmm, stamped with when it occurred. The
// current period (00) and the settled ones (01-0C, derived) are points of one series.
func addDemand(add func(Entry)) {
	f := builtinFormat(FormatDemandRecord, false)
	for _, d := range demandKinds {
		for t := 0; t <= 0x3F; t++ {
			add(Entry{
				DI: 0x01<<24 | DI(d.di2)<<16 | DI(t)<<8, Name: d.name + ", " + tariffText(t),
				Format: f, Unit: d.unit, Exp: ExpKilo, Metric: d.metric, Kind: Gauge,
				Attributes: demandAttrs(d, tariffName(t)),
				Stamp:      StampField, TimeField: 1,
			})
		}
	}
}

// addFreezes: 05 freeze data n. DI1 00 is the freeze time; 01-08 the energies (total and tariffs),
// 09-0A the forward and reverse active maximum demand (total and tariffs, each with its time): all
// stamped with the freeze time. Hourly freezes hold the forward and reverse active totals only.
func addFreezes(c *Catalog, add func(Entry)) {
	energy := map[byte]Entry{}
	for d := byte(1); d <= 8; d++ {
		e, _ := c.Lookup(V2007, DI(d)<<16)
		energy[d] = e
	}
	for _, fz := range freezes {
		const n = 1 // freeze 1, the latest; the older ones are derived (history)
		timeDI := 0x05<<24 | DI(fz.di2)<<16 | DI(n)
		suffix := fmt.Sprintf(", %s freeze %d (1: the latest)", fz.name, n)
		add(Entry{DI: timeDI, Name: "freeze time" + suffix, Format: builtinFormat(FormatRecordTime, false), Kind: RecordTime})
		for d := byte(1); d <= 8; d++ {
			if !fz.full && d > 2 {
				break
			}
			base := energy[d]
			attrs := append([]Attribute{{AttrFreeze, fz.name}}, withoutKey(base.Attributes, AttrTariff)...)
			e := Entry{
				DI: timeDI | DI(d)<<8, Name: energyName(base.Name) + suffix,
				Format: base.Format, Unit: base.Unit, Exp: base.Exp, Metric: base.Metric + SuffixFrozen, Kind: Gauge,
				Attributes: attrs, Stamp: StampIdentifier, TimeDI: timeDI, Repeat: fz.full,
			}
			if !fz.full {
				e.Attributes = append(e.Attributes, Attribute{AttrTariff, "total"})
			}
			add(e)
		}
		if !fz.full {
			continue
		}
		for i, d := range demandKinds[:2] {
			add(Entry{
				DI: timeDI | DI(9+i)<<8, Name: d.name + suffix,
				Format: builtinFormat(FormatDemandRecord, false), Unit: d.unit, Exp: ExpKilo, Metric: d.metric + SuffixFrozen, Kind: Gauge,
				Attributes: []Attribute{{AttrFreeze, fz.name}, {d.key, d.val}, {AttrPhase, PhaseTotal}},
				Stamp:      StampIdentifier, TimeDI: timeDI, Repeat: true,
			})
		}
		add(frozenPower(fz.name, suffix, timeDI))
	}
}

// frozenPower is a freeze's variables (DI1 10): active power total, A, B, C and reactive power total,
// A, B, C, XX.XXXX each, several values stamped with one freeze time.
func frozenPower(freeze, suffix string, timeDI DI) Entry {
	var outs []Output
	phases := []string{"total", "A", "B", "C"}
	for q, k := range []struct{ name, metric, unit string }{
		{"active power", MetricActivePower + SuffixFrozen, UnitActivePower}, {"reactive power", MetricReactivePower + SuffixFrozen, UnitReactivePower},
	} {
		for i, ph := range phases {
			outs = append(outs, Output{Name: k.name + " " + ph + suffix, Field: 4*q + i, Metric: k.metric, Unit: k.unit, Exp: ExpKilo, Kind: Gauge,
				Attributes: []Attribute{{AttrFreeze, freeze}, {AttrPhase, ph}}})
		}
	}
	return Entry{DI: timeDI | 0x10<<8, Name: "active and reactive power" + suffix,
		Format: builtinFormat("XX.XXXX,XX.XXXX,XX.XXXX,XX.XXXX,XX.XXXX,XX.XXXX,XX.XXXX,XX.XXXX", true),
		Unit:   UnitActivePower, Exp: ExpKilo, Metric: outs[0].Metric, Kind: Gauge, Attributes: outs[0].Attributes, Outputs: outs,
		Stamp: StampIdentifier, TimeDI: timeDI}
}

// addHarmonics: 020A phase order (voltage), 020B phase order (current), XX.XX percent, orders 1-21.
func addHarmonics(add func(Entry)) {
	for _, h := range []struct {
		di2    byte
		name   string
		metric string
	}{{0x0A, "voltage", MetricHarmonicVoltage}, {0x0B, "current", MetricHarmonicCurrent}} {
		for p, ph := range []string{"A", "B", "C"} {
			for o := 1; o <= 21; o++ {
				add(Entry{
					DI:   0x02<<24 | DI(h.di2)<<16 | DI(p+1)<<8 | DI(o),
					Name: fmt.Sprintf("phase %s %s harmonic content, order %d", ph, h.name, o), Format: builtinFormat("XX.XX", false),
					Unit: "%", Metric: h.metric, Kind: Gauge,
					Attributes: []Attribute{{AttrPhase, ph}, {AttrOrder, strconv.Itoa(o)}},
				})
			}
		}
	}
}

// addEvents: counts (XXXXXX) and last records of power-down (0311), over-voltage (0303),
// programming (033000), cover-open (03300D) and terminal-cover-open (03300E). The last record's
// start becomes a gauge of Unix seconds, its length another: an event that happened is news, not a
// point back in time.
func addEvents(add func(Entry)) {
	count := func(di DI, name, event string) {
		add(Entry{DI: di, Name: name, Format: builtinFormat("XXXXXX", false), Unit: "{event}", Metric: MetricEventCount, Kind: Sum,
			Attributes: []Attribute{{AttrEvent, event}}})
	}
	last := func(di DI, name, event, format string, withEnd bool) {
		attrs := []Attribute{{AttrEvent, event}}
		outs := []Output{{Name: name + ": start", Field: 0, Value: OutTime, Metric: MetricEventLastTime, Unit: "s", Kind: Gauge, Attributes: attrs}}
		if withEnd {
			outs = append(outs, Output{Name: name + ": duration", Field: 0, Field2: 1, Value: OutDuration, Metric: MetricEventLastDuration, Unit: "s", Kind: Gauge, Attributes: attrs})
		}
		add(Entry{DI: di, Name: name, Format: builtinFormat(format, false), Unit: "s", Metric: MetricEventLastTime, Kind: Gauge,
			Attributes: attrs, Outputs: outs})
	}
	count(0x03110000, "power-down count", "power_down")
	last(0x03110001, "last power-down", "power_down", "YYMMDDhhmmss,YYMMDDhhmmss", true)
	count(0x03300000, "programming count", "programming")
	// start, operator code, the first 10 identifiers programmed
	last(0x03300001, "last programming", "programming", "YYMMDDhhmmss,NNNNNNNN,*40", false)
	count(0x03300D00, "meter cover opening count", "cover_open")
	// start, end, then 12 energies before and after
	last(0x03300D01, "last meter cover opening", "cover_open", "YYMMDDhhmmss,YYMMDDhhmmss,*48", true)
	count(0x03300E00, "terminal cover opening count", "terminal_cover_open")
	last(0x03300E01, "last terminal cover opening", "terminal_cover_open", "YYMMDDhhmmss,YYMMDDhhmmss,*48", true)

	// Over-voltage: per phase the count and the accumulated minutes.
	var outs []Output
	for i, ph := range []string{"A", "B", "C"} {
		attrs := []Attribute{{AttrEvent, "over_voltage"}, {AttrPhase, ph}}
		outs = append(outs,
			Output{Name: "phase " + ph + " over-voltage count", Field: 2 * i, Metric: MetricEventCount, Unit: "{event}", Kind: Sum, Attributes: attrs},
			Output{Name: "phase " + ph + " over-voltage duration", Field: 2*i + 1, Metric: MetricEventDuration, Unit: "min", Kind: Sum, Attributes: attrs})
	}
	add(Entry{DI: 0x03030000, Name: "over-voltage counts and durations, phases A, B, C",
		Format: builtinFormat("XXXXXX,XXXXXX,XXXXXX,XXXXXX,XXXXXX,XXXXXX", false), Unit: "{event}", Metric: MetricEventCount, Kind: Sum,
		Attributes: outs[0].Attributes, Outputs: outs})
	// The last over-voltage of each phase: its start; the rest of the record varies with the meter.
	for i, ph := range []string{"A", "B", "C"} {
		attrs := []Attribute{{AttrEvent, "over_voltage"}, {AttrPhase, ph}}
		name := "last phase " + ph + " over-voltage"
		add(Entry{DI: 0x03030001 | DI(i+1)<<8, Name: name, Format: builtinFormat("YYMMDDhhmmss,*", false), Unit: "s",
			Metric: MetricEventLastTime, Kind: Gauge, Attributes: attrs,
			Outputs: []Output{{Name: name + ": start", Value: OutTime, Metric: MetricEventLastTime, Unit: "s", Kind: Gauge, Attributes: attrs}}})
	}
}

// addLoadProfile: 06 class 00 mode: class 00 is every class, 01-06 one; mode 00 the earliest
// records, 01 records from a given time, 02 the latest. See DecodeLoadProfile.
func addLoadProfile(add func(Entry)) {
	for class := 0; class <= 6; class++ {
		what := "every class"
		if class > 0 {
			what = "class " + strconv.Itoa(class) + " (" + profileClasses[class-1].name + ")"
		}
		for mode, m := range []string{"earliest records", "records from a given time", "latest record"} {
			add(Entry{DI: 0x06<<24 | DI(class)<<16 | DI(mode), Name: "load profile, " + what + ", " + m, Kind: LoadProfile,
				Format: builtinFormat("*", false)})
		}
	}
}

func withoutKey(attrs []Attribute, key string) []Attribute {
	return slices.DeleteFunc(slices.Clone(attrs), func(a Attribute) bool { return a.Key == key })
}

// energyName is an energy entry's name without its tariff.
func energyName(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == ',' {
			return name[:i]
		}
	}
	return name
}

// nthLast is "last", "2nd-last", "3rd-last" ...
func nthLast(n int) string {
	if n == 1 {
		return "last"
	}
	return ordinal(n) + "-last"
}

func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return strconv.Itoa(n) + "th"
	case n%10 == 1:
		return strconv.Itoa(n) + "st"
	case n%10 == 2:
		return strconv.Itoa(n) + "nd"
	case n%10 == 3:
		return strconv.Itoa(n) + "rd"
	}
	return strconv.Itoa(n) + "th"
}
