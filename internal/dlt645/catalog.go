package dlt645

import (
	"fmt"
	"slices"
	"strconv"
)

// Kind is how a catalogued value becomes a metric.
type Kind uint8

const (
	// Gauge is an instantaneous value (voltage, power, frequency ...).
	Gauge Kind = iota
	// Sum is a monotonic cumulative sum (forward or reverse energy). Combined
	// energies are gauges: a meter may compute them as forward minus reverse,
	// so they can go down.
	Sum
	// ClockPart is part of the meter's clock (date, time); it yields no
	// metric of its own but the clock drift.
	ClockPart
	// RecordTime is the time of a freeze (05…00nn): it yields no metric of its
	// own but stamps the readings of that freeze.
	RecordTime
	// LoadProfile is a load-profile read (06…): records of several values
	// each, read by start time and count (DecodeLoadProfile).
	LoadProfile
)

// String names the kind as in configuration.
func (k Kind) String() string {
	switch k {
	case Gauge:
		return "gauge"
	case Sum:
		return "sum"
	case ClockPart:
		return "clock"
	case RecordTime:
		return "record time"
	case LoadProfile:
		return "load profile"
	}
	return "unknown"
}

// Yields reports whether entries of this kind become readings (clock parts, freeze times and
// load-profile reads do not by themselves).
func (k Kind) Yields() bool { return k == Gauge || k == Sum }

// ParseKind reads "gauge" or "sum" (monotonic cumulative sum).
func ParseKind(s string) (Kind, error) {
	switch s {
	case "gauge":
		return Gauge, nil
	case "sum":
		return Sum, nil
	}
	return 0, fmt.Errorf("kind %q: want gauge or sum (a monotonic counter such as energy)", s)
}

// Attribute is one data point attribute of a catalogued value.
type Attribute struct{ Key, Value string }

// Entry describes one data identifier.
type Entry struct {
	Version Version
	DI      DI
	Name    string
	Format  Format
	Unit    string // UCUM
	// Exp: the reading is the decoded number × 10^Exp, in Unit. The standard's kWh, kW, kvar and kVA
	// registers are read as Wh, W, var and VA (3): one unit per quantity (internal/device/README.md).
	Exp        int
	Metric     string
	Kind       Kind
	Attributes []Attribute

	// Repeat: the value repeats, the total first and then one per tariff the
	// meter has (freeze energies); it is read like a block of Members.
	Repeat bool
	// Stamp tells where the time of the reading comes from (none: the time
	// it is read).
	Stamp Stamp
	// TimeField is the record field holding the time (StampField).
	TimeField int
	// TimeDI is the identifier holding the time (StampIdentifier: a freeze's
	// values are stamped with the freeze time).
	TimeDI DI
	// History is n of "the n-th last settlement day" (StampSettlement, 1-12).
	History int
	// Outputs are the readings of a record that yields several; without
	// them the entry is one reading, of its first field.
	Outputs []Output
}

// Stamp is where the time of a reading comes from.
type Stamp uint8

const (
	// StampNone: the reading is of the moment it is read.
	StampNone Stamp = iota
	// StampField: the record carries its time (demand and when it occurred).
	StampField
	// StampIdentifier: another identifier holds the time (a freeze's time).
	StampIdentifier
	// StampSettlement: the n-th last settlement day, from the meter's
	// settlement days (04000B01-03).
	StampSettlement
)

// OutputValue is how a reading is made of a record's fields.
type OutputValue uint8

const (
	// OutNumber is a number field.
	OutNumber OutputValue = iota
	// OutTime is a time field as Unix seconds.
	OutTime
	// OutDuration is Field2's time minus Field's, in seconds.
	OutDuration
)

// Output is one reading of a record that yields several.
type Output struct {
	Name       string
	Field      int
	Field2     int
	Value      OutputValue
	Metric     string
	Unit       string
	Exp        int // as Entry.Exp
	Kind       Kind
	Attributes []Attribute
}

// Readings lists the readings of an entry: its Outputs, or the entry itself
// as one reading of its first field.
func (e Entry) Readings() []Output {
	if len(e.Outputs) > 0 {
		return e.Outputs
	}
	return []Output{{Name: e.Name, Metric: e.Metric, Unit: e.Unit, Exp: e.Exp, Kind: e.Kind, Attributes: e.Attributes}}
}

// Attr returns the value of an attribute, or "".
func (e Entry) Attr(key string) string {
	for _, a := range e.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// Catalog is a table of data identifiers.
type Catalog struct {
	entries map[catalogKey]Entry
}

type catalogKey struct {
	v  Version
	di DI
}

// Lookup finds the entry of a single (not block) identifier.
func (c *Catalog) Lookup(v Version, di DI) (Entry, bool) {
	if e, ok := c.entries[catalogKey{v, di}]; ok {
		return e, true
	}
	if v == V2007 {
		return c.history(di)
	}
	return Entry{}, false
}

// Entries lists the entries of one edition in identifier order: the current values, not the history
// entries Lookup derives from them (settlement days, settled demand, older freezes).
func (c *Catalog) Entries(v Version) []Entry {
	var out []Entry
	for k, e := range c.entries {
		if k.v == v {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return int(int64(a.DI) - int64(b.DI)) })
	return out
}

// IsBlock reports whether di has the form of a block identifier: DI1 = FF in
// 2007 ("0001FF00": the total and every tariff), a low digit F in 1997 ("901F").
func IsBlock(v Version, di DI) bool {
	if v == V1997 {
		return di&0x000F == 0x000F && di <= 0xFFFF
	}
	if di.Byte(1) == 0xFF && di.Byte(0) != 0xFF && di.Byte(2) != 0xFF {
		return true
	}
	// Variables by a last index (harmonics: 020A01FF, phase A orders 1 to 21).
	return di.Byte(3) == 0x02 && di.Byte(0) == 0xFF && di.Byte(1) != 0xFF && di.Byte(2) != 0xFF
}

// Block returns the members of a block identifier in the order the meter
// sends them. A meter may send fewer (a block of energies holds the total and
// as many tariffs as the meter has).
func (c *Catalog) Block(v Version, di DI) ([]Entry, bool) {
	if e, ok := c.Lookup(v, di); ok && e.Repeat {
		return repeatMembers(e), true
	}
	if !IsBlock(v, di) {
		return nil, false
	}
	var shift uint
	var last DI
	switch {
	case v == V1997:
		shift, last = 0, 0xE
	case di.Byte(1) == 0xFF:
		shift, last = 8, 0xFE
	default:
		shift, last = 0, 0xFE
	}
	mask := DI(0xFF) << shift
	if v == V1997 {
		mask = 0xF
	}
	first := DI(0)
	if v == V2007 && shift == 0 {
		first = 1 // DI0 counts from 1 (harmonic order)
	}
	base := di &^ mask
	var out []Entry
	started := false
	for i := first; i <= last; i++ {
		e, ok := c.Lookup(v, base|i<<shift)
		if !ok {
			if started {
				break
			}
			continue
		}
		started = true
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}

// Part is one value of a reply: the entry that describes it and its bytes.
type Part struct {
	Entry Entry
	Data  []byte
}

// SplitBlock cuts a block reply into its members. All members of a block
// have the same size; the meter may send any number of them from the first.
func SplitBlock(members []Entry, data []byte) ([]Part, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("dlt645: empty block")
	}
	size := members[0].Format.Size
	if size == 0 || len(data) == 0 || len(data)%size != 0 || len(data)/size > len(members) {
		return nil, fmt.Errorf("%w: block of %d-byte values got %d bytes", ErrSize, size, len(data))
	}
	parts := make([]Part, len(data)/size)
	for i := range parts {
		parts[i] = Part{Entry: members[i], Data: data[i*size : (i+1)*size]}
	}
	return parts, nil
}

// repeatMembers are the values of a repeating entry: the total and every tariff.
func repeatMembers(e Entry) []Entry {
	out := make([]Entry, 0, 64)
	for t := 0; t <= 0x3F; t++ {
		m := e
		m.Repeat = false
		m.Name = e.Name + ", " + tariffText(t)
		m.Attributes = append(append([]Attribute(nil), e.Attributes...), Attribute{AttrTariff, tariffName(t)})
		out = append(out, m)
	}
	return out
}

var builtin = buildCatalog()

// Builtin is the catalogue of common identifiers of both editions.
func Builtin() *Catalog { return builtin }

// Metric names of the built-in catalogue: the electrical vocabulary shared by every receiver
// (internal/device/README.md), in its units (V, A, W, var, VA, Wh, varh, Hz).
const (
	MetricActiveEnergy   = "electrical.energy.active"
	MetricReactiveEnergy = "electrical.energy.reactive"
	// Combined energies are computed by the meter from the others according
	// to its combination setting (e.g. forward + reverse, or forward minus
	// reverse), so they may go down: gauges.
	MetricCombinedActiveEnergy   = "electrical.energy.active.combined"
	MetricCombinedReactiveEnergy = "electrical.energy.reactive.combined"
	MetricVoltage                = "electrical.voltage"
	MetricCurrent                = "electrical.current"
	MetricActivePower            = "electrical.power.active"
	MetricReactivePower          = "electrical.power.reactive"
	MetricApparentPower          = "electrical.power.apparent"
	MetricPowerFactor            = "electrical.power_factor"
	MetricPhaseAngle             = "electrical.phase_angle"
	MetricFrequency              = "electrical.frequency"
	MetricActiveDemand           = "electrical.demand.active"
	MetricReactiveDemand         = "electrical.demand.reactive"
	MetricApparentDemand         = "electrical.demand.apparent"
	// The meter's own temperature and batteries are the meter's, not the grid's: protocol names.
	MetricTemperature = "dlt645.temperature"
	MetricBattery     = "dlt645.battery.voltage"
)

// Units of the built-in catalogue. The standard's registers are in kWh, kvarh, kW, kvar and kVA:
// they are read as Wh, varh, W, var and VA (Exp 3), so a quantity has one unit whatever the protocol.
const (
	UnitActiveEnergy   = "Wh"
	UnitReactiveEnergy = "varh"
	UnitActivePower    = "W"
	UnitReactivePower  = "var"
	UnitApparentPower  = "VA"
	// ExpKilo reads a kilo-unit register in its base unit.
	ExpKilo = 3
)

// Attribute values of the built-in catalogue (the vocabulary's): direction of energy and demand
// (the standard's forward is import, reverse is export), and the phase of a whole-meter value.
const (
	DirectionImport = "import"
	DirectionExport = "export"
	PhaseTotal      = "total"
)

// Attribute keys of the built-in catalogue.
const (
	AttrPhase     = "phase"
	AttrTariff    = "tariff"
	AttrDirection = "direction"
	AttrQuadrant  = "quadrant"
	AttrBattery   = "battery"
	// AttrCombination tells combined reactive energy 1 from 2.
	AttrCombination = "combination"
)

// Identifiers of the meter clock.
const (
	DIDate2007     DI = 0x04000101
	DITime2007     DI = 0x04000102
	DIDateTime2007 DI = 0x0400010C
	DIDate1997     DI = 0xC010
	DITime1997     DI = 0xC011
	// DIForwardActive1997 is read by 1997 address discovery.
	DIForwardActive1997 DI = 0x9010
)

func tariffName(t int) string {
	if t == 0 {
		return "total"
	}
	return strconv.Itoa(t)
}

func tariffText(t int) string {
	if t == 0 {
		return "total"
	}
	return "tariff " + strconv.Itoa(t)
}

func energyAttrs(key, val, phase, tariff string) []Attribute {
	var a []Attribute
	if key != "" {
		a = append(a, Attribute{key, val})
	}
	if phase == "" {
		phase = PhaseTotal
	}
	a = append(a, Attribute{AttrPhase, phase})
	return append(a, Attribute{AttrTariff, tariff})
}

func buildCatalog() *Catalog {
	c := &Catalog{entries: map[catalogKey]Entry{}}
	add := func(e Entry) { c.entries[catalogKey{e.Version, e.DI}] = e }
	phases := []string{"A", "B", "C"}

	// --- DL/T 645-2007, appendix A.1: energy, XXXXXX.XX, DI = 00 type tariff 00.
	type energy struct {
		di2       byte
		name      string
		metric    string
		unit      string
		kind      Kind
		signed    bool
		key, val  string
		perPhase  byte // DI2 of phase A (0 = none); B = +0x14, C = +0x28
		phaseName string
	}
	energies := []energy{
		{0x00, "combined active energy", MetricCombinedActiveEnergy, UnitActiveEnergy, Gauge, true, "", "", 0, ""},
		{0x01, "forward active energy", MetricActiveEnergy, UnitActiveEnergy, Sum, false, AttrDirection, DirectionImport, 0x15, ""},
		{0x02, "reverse active energy", MetricActiveEnergy, UnitActiveEnergy, Sum, false, AttrDirection, DirectionExport, 0x16, ""},
		{0x03, "combined reactive energy 1", MetricCombinedReactiveEnergy, UnitReactiveEnergy, Gauge, true, AttrCombination, "1", 0x17, ""},
		{0x04, "combined reactive energy 2", MetricCombinedReactiveEnergy, UnitReactiveEnergy, Gauge, true, AttrCombination, "2", 0x18, ""},
		{0x05, "quadrant I reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, Sum, false, AttrQuadrant, "1", 0x19, ""},
		{0x06, "quadrant II reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, Sum, false, AttrQuadrant, "2", 0x1A, ""},
		{0x07, "quadrant III reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, Sum, false, AttrQuadrant, "3", 0x1B, ""},
		{0x08, "quadrant IV reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, Sum, false, AttrQuadrant, "4", 0x1C, ""},
	}
	for _, en := range energies {
		f := builtinFormat("XXXXXX.XX", en.signed)
		for t := 0; t <= 0x3F; t++ {
			add(Entry{
				Version: V2007, DI: DI(en.di2)<<16 | DI(t)<<8,
				Name:   en.name + ", " + tariffText(t),
				Format: f, Unit: en.unit, Exp: ExpKilo, Metric: en.metric, Kind: en.kind,
				Attributes: energyAttrs(en.key, en.val, "", tariffName(t)),
			})
		}
		if en.perPhase != 0 {
			for i, ph := range phases {
				add(Entry{
					Version: V2007, DI: DI(en.perPhase+byte(i)*0x14) << 16,
					Name:   "phase " + ph + " " + en.name,
					Format: f, Unit: en.unit, Exp: ExpKilo, Metric: en.metric, Kind: en.kind,
					Attributes: energyAttrs(en.key, en.val, ph, "total"),
				})
			}
		}
	}

	// --- DL/T 645-2007, appendix A.3: variables, DI = 02 quantity phase 00.
	type variable struct {
		di2       byte
		name      string
		metric    string
		unit      string
		exp       int
		format    string
		signed    bool
		withTotal bool
	}
	variables := []variable{
		{0x01, "voltage", MetricVoltage, "V", 0, "XXX.X", false, false},
		{0x02, "current", MetricCurrent, "A", 0, "XXX.XXX", true, false},
		{0x03, "active power", MetricActivePower, UnitActivePower, ExpKilo, "XX.XXXX", true, true},
		{0x04, "reactive power", MetricReactivePower, UnitReactivePower, ExpKilo, "XX.XXXX", true, true},
		{0x05, "apparent power", MetricApparentPower, UnitApparentPower, ExpKilo, "XX.XXXX", true, true},
		{0x06, "power factor", MetricPowerFactor, "1", 0, "X.XXX", true, true},
		{0x07, "phase angle", MetricPhaseAngle, "deg", 0, "XXX.X", false, false},
	}
	for _, va := range variables {
		f := builtinFormat(va.format, va.signed)
		if va.withTotal {
			add(Entry{Version: V2007, DI: 0x02<<24 | DI(va.di2)<<16, Name: "total " + va.name,
				Format: f, Unit: va.unit, Exp: va.exp, Metric: va.metric, Kind: Gauge,
				Attributes: []Attribute{{AttrPhase, PhaseTotal}}})
		}
		for i, ph := range phases {
			add(Entry{Version: V2007, DI: 0x02<<24 | DI(va.di2)<<16 | DI(i+1)<<8, Name: "phase " + ph + " " + va.name,
				Format: f, Unit: va.unit, Exp: va.exp, Metric: va.metric, Kind: Gauge,
				Attributes: []Attribute{{AttrPhase, ph}}})
		}
	}
	others := []Entry{
		{DI: 0x02800001, Name: "neutral current", Format: builtinFormat("XXX.XXX", true), Unit: "A", Metric: MetricCurrent, Attributes: []Attribute{{AttrPhase, "N"}}},
		{DI: 0x02800002, Name: "frequency", Format: builtinFormat("XX.XX", false), Unit: "Hz", Metric: MetricFrequency},
		{DI: 0x02800004, Name: "active demand", Format: builtinFormat("XX.XXXX", true), Unit: UnitActivePower, Exp: ExpKilo, Metric: MetricActiveDemand, Attributes: []Attribute{{AttrPhase, PhaseTotal}}},
		{DI: 0x02800005, Name: "reactive demand", Format: builtinFormat("XX.XXXX", true), Unit: UnitReactivePower, Exp: ExpKilo, Metric: MetricReactiveDemand, Attributes: []Attribute{{AttrPhase, PhaseTotal}}},
		{DI: 0x02800006, Name: "apparent demand", Format: builtinFormat("XX.XXXX", true), Unit: UnitApparentPower, Exp: ExpKilo, Metric: MetricApparentDemand, Attributes: []Attribute{{AttrPhase, PhaseTotal}}},
		{DI: 0x02800007, Name: "meter temperature", Format: builtinFormat("XXX.X", true), Unit: "Cel", Metric: MetricTemperature},
		{DI: 0x02800008, Name: "clock battery voltage", Format: builtinFormat("XX.XX", false), Unit: "V", Metric: MetricBattery, Attributes: []Attribute{{AttrBattery, "clock"}}},
		{DI: 0x02800009, Name: "meter-reading battery voltage", Format: builtinFormat("XX.XX", false), Unit: "V", Metric: MetricBattery, Attributes: []Attribute{{AttrBattery, "reading"}}},
		{DI: DIDate2007, Name: "date and weekday", Format: builtinFormat("YYMMDDWW", false), Kind: ClockPart},
		{DI: DITime2007, Name: "time", Format: builtinFormat("hhmmss", false), Kind: ClockPart},
		{DI: DIDateTime2007, Name: "date, weekday and time", Format: builtinFormat("YYMMDDWWhhmmss", false), Kind: ClockPart},
	}
	for _, e := range others {
		e.Version = V2007
		add(e)
	}

	// --- DL/T 645-1997: energy 9xyz (x: kind, y: direction, z: tariff).
	energies97 := []struct {
		base     DI
		name     string
		metric   string
		unit     string
		key, val string
	}{
		{0x9010, "forward active energy", MetricActiveEnergy, UnitActiveEnergy, AttrDirection, DirectionImport},
		{0x9020, "reverse active energy", MetricActiveEnergy, UnitActiveEnergy, AttrDirection, DirectionExport},
		{0x9110, "forward reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, AttrDirection, DirectionImport},
		{0x9120, "reverse reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, AttrDirection, DirectionExport},
		{0x9130, "quadrant I reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, AttrQuadrant, "1"},
		{0x9140, "quadrant IV reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, AttrQuadrant, "4"},
		{0x9150, "quadrant II reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, AttrQuadrant, "2"},
		{0x9160, "quadrant III reactive energy", MetricReactiveEnergy, UnitReactiveEnergy, AttrQuadrant, "3"},
	}
	for _, en := range energies97 {
		for t := 0; t <= 0xE; t++ {
			add(Entry{Version: V1997, DI: en.base + DI(t), Name: en.name + ", " + tariffText(t),
				Format: builtinFormat("XXXXXX.XX", false), Unit: en.unit, Exp: ExpKilo, Metric: en.metric, Kind: Sum,
				Attributes: energyAttrs(en.key, en.val, "", tariffName(t))})
		}
	}
	// Variables B6yz (y: quantity, z: phase, 0 = total).
	variables97 := []struct {
		base      DI
		name      string
		metric    string
		unit      string
		exp       int
		format    string
		withTotal bool
	}{
		{0xB610, "voltage", MetricVoltage, "V", 0, "XXX", false},
		{0xB620, "current", MetricCurrent, "A", 0, "XX.XX", false},
		{0xB630, "active power", MetricActivePower, UnitActivePower, ExpKilo, "XX.XXXX", true},
		{0xB640, "reactive power", MetricReactivePower, UnitReactivePower, ExpKilo, "XX.XX", true},
		{0xB650, "power factor", MetricPowerFactor, "1", 0, "X.XXX", true},
	}
	for _, va := range variables97 {
		f := builtinFormat(va.format, false)
		if va.withTotal {
			add(Entry{Version: V1997, DI: va.base, Name: "total " + va.name, Format: f, Unit: va.unit, Exp: va.exp,
				Metric: va.metric, Attributes: []Attribute{{AttrPhase, PhaseTotal}}})
		}
		for i, ph := range phases {
			add(Entry{Version: V1997, DI: va.base + DI(i+1), Name: "phase " + ph + " " + va.name, Format: f,
				Unit: va.unit, Exp: va.exp, Metric: va.metric, Attributes: []Attribute{{AttrPhase, ph}}})
		}
	}
	addRecords2007(c)

	add(Entry{Version: V1997, DI: DIDate1997, Name: "date and weekday", Format: builtinFormat("YYMMDDWW", false), Kind: ClockPart})
	add(Entry{Version: V1997, DI: DITime1997, Name: "time", Format: builtinFormat("hhmmss", false), Kind: ClockPart})
	return c
}

// WholeAfter reports that a number of format f, read × 10^exp, is always a whole number (XXXXXX.XX kWh
// read as Wh): BCD holds at most 14 digits, so it is exact as an integer data point.
func WholeAfter(f Format, exp int) bool {
	return f.Kind == Number && f.Decimals <= exp
}
