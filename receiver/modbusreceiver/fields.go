package modbusreceiver

import (
	"fmt"
	"slices"
	"strings"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// FieldConfig is one reading of a device's register map.
type FieldConfig struct {
	// Name identifies the field in the device (patches, errors, scale_factor references).
	Name string `mapstructure:"name"`
	// Metric is the metric name; defaults to Name. Fields may share a metric with different attributes.
	Metric      string `mapstructure:"metric"`
	Description string `mapstructure:"description"`
	// Table is holding, input, coil or discrete (default holding, or taken from Register).
	Table Table `mapstructure:"table"`
	// Address is the 0-based protocol address.
	Address *int `mapstructure:"address"`
	// Register is the Modicon reference (40001 = holding 0, 30001 = input 0, 10001 = discrete 0,
	// 1 = coil 0; six-digit 400001-style also accepted); it sets Table and Address.
	Register int `mapstructure:"register"`
	// Type is the data type (default uint16 for registers, bool for coils and discrete inputs).
	Type DataType `mapstructure:"type"`
	// Bit is the bit of the register for type bit (0 = least significant).
	Bit *int `mapstructure:"bit"`
	// Byte selects the high or low byte of the register for int8/uint8 (default low).
	Byte string `mapstructure:"byte"`
	// Length is the number of registers of a string.
	Length int `mapstructure:"length"`
	// ByteOrder of a multi-byte value: ABCD, CDAB, BADC, DCBA (default: the device's).
	ByteOrder ByteOrder `mapstructure:"byte_order"`
	// Scale and Offset: value = raw × scale × 10^scale_factor + offset.
	Scale  *float64 `mapstructure:"scale"`
	Offset *float64 `mapstructure:"offset"`
	// ScaleFactor names an int16 field of the same device holding a power-of-ten exponent (SunSpec sunssf).
	ScaleFactor string `mapstructure:"scale_factor"`
	// InvalidValues are raw values meaning "not available" (e.g. 0x8000, 0xFFFF): the reading is marked stale.
	InvalidValues []int64 `mapstructure:"invalid_values"`
	// Unit is the UCUM unit (V, A, W, Wh, Hz, Cel …).
	Unit string `mapstructure:"unit"`
	// Kind is gauge (default) or sum (monotonic cumulative counter, e.g. energy).
	Kind device.MetricKind `mapstructure:"kind"`
	// Attributes are data-point attributes (e.g. phase: A).
	Attributes map[string]string `mapstructure:"attributes"`
	// StringAs says what a string becomes: info (a gauge of 1 with the string as attribute) or resource
	// (a resource attribute of the device). Attribute names the attribute.
	StringAs  string `mapstructure:"string_as"`
	Attribute string `mapstructure:"attribute"`
	// Internal fields are read for other fields (scale factors) but not exported. A pointer, so that a
	// device's `internal: false` can export a field its profile keeps internal.
	Internal *bool `mapstructure:"internal"`
	// Skip disables a profile field (same as exclude_fields).
	Skip bool `mapstructure:"skip"`
	// Report sets the field's report by exception (deadband, max_silence …) over its device's.
	Report device.ReportConfig `mapstructure:"report"`
}

// Table is a Modbus data table.
type Table string

const (
	TableHolding  Table = "holding"
	TableInput    Table = "input"
	TableCoil     Table = "coil"
	TableDiscrete Table = "discrete"
)

func (t Table) bits() bool { return t == TableCoil || t == TableDiscrete }

func (t Table) valid() bool {
	switch t {
	case TableHolding, TableInput, TableCoil, TableDiscrete:
		return true
	}
	return false
}

// ByteOrder is the order of the bytes of a multi-byte value as they arrive: A is the most
// significant byte. ABCD is big-endian with the high word first (the Modbus default).
type ByteOrder string

const (
	OrderABCD ByteOrder = "ABCD"
	OrderCDAB ByteOrder = "CDAB"
	OrderBADC ByteOrder = "BADC"
	OrderDCBA ByteOrder = "DCBA"
)

func (o ByteOrder) valid() bool {
	switch o {
	case OrderABCD, OrderCDAB, OrderBADC, OrderDCBA:
		return true
	}
	return false
}

// Validate reports a byte order that is set and unknown, naming the key under prefix.
func (o ByteOrder) Validate(prefix string) error {
	if o != "" && !o.valid() {
		return fmt.Errorf("%sbyte_order: unknown %q (want ABCD, CDAB, BADC, DCBA)", prefix, o)
	}
	return nil
}

// DataType is the type of a field.
type DataType string

const (
	TypeInt8    DataType = "int8"
	TypeUint8   DataType = "uint8"
	TypeInt16   DataType = "int16"
	TypeUint16  DataType = "uint16"
	TypeInt32   DataType = "int32"
	TypeUint32  DataType = "uint32"
	TypeInt64   DataType = "int64"
	TypeUint64  DataType = "uint64"
	TypeFloat16 DataType = "float16"
	TypeFloat32 DataType = "float32"
	TypeFloat64 DataType = "float64"
	TypeBool    DataType = "bool"
	TypeBit     DataType = "bit"
	TypeString  DataType = "string"
)

var allTypes = []DataType{TypeInt8, TypeUint8, TypeInt16, TypeUint16, TypeInt32, TypeUint32, TypeInt64, TypeUint64, TypeFloat16, TypeFloat32, TypeFloat64, TypeBool, TypeBit, TypeString}

// registers returns how many registers (or bits) the type spans.
func (t DataType) registers(length int) int {
	switch t {
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeInt64, TypeUint64, TypeFloat64:
		return 4
	case TypeString:
		return length
	}
	return 1
}

// fieldSpec is a validated field, ready for planning and decoding.
type fieldSpec struct {
	name        string
	metric      string
	description string
	table       Table
	address     int // 0-based, offset applied
	count       int // registers or bits
	typ         DataType
	bit         int
	highByte    bool
	order       ByteOrder
	conv        device.Scale // scale and offset
	scaleFactor int          // index of the scale-factor field, -1 if none
	invalid     []int64
	unit        string
	kind        device.MetricKind
	attributes  map[string]string
	stringAs    string
	attribute   string
	internal    bool
	report      device.ReportConfig // the field's own keys; the device's resolve the rest
}

// exported reports whether the field becomes a metric series of its own.
func (s *fieldSpec) exported() bool {
	return !s.internal && (s.typ != TypeString || s.stringAs == "info")
}

func healthMetric(name string) bool {
	switch name {
	case device.MetricUp, device.MetricPollDuration, device.MetricPollErrors, device.MetricRequests, device.MetricBreakerState:
		return true
	}
	return false
}

// fieldPrefix names field i in errors: `fields[3] "voltage": `.
func fieldPrefix(prefix string, i int, name string) string {
	fp := fmt.Sprintf("%sfields[%d]", prefix, i)
	if name != "" {
		fp += fmt.Sprintf(" %q", name)
	}
	return fp + ": "
}

// fieldSet resolves the fields of one device (or profile): each field on its own, then what fields
// say about each other (names, metrics, scale factors, overlaps).
type fieldSet struct {
	prefix  string
	order   ByteOrder // the device's default
	offset  int       // register_offset
	req     requestSpec
	specs   []fieldSpec
	valid   []bool // specs[i] has no error of its own
	byName  map[string]int
	metrics map[string]int    // metric name → first exported field using it
	series  map[string]string // metric{attributes} → field name
	errs    []error
}

// buildFields validates fields and resolves them into specs.
func buildFields(fields []FieldConfig, order ByteOrder, regOffset int, req requestSpec, prefix string) ([]fieldSpec, []error) {
	fs := &fieldSet{prefix: prefix, order: order, offset: regOffset, req: req,
		specs: make([]fieldSpec, 0, len(fields)), byName: map[string]int{}, metrics: map[string]int{}, series: map[string]string{}}
	for i, f := range fields {
		fs.add(i, f)
	}
	fs.linkScaleFactors(fields)
	fs.reportOverlaps()
	return fs.specs, fs.errs
}

// add resolves field i, reporting its own problems and its clashes with the fields before it.
func (fs *fieldSet) add(i int, f FieldConfig) {
	fp := fieldPrefix(fs.prefix, i, f.Name)
	n := len(fs.errs)
	if f.Name == "" {
		fs.errs = append(fs.errs, fmt.Errorf("%sname: required", fp))
	} else if _, dup := fs.byName[f.Name]; dup {
		fs.errs = append(fs.errs, fmt.Errorf("%sname: %q is used by another field of the device", fp, f.Name))
	}
	s := fieldSpec{name: f.Name, metric: device.LayerSet(f.Name, f.Metric), description: f.Description,
		conv: device.NewScale(device.Layer(1, f.Scale), device.Layer(0, f.Offset)), scaleFactor: -1,
		unit: f.Unit, kind: device.LayerSet(device.KindGauge, f.Kind), attributes: f.Attributes, stringAs: f.StringAs,
		attribute: f.Attribute, invalid: f.InvalidValues, internal: device.Layer(false, f.Internal), report: f.Report}
	if err := f.Report.Validate(fp + "report."); err != nil {
		fs.errs = append(fs.errs, err)
	}
	var errs []error
	s.table, s.address, errs = locate(f.Table, f.Address, f.Register, fp, "address: required (0-based address, or register: the Modicon reference)")
	fs.errs = append(fs.errs, errs...)
	s.address += fs.offset
	fs.errs = append(fs.errs, s.resolveType(f, fp)...)
	fs.errs = append(fs.errs, s.resolveString(f, fs.req, fp)...)
	fs.errs = append(fs.errs, s.resolveValue(f, fs.order, fp)...)
	fs.errs = append(fs.errs, fs.claimMetric(&s, fp)...)
	if !s.table.bits() && s.count > fs.req.MaxRegisters {
		fs.errs = append(fs.errs, fmt.Errorf("%stype: %d registers do not fit max_registers %d", fp, s.count, fs.req.MaxRegisters))
	}
	if f.Name != "" {
		if _, dup := fs.byName[f.Name]; !dup {
			fs.byName[f.Name] = i
		}
	}
	fs.valid = append(fs.valid, len(fs.errs) == n)
	fs.specs = append(fs.specs, s)
}

// locate resolves the table and 0-based address of a field or block from its table, address and
// register keys (one of address or register is required; missing is the text when neither is set).
func locate(table Table, address *int, register int, prefix, missing string) (Table, int, []error) {
	var errs []error
	at := 0
	switch {
	case register != 0 && address != nil:
		errs = append(errs, fmt.Errorf("%saddress and register: give one (address is 0-based, register is the Modicon reference)", prefix))
	case register != 0:
		t, a, err := modicon(register)
		if err != nil {
			errs = append(errs, fmt.Errorf("%sregister: %w", prefix, err))
		} else if table != "" && table != t {
			errs = append(errs, fmt.Errorf("%stable: %q contradicts register %d (a %s reference)", prefix, table, register, t))
		}
		table, at = t, a
	case address != nil:
		at = *address
	default:
		errs = append(errs, fmt.Errorf("%s%s", prefix, missing))
	}
	return device.LayerSet(TableHolding, table), at, errs
}

// resolveType sets the data type, bit and byte of s, and how many registers it spans.
func (s *fieldSpec) resolveType(f FieldConfig, fp string) []error {
	var errs []error
	if !s.table.valid() {
		errs = append(errs, fmt.Errorf("%stable: unknown %q (want holding, input, coil or discrete)", fp, f.Table))
	}
	s.typ = f.Type
	if s.typ == "" {
		s.typ = TypeUint16
		if s.table.bits() {
			s.typ = TypeBool
		}
	}
	if !slices.Contains(allTypes, s.typ) {
		errs = append(errs, fmt.Errorf("%stype: unknown %q (want int8, uint8, int16, uint16, int32, uint32, int64, uint64, float16, float32, float64, bool, bit, string)", fp, f.Type))
	} else if s.table.bits() && s.typ != TypeBool {
		errs = append(errs, fmt.Errorf("%stype: %s tables hold single bits: type must be bool, got %q", fp, s.table, s.typ))
	}
	if f.Bit != nil {
		s.bit = *f.Bit
		if s.typ != TypeBit {
			errs = append(errs, fmt.Errorf("%sbit: applies only to type bit", fp))
		} else if s.bit < 0 || s.bit > 15 {
			errs = append(errs, fmt.Errorf("%sbit: must be between 0 and 15, got %d", fp, s.bit))
		}
	} else if s.typ == TypeBit {
		errs = append(errs, fmt.Errorf("%sbit: required for type bit (0 = least significant bit of the register)", fp))
	}
	switch strings.ToLower(f.Byte) {
	case "", "low":
	case "high":
		s.highByte = true
	default:
		errs = append(errs, fmt.Errorf("%sbyte: unknown %q (want high or low)", fp, f.Byte))
	}
	if f.Byte != "" && s.typ != TypeInt8 && s.typ != TypeUint8 {
		errs = append(errs, fmt.Errorf("%sbyte: applies only to types int8 and uint8", fp))
	}
	return errs
}

// resolveString checks the keys of strings (and that other types leave them out), then sets the
// field's register count and checks its address range.
func (s *fieldSpec) resolveString(f FieldConfig, req requestSpec, fp string) []error {
	var errs []error
	if s.typ == TypeString {
		if f.Length < 1 || f.Length > req.MaxRegisters {
			errs = append(errs, fmt.Errorf("%slength: a string needs length between 1 and %d registers (max_registers), got %d", fp, req.MaxRegisters, f.Length))
		}
		switch f.StringAs {
		case "info", "resource":
			if f.Attribute == "" {
				errs = append(errs, fmt.Errorf("%sattribute: required for strings (the attribute that carries the text)", fp))
			}
		case "":
			errs = append(errs, fmt.Errorf("%sstring_as: required for strings (info: a metric of 1 with the text as attribute; resource: a resource attribute)", fp))
		default:
			errs = append(errs, fmt.Errorf("%sstring_as: unknown %q (want info or resource)", fp, f.StringAs))
		}
		if s.stringAs == "resource" && slices.Contains([]string{device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress}, f.Attribute) {
			errs = append(errs, fmt.Errorf("%sattribute: %q is set by the receiver", fp, f.Attribute))
		}
	} else {
		if f.Length != 0 {
			errs = append(errs, fmt.Errorf("%slength: applies only to type string", fp))
		}
		if f.StringAs != "" || f.Attribute != "" {
			errs = append(errs, fmt.Errorf("%sstring_as and attribute: apply only to type string", fp))
		}
	}
	s.count = s.typ.registers(f.Length)
	if s.table.bits() {
		s.count = 1
	}
	if s.address < 0 || s.address+s.count-1 > 65535 {
		errs = append(errs, fmt.Errorf("%saddress: %d (with register_offset) to %d is outside 0–65535", fp, s.address, s.address+s.count-1))
	}
	return errs
}

// resolveValue checks how the raw value becomes a reading: byte order, kind and scale.
func (s *fieldSpec) resolveValue(f FieldConfig, order ByteOrder, fp string) []error {
	var errs []error
	s.order = device.LayerSet(order, f.ByteOrder)
	// An unknown order inherited from the profile or device is reported there, once, not per field.
	if err := f.ByteOrder.Validate(fp); err != nil {
		errs = append(errs, err)
	}
	if err := f.Kind.Validate(fp); err != nil {
		errs = append(errs, err)
	}
	if sc := s.conv.Factor; sc == 0 || sc != sc {
		errs = append(errs, fmt.Errorf("%sscale: must be a non-zero number", fp))
	}
	return errs
}

// claimMetric registers the field's series, reporting a metric name the receiver owns, and a series
// or metric shape another field of the device already has.
func (fs *fieldSet) claimMetric(s *fieldSpec, fp string) []error {
	switch {
	case s.metric == "": // reported through name
		return nil
	case healthMetric(s.metric):
		return []error{fmt.Errorf("%smetric: %q is a health metric of the receiver", fp, s.metric)}
	case !s.exported():
		return nil
	}
	var errs []error
	if j, ok := fs.metrics[s.metric]; ok {
		if o := fs.specs[j]; o.unit != s.unit || o.kind != s.kind {
			errs = append(errs, fmt.Errorf("%smetric: %q is also field %q with unit %q and kind %s; fields sharing a metric need the same unit and kind", fp, s.metric, o.name, o.unit, o.kind))
		}
	} else {
		fs.metrics[s.metric] = len(fs.specs)
	}
	key := s.metric + "{" + attrKey(s.attributes) + "}"
	if prev, ok := fs.series[key]; ok {
		errs = append(errs, fmt.Errorf("%sattributes: metric %q with the same attributes is also field %q; give the fields different attributes", fp, s.metric, prev))
	} else {
		fs.series[key] = s.name
	}
	return errs
}

// linkScaleFactors resolves scale_factor references to the index of the field they name.
func (fs *fieldSet) linkScaleFactors(fields []FieldConfig) {
	for i, f := range fields {
		if f.ScaleFactor == "" {
			continue
		}
		fp := fmt.Sprintf("%sfields[%d] %q: ", fs.prefix, i, f.Name)
		j, ok := fs.byName[f.ScaleFactor]
		switch {
		case !ok:
			fs.errs = append(fs.errs, fmt.Errorf("%sscale_factor: no field named %q", fp, f.ScaleFactor))
		case fs.specs[j].typ != TypeInt16 && fs.specs[j].typ != TypeInt8:
			fs.errs = append(fs.errs, fmt.Errorf("%sscale_factor: field %q must be int16 (a power-of-ten exponent), is %s", fp, f.ScaleFactor, fs.specs[j].typ))
		case fs.specs[i].typ == TypeString || fs.specs[i].typ == TypeBool || fs.specs[i].typ == TypeBit:
			fs.errs = append(fs.errs, fmt.Errorf("%sscale_factor: applies only to numbers", fp))
		case fs.specs[j].scaleFactor >= 0 || fields[j].ScaleFactor != "":
			fs.errs = append(fs.errs, fmt.Errorf("%sscale_factor: field %q has a scale factor itself", fp, f.ScaleFactor))
		default:
			fs.specs[i].scaleFactor = j
		}
	}
}

// reportOverlaps reports fields of one table that share registers, except bit fields (different bits)
// of one register. Fields with errors of their own are left out.
func (fs *fieldSet) reportOverlaps() {
	specs := fs.specs
	idx := make([]int, 0, len(specs))
	for i := range specs {
		if fs.valid[i] {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if specs[a].table != specs[b].table {
			return strings.Compare(string(specs[a].table), string(specs[b].table))
		}
		return specs[a].address - specs[b].address
	})
	for k := 1; k < len(idx); k++ {
		for m := k - 1; m >= 0; m-- {
			a, b := specs[idx[m]], specs[idx[k]]
			if a.table != b.table {
				break
			}
			if a.address+a.count <= b.address {
				continue
			}
			if a.typ == TypeBit && b.typ == TypeBit && a.address == b.address && a.bit != b.bit {
				continue
			}
			fs.errs = append(fs.errs, fmt.Errorf("%sfields %q and %q overlap: %s %d–%d and %d–%d", fs.prefix, a.name, b.name, a.table, a.address, a.address+a.count-1, b.address, b.address+b.count-1))
		}
	}
}

func attrKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(',')
	}
	return b.String()
}

// modicon converts a Modicon reference number to a table and 0-based address.
func modicon(ref int) (Table, int, error) {
	switch {
	case ref >= 1 && ref <= 9999:
		return TableCoil, ref - 1, nil
	case ref >= 10001 && ref <= 19999:
		return TableDiscrete, ref - 10001, nil
	case ref >= 30001 && ref <= 39999:
		return TableInput, ref - 30001, nil
	case ref >= 40001 && ref <= 49999:
		return TableHolding, ref - 40001, nil
	case ref >= 100001 && ref <= 165536:
		return TableDiscrete, ref - 100001, nil
	case ref >= 300001 && ref <= 365536:
		return TableInput, ref - 300001, nil
	case ref >= 400001 && ref <= 465536:
		return TableHolding, ref - 400001, nil
	}
	return "", 0, fmt.Errorf("%d is not a Modicon reference (1–9999 coil, 10001–19999 discrete, 30001–39999 input, 40001–49999 holding, or the six-digit 100001/300001/400001 forms)", ref)
}
