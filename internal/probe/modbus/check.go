package modbus

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
)

// bounds are the largest plausible magnitudes per UCUM unit on the equipment the distribution reads
// (meters, inverters, PLC process values). A value beyond them is almost always a wrong byte order,
// type or scale: a float32 read with swapped words gives 1e30 or 1e-40, not 240.
var bounds = map[string]float64{
	"V": 1e6, "kV": 1e3, "A": 1e5, "kA": 1e2,
	"W": 1e10, "kW": 1e7, "MW": 1e4, "var": 1e10, "kvar": 1e7, "VA": 1e10, "kVA": 1e7,
	"Wh": 1e15, "kWh": 1e12, "MWh": 1e9, "kvar.h": 1e12, "var.h": 1e15, "kVA.h": 1e12,
	"Hz": 1e4, "%": 1e4, "deg": 1e4, "Cel": 1e4, "K": 1e4, "bar": 1e4, "Pa": 1e9, "kPa": 1e6,
	"1": 1e9, "s": 1e10, "h": 1e7,
}

// Plausible says whether v is a believable reading in unit, and if not, why.
func Plausible(v float64, unit string) (bool, string) {
	switch {
	case math.IsNaN(v):
		return false, "NaN (the device has no value, or the type or byte order is wrong)"
	case math.IsInf(v, 0):
		return false, "infinite (wrong type or byte order?)"
	case v != 0 && math.Abs(v) < 1e-9:
		return false, fmt.Sprintf("%g is vanishingly small (a float read with the wrong byte order?)", v)
	}
	limit, ok := bounds[unit]
	if !ok {
		limit = 1e12
	}
	if math.Abs(v) > limit {
		return false, fmt.Sprintf("%g %s is beyond any plausible reading (|v| > %g: wrong byte order, type or scale?)", v, unit, limit)
	}
	switch unit {
	case "Hz":
		if v < 0 {
			return false, "a negative frequency"
		}
	case "Cel":
		if v < -273.15 {
			return false, "below absolute zero"
		}
	}
	return true, ""
}

// CheckConfig is what `modbus check` asks.
type CheckConfig struct {
	Endpoint probe.Endpoint
	Line     Line
	Unit     int
	Timeout  time.Duration
	Profile  *Profile
	// DeviceID is the id of the device entry printed (default from the profile and unit).
	DeviceID string
}

// FieldResult is what one field read.
type FieldResult struct {
	Field     *Field
	Table     Table
	Address   int
	Type      string
	Kind      Kind // ok, exception, timeout …
	Code      int
	Value     float64
	Text      string // strings, bools
	Plausible bool
	Why       string // why not plausible, or the error
	Invalid   bool   // the raw value is one of invalid_values: "not available"
}

// CheckResult is the outcome of a check.
type CheckResult struct {
	Fields   []FieldResult
	Requests int
	Elapsed  time.Duration
}

// Counts returns how many fields read plausibly, raised exceptions, look implausible and failed otherwise.
func (r *CheckResult) Counts() (ok, exceptions, implausible, failed int) {
	for _, f := range r.Fields {
		switch {
		case f.Kind == KindException:
			exceptions++
		case f.Kind != KindOK:
			failed++
		case !f.Plausible:
			implausible++
		default:
			ok++
		}
	}
	return
}

// Check reads every field of the profile from the device, one request per field, so that an exception
// names one field; scale factors (SunSpec sunssf) are applied once all fields are read.
func Check(cfg CheckConfig) (*CheckResult, error) {
	start := time.Now()
	conn := NewConn(cfg.Endpoint, cfg.Line, cfg.Timeout)
	defer conn.Close()
	if err := conn.Open(); err != nil {
		return nil, &Outcome{Kind: KindConnection, Err: err}
	}
	p := cfg.Profile
	res := &CheckResult{}
	var raws [][]byte
	answered, silent := 0, 0
	for i := range p.Fields {
		f := &p.Fields[i]
		fr := FieldResult{Field: f, Kind: KindOK}
		table, addr, err := f.Location()
		if err != nil {
			fr.Kind, fr.Why = KindGarbled, err.Error()
			res.Fields, raws = append(res.Fields, fr), append(raws, nil)
			continue
		}
		fr.Table, fr.Address, fr.Type = table, addr, f.DataType(table)
		count := registers(fr.Type, f.Length)
		if table == Coil || table == Discrete {
			count = 1
		}
		raw, err := conn.Read(uint8(cfg.Unit), table, addr, count)
		if err != nil {
			o := Classify(err)
			fr.Kind, fr.Code, fr.Why = o.Kind, o.Code, o.Err.Error()
			if o.Kind == KindConnection {
				if err := conn.Open(); err != nil {
					return nil, &Outcome{Kind: KindConnection, Err: err}
				}
			}
		}
		if fr.Kind == KindTimeout {
			silent++
		} else {
			answered++
		}
		// A unit that answers nothing would cost a timeout per field: give up after three.
		if answered == 0 && silent == 3 {
			return nil, fmt.Errorf("unit %d does not answer (3 reads timed out): check the unit id (modbus scan) and the line", cfg.Unit)
		}
		res.Fields, raws = append(res.Fields, fr), append(raws, raw)
	}
	// Decode, scale factors first.
	order := func(f *Field) string {
		if f.ByteOrder != "" {
			return f.ByteOrder
		}
		if p.ByteOrder != "" {
			return p.ByteOrder
		}
		return "ABCD"
	}
	sf := map[string]float64{}
	for i := range res.Fields {
		fr := &res.Fields[i]
		if fr.Kind != KindOK {
			continue
		}
		decodeField(fr, raws[i], order(fr.Field))
		if fr.Kind == KindOK && !fr.Invalid {
			sf[fr.Field.Name] = fr.Value
		}
	}
	for i := range res.Fields {
		fr := &res.Fields[i]
		f := fr.Field
		if fr.Kind != KindOK || fr.Text != "" || fr.Invalid {
			continue
		}
		v := fr.Value
		if f.ScaleFactor != "" {
			exp, ok := sf[f.ScaleFactor]
			if !ok {
				fr.Invalid, fr.Why = true, fmt.Sprintf("its scale factor %q is not available", f.ScaleFactor)
				continue
			}
			v *= math.Pow(10, exp)
		}
		if f.Scale != nil {
			v *= *f.Scale
		}
		if f.Offset != nil {
			v += *f.Offset
		}
		fr.Value = v
		fr.Plausible, fr.Why = Plausible(v, f.Unit)
	}
	res.Requests, res.Elapsed = conn.Requests, time.Since(start)
	return res, nil
}

func decodeField(fr *FieldResult, raw []byte, order string) {
	f := fr.Field
	fr.Plausible = true
	switch fr.Type {
	case "bool":
		if fr.Table == Coil || fr.Table == Discrete {
			fr.Text = fmt.Sprint(raw[0] != 0)
		} else {
			fr.Text = fmt.Sprint(raw[0] != 0 || raw[1] != 0)
		}
		return
	case "bit":
		bit := 0
		if f.Bit != nil {
			bit = *f.Bit
		}
		v := uint16(raw[0])<<8 | uint16(raw[1])
		fr.Text = fmt.Sprint(v>>uint(bit)&1 == 1)
		return
	case "string":
		fr.Text = fmt.Sprintf("%q", decodeString(raw, order))
		return
	}
	v, rawInt, err := decodeNumber(fr.Type, order, f.Byte, raw)
	if err != nil {
		fr.Kind, fr.Why = KindGarbled, err.Error()
		return
	}
	for _, iv := range f.InvalidValues {
		if uint64(iv) == rawInt || (iv < 0 && int64(v) == iv) {
			fr.Invalid, fr.Why = true, fmt.Sprintf("raw value %d is one of invalid_values: the device has no value now", iv)
			return
		}
	}
	fr.Value = v
}

// WriteCheck prints the field report as comments and the device entry as YAML that the modbus receiver
// loads as its configuration (a devices/modbus.yaml file): the profile's file, the connection, and the
// device, with the fields that raised exceptions 1–3 (the device does not have them) excluded.
func WriteCheck(w io.Writer, cfg CheckConfig, r *CheckResult) {
	ok, exc, bad, failed := r.Counts()
	p := cfg.Profile
	probe.Comment(w, "otelcol-iiot-probe modbus check %s unit %d, profile %s (%s)", cfg.Endpoint.Raw, cfg.Unit, p.Name, p.File)
	probe.Comment(w, "%d fields: %d read plausible values, %d raised exceptions, %d look implausible, %d failed (%d requests in %s)",
		len(r.Fields), ok, exc, bad, failed, r.Requests, r.Elapsed.Round(time.Millisecond))
	width := 0
	for _, f := range r.Fields {
		width = max(width, len(f.Field.Name))
	}
	exclude := excluded(r)
	for _, f := range r.Fields {
		loc := fmt.Sprintf("%-8s %5d %-7s", f.Table, f.Address, f.Type)
		var what string
		switch {
		case f.Kind == KindException:
			what = fmt.Sprintf("EXCEPTION %d (%s)", f.Code, f.Why)
			if slices.Contains(exclude, f.Field.Name) {
				what += ": excluded below"
			}
		case f.Kind != KindOK:
			what = fmt.Sprintf("FAILED %s", f.Why)
		case f.Invalid:
			what = "not available: " + f.Why
		case f.Text != "":
			what = f.Text
		case !f.Plausible:
			what = "IMPLAUSIBLE: " + f.Why
		default:
			what = strings.TrimSpace(fmt.Sprintf("%s %s", probe.Num(roundSig(f.Value, 7)), f.Field.Unit))
		}
		probe.Comment(w, "  %-*s %s  %s", width, f.Field.Name, loc, what)
	}
	if len(exclude) == 0 && exc == len(r.Fields) && exc > 0 {
		probe.Comment(w, "Every field raised an exception: wrong unit id or profile for this device? Nothing excluded.")
	}
	if bad > 0 {
		probe.Comment(w, "Implausible values usually mean the wrong byte_order or scale for this device: try")
		probe.Comment(w, "`otelcol-iiot-probe modbus find` with a value from the display, and set byte_order on the device.")
	}
	id := cfg.DeviceID
	if id == "" {
		id = fmt.Sprintf("%s-%d", probe.ID(p.Name), cfg.Unit)
	}
	fmt.Fprintln(w, "profile_files:")
	fmt.Fprintf(w, "  - %s\n", probe.Q(p.File))
	fmt.Fprintln(w, "connections:")
	fmt.Fprintf(w, "  - endpoint: %s\n", probe.Q(cfg.Endpoint.Raw))
	writeLine(w, cfg.Endpoint, cfg.Line)
	fmt.Fprintln(w, "    devices:")
	fmt.Fprintf(w, "      - id: %s\n", probe.Q(id))
	fmt.Fprintf(w, "        unit_id: %d\n", cfg.Unit)
	fmt.Fprintf(w, "        profile: %s\n", probe.Q(p.Name))
	if len(exclude) > 0 {
		fmt.Fprintf(w, "        exclude_fields: %s\n", probe.List(exclude))
	}
}

// excluded lists the fields the device refused with exception 1, 2 or 3 (it does not have them): the
// device entry excludes them. Not all of them: a device without fields does not load.
func excluded(r *CheckResult) []string {
	var out []string
	for _, f := range r.Fields {
		if f.Kind == KindException && f.Code >= 1 && f.Code <= 3 {
			out = append(out, f.Field.Name)
		}
	}
	if len(out) == len(r.Fields) {
		return nil
	}
	return out
}

func roundSig(v float64, digits int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}
