package dlt645receiver

import (
	"fmt"
	"sort"
	"strings"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// IdentifierConfig is one data identifier to read, with optional overrides of its catalogue entry.
// Identifiers outside the catalogue need format and metric.
type IdentifierConfig struct {
	// DI is the identifier in the standard's notation: 8 hex digits for 2007, 4 for 1997.
	DI string `mapstructure:"di"`
	// Metric, Unit and Description override the catalogue's (required for unknown identifiers).
	Metric      string `mapstructure:"metric"`
	Unit        string `mapstructure:"unit"`
	Description string `mapstructure:"description"`
	// Format is the data format, e.g. XXXXXX.XX, XXX.X, X.XXX (required for unknown identifiers).
	Format string `mapstructure:"format"`
	// Signed says the top bit of the most significant byte is a sign.
	Signed *bool `mapstructure:"signed"`
	// Kind is gauge or sum (a monotonic counter such as an energy register).
	Kind device.MetricKind `mapstructure:"kind"`
	// Scale multiplies the value (e.g. a CT ratio for meters that report secondary values).
	Scale *float64 `mapstructure:"scale"`
	// Attributes are added to (or override) the catalogue's data point attributes.
	Attributes map[string]string `mapstructure:"attributes"`
	// Report sets the identifier's report by exception (deadband, max_silence …) over its meter's.
	Report device.ReportConfig `mapstructure:"report"`
}

// UnmarshalText lets an identifier be given as a plain string.
func (c *IdentifierConfig) UnmarshalText(b []byte) error {
	*c = IdentifierConfig{DI: string(b)}
	return nil
}

// readSpec is one request: a single identifier or a block.
type readSpec struct {
	di    dlt645.DI
	block bool
	// repeat: the block is one identifier whose value repeats (a freeze's total and tariffs), not a
	// block identifier a meter could refuse.
	repeat bool
	parts  []partSpec
}

// partSpec is one reading: a value of a reply (member of a block, or the one value), and which
// reading of it (a record may yield several).
type partSpec struct {
	entry       dlt645.Entry
	out         dlt645.Output
	member      int
	scale       float64
	description string
	report      device.ReportConfig // the identifier's own keys; the meter's resolve the rest
}

// clockSpec is how the meter's clock is read: date and time, or one date-time identifier.
type clockSpec struct {
	date, time, dateTime dlt645.DI
	enabled              bool
}

// identItem is one identifier to read, parsed; index is its place in the configured list.
type identItem struct {
	index int
	di    dlt645.DI
	ic    IdentifierConfig
}

// overrides are an identifier's keys that change its catalogue entries.
type overrides struct {
	format *dlt645.Format
	kind   *dlt645.Kind
	scale  float64
}

// readBuilder turns the identifiers of one meter (or profile) into requests, checking that no two
// readings write the same series and that a metric keeps one unit and kind.
type readBuilder struct {
	version dlt645.Version
	prefix  string
	cat     *dlt645.Catalog
	series  map[string]string // metric{attrs} → the identifier reading it
	shapes  map[string]metricShape
	reads   []readSpec
	clock   clockSpec
	errs    []error
}

type metricShape struct {
	unit string
	kind dlt645.Kind
}

// buildReads turns identifier configs into requests. The meter's clock identifiers are set aside
// for the drift; exclude drops identifiers.
func buildReads(v dlt645.Version, idents []IdentifierConfig, exclude map[dlt645.DI]bool, prefix string) ([]readSpec, clockSpec, []error) {
	b := &readBuilder{version: v, prefix: prefix, cat: dlt645.Builtin(), series: map[string]string{}, shapes: map[string]metricShape{}}
	for _, it := range b.items(idents, exclude) {
		b.add(it)
	}
	b.resolveClock()
	return b.reads, b.clock, b.errs
}

// items parses the identifiers, dropping excluded ones. A later entry for the same identifier (the
// meter's own) replaces an earlier one (the profile's) in its place.
func (b *readBuilder) items(idents []IdentifierConfig, exclude map[dlt645.DI]bool) []identItem {
	var items []identItem
	pos := map[dlt645.DI]int{}
	for i, ic := range idents {
		di, err := dlt645.ParseDI(b.version, ic.DI)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%sidentifiers[%d]: %w", b.prefix, i, err))
			continue
		}
		if exclude[di] {
			continue
		}
		if j, ok := pos[di]; ok {
			items[j] = identItem{i, di, ic}
			continue
		}
		pos[di] = len(items)
		items = append(items, identItem{i, di, ic})
	}
	return items
}

// add resolves one identifier into a request, or into the meter's clock.
func (b *readBuilder) add(it identItem) {
	v, di, ic := b.version, it.di, it.ic
	p := fmt.Sprintf("%sidentifiers[%d] %s: ", b.prefix, it.index, di.Format(v))
	entries, block, ok := b.entries(di, ic, p)
	if !ok {
		return
	}
	switch entries[0].Kind {
	case dlt645.ClockPart:
		b.addClock(entries[0], di, ic, p)
		return
	case dlt645.RecordTime:
		b.errs = append(b.errs, fmt.Errorf("%sa freeze time stamps the values of its freeze: list those (e.g. %s)", p, (di|0x0100).Format(b.version)))
		return
	case dlt645.LoadProfile:
		b.errs = append(b.errs, fmt.Errorf("%sload-profile records are not read as identifiers: set the meter's load_profile (class, interval, storage) to backfill them", p))
		return
	}
	over, errs := parseOverrides(ic, entries, block, p)
	if err := ic.Report.Validate(p + "report."); err != nil {
		errs = append(errs, err)
	}
	if len(entries[0].Outputs) > 1 && (ic.Metric != "" || ic.Unit != "" || ic.Format != "" || ic.Kind != "") {
		errs = append(errs, fmt.Errorf("%sa record of %d readings takes no metric, unit, format or kind", p, len(entries[0].Outputs)))
	}
	if len(errs) > 0 {
		b.errs = append(b.errs, errs...)
		return
	}
	r := readSpec{di: di, block: block, repeat: block && !dlt645.IsBlock(b.version, di)}
	for i, e := range entries {
		e = over.apply(e, ic)
		for _, o := range e.Readings() {
			if !b.claim(e, o, di, p) {
				continue
			}
			r.parts = append(r.parts, partSpec{entry: e, out: o, member: i, scale: over.scale, description: ic.Description, report: ic.Report})
		}
	}
	b.reads = append(b.reads, r)
}

// entries looks di up in the catalogue: one value, or the members of a block. An identifier outside
// the catalogue is read as one value when the config gives its format and metric.
func (b *readBuilder) entries(di dlt645.DI, ic IdentifierConfig, p string) (entries []dlt645.Entry, block, ok bool) {
	if e, ok := b.cat.Lookup(b.version, di); ok && !e.Repeat {
		return []dlt645.Entry{e}, false, true
	}
	if members, ok := b.cat.Block(b.version, di); ok {
		return members, true, true
	}
	if ic.Format == "" || ic.Metric == "" {
		b.errs = append(b.errs, fmt.Errorf("%snot in the DL/T 645-%s catalogue: give format (e.g. XXX.XX) and metric (and unit, kind)", p, b.version))
		return nil, false, false
	}
	return []dlt645.Entry{{Version: b.version, DI: di, Name: "identifier " + di.Format(b.version), Kind: dlt645.Gauge}}, false, true
}

// addClock sets a clock identifier aside for the clock drift.
func (b *readBuilder) addClock(e dlt645.Entry, di dlt645.DI, ic IdentifierConfig, p string) {
	if ic.Metric != "" || ic.Format != "" || ic.Scale != nil || ic.Kind != "" || len(ic.Attributes) > 0 || ic.Report != (device.ReportConfig{}) {
		b.errs = append(b.errs, fmt.Errorf("%sthe meter clock yields the dlt645.meter.clock.drift metric and takes no overrides (its report is the meter's)", p))
		return
	}
	switch e.Format.Kind {
	case dlt645.Date:
		b.clock.date = di
	case dlt645.TimeOfDay:
		b.clock.time = di
	case dlt645.DateTime:
		b.clock.dateTime = di
	}
}

// parseOverrides checks the keys that change an identifier's entries.
func parseOverrides(ic IdentifierConfig, entries []dlt645.Entry, block bool, p string) (overrides, []error) {
	var errs []error
	o := overrides{scale: device.Layer(1.0, ic.Scale)}
	if ic.Format != "" {
		signed := device.Layer(!block && len(entries) == 1 && entries[0].Format.Signed, ic.Signed)
		f, err := dlt645.ParseFormat(ic.Format, signed)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%sformat: %w", p, err))
		case f.Kind != dlt645.Number && f.Kind != dlt645.Record:
			errs = append(errs, fmt.Errorf("%sformat: %q is a clock format; readings need a number format such as XXX.XX, or a record such as XX.XXXX,YYMMDDhhmm", p, ic.Format))
		case f.Kind == dlt645.Record && recordValue(f) < 0:
			errs = append(errs, fmt.Errorf("%sformat: record %q has no number field to read", p, ic.Format))
		default:
			o.format = &f
		}
	}
	if err := ic.Kind.Validate(p); err != nil {
		errs = append(errs, err)
	} else if ic.Kind != "" {
		k := dlt645.Gauge
		if ic.Kind == device.KindSum {
			k = dlt645.Sum
		}
		o.kind = &k
	}
	if o.scale == 0 {
		errs = append(errs, fmt.Errorf("%sscale: must not be 0", p))
	}
	if ic.Metric != "" && !validMetricName(ic.Metric) {
		errs = append(errs, fmt.Errorf("%smetric: %q is not a metric name (letters, digits, '.', '_', '-', '/'; starting with a letter)", p, ic.Metric))
	}
	return o, errs
}

// apply returns the catalogue entry e with the identifier's overrides.
func (o overrides) apply(e dlt645.Entry, ic IdentifierConfig) dlt645.Entry {
	if o.format != nil {
		e.Format = *o.format
		e.Outputs, e.Stamp = nil, dlt645.StampNone
		if e.Format.Kind == dlt645.Record {
			// A record declared in the config: its first number is the reading, stamped with its first
			// date and time field.
			e.Outputs = []dlt645.Output{{Name: e.Name, Field: recordValue(e.Format)}}
			if tf := recordTime(e.Format); tf >= 0 {
				e.Stamp, e.TimeField = dlt645.StampField, tf
			}
		}
	} else if ic.Signed != nil {
		e.Format.Signed = *ic.Signed
	}
	if o.kind != nil {
		e.Kind = *o.kind
	}
	e.Metric = device.LayerSet(e.Metric, ic.Metric)
	if ic.Unit != "" && ic.Unit != e.Unit {
		// Another unit than the catalogue's: the value as the meter sends it (times scale).
		e.Exp = 0
	}
	e.Unit = device.LayerSet("1", e.Unit, ic.Unit)
	if len(ic.Attributes) > 0 {
		e.Attributes = mergeAttrs(e.Attributes, ic.Attributes)
	}
	if len(e.Outputs) == 1 {
		// the one reading of a record takes the entry's (overridden) metric, unit, kind and attributes
		o := e.Outputs[0]
		o.Metric, o.Unit, o.Exp, o.Kind, o.Attributes = e.Metric, e.Unit, e.Exp, e.Kind, e.Attributes
		e.Outputs = []dlt645.Output{o}
	}
	return e
}

// recordValue is the first number field of a record, or -1.
func recordValue(f dlt645.Format) int {
	for i, ff := range f.Fields {
		if ff.Kind == dlt645.Number {
			return i
		}
	}
	return -1
}

// recordTime is the first field of a record with a date and a time, or -1.
func recordTime(f dlt645.Format) int {
	for i, ff := range f.Fields {
		if ff.Kind == dlt645.Minute || ff.Kind == dlt645.Second || ff.Kind == dlt645.DateTime {
			return i
		}
	}
	return -1
}

// claim registers the series of e, reporting a series another identifier reads already, or a metric
// another identifier gives another unit or kind.
// Readings stamped with their record's time may share a series: the settled values of the last 12
// settlement days, or a freeze and the ones before it, are points of one series at their own times.
// The same record read twice (a block and one of its members) is still reported.
func (b *readBuilder) claim(e dlt645.Entry, o dlt645.Output, di dlt645.DI, p string) bool {
	attrs := attrString(o.Attributes)
	key := o.Metric + "{" + attrs + "}"
	if e.Stamp != dlt645.StampNone {
		key = "stamped " + key + " " + e.DI.Format(b.version)
	}
	if prev, ok := b.series[key]; ok {
		b.errs = append(b.errs, fmt.Errorf("%smetric %s{%s} is already read by %s; give different attributes", p, o.Metric, attrs, prev))
		return false
	}
	b.series[key] = di.Format(b.version)
	s := metricShape{o.Unit, o.Kind}
	if old, ok := b.shapes[o.Metric]; ok && old != s {
		b.errs = append(b.errs, fmt.Errorf("%smetric %s: unit %q and kind %s differ from another identifier's (%q, %s)", p, o.Metric, s.unit, s.kind, old.unit, old.kind))
		return false
	}
	b.shapes[o.Metric] = s
	return true
}

// resolveClock enables the clock drift when the clock identifiers read are complete.
func (b *readBuilder) resolveClock() {
	switch c := &b.clock; {
	case c.dateTime != 0:
		c.enabled = true
	case c.date != 0 && c.time != 0:
		c.enabled = true
	case c.date != 0 || c.time != 0:
		b.errs = append(b.errs, fmt.Errorf("%sidentifiers: the meter clock needs both the date and the time identifier (%s)", b.prefix, clockPair(b.version)))
	}
}

func clockPair(v dlt645.Version) string {
	if v == dlt645.V1997 {
		return "C010 and C011"
	}
	return "04000101 and 04000102, or 0400010C"
}

func mergeAttrs(base []dlt645.Attribute, over map[string]string) []dlt645.Attribute {
	out := make([]dlt645.Attribute, 0, len(base)+len(over))
	for _, a := range base {
		if _, ok := over[a.Key]; !ok {
			out = append(out, a)
		}
	}
	keys := make([]string, 0, len(over))
	for k := range over {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, dlt645.Attribute{Key: k, Value: over[k]})
	}
	return out
}

func attrString(attrs []dlt645.Attribute) string {
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		parts[i] = a.Key + "=" + a.Value
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func validMetricName(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/'):
		default:
			return false
		}
	}
	return s != ""
}
