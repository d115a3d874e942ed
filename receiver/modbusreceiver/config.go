package modbusreceiver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

// Protocol limits of one read (Modbus application protocol v1.1b3, 6.1–6.4).
const (
	maxRegistersPerRead = 125
	maxBitsPerRead      = 2000
)

// Config is the modbus receiver's configuration.
type Config struct {
	// Settings are the poll, breaker and traces defaults of every device.
	device.Settings `mapstructure:",squash"`
	// Metrics turns each metric of metadata.yaml (the iiot.device.* health metrics) on or off.
	Metrics metadata.MetricsConfig `mapstructure:"metrics"`
	// Requests are the default request-planning limits and device quirks; profiles and devices override them.
	Requests RequestConfig `mapstructure:"requests"`
	// ProfileFiles are YAML files holding `profiles:` maps, merged with Profiles (a name may be defined once).
	ProfileFiles []string `mapstructure:"profile_files"`
	// Profiles are named register maps that devices refer to.
	Profiles map[string]ProfileConfig `mapstructure:"profiles"`
	// Connections are the endpoints (TCP sockets, serial ports) and the devices reached through each.
	Connections []ConnectionConfig `mapstructure:"connections"`
}

var _ confmap.Validator = (*Config)(nil)

// health is which health metrics the `metrics` key enables, for the device recorders.
func (c *Config) health() device.HealthMetrics {
	m := c.Metrics
	return device.HealthMetrics{
		Up:           m.IiotDeviceUp.Enabled,
		PollDuration: m.IiotDevicePollDuration.Enabled,
		PollErrors:   m.IiotDevicePollErrors.Enabled,
		Requests:     m.IiotDeviceRequests.Enabled,
		BreakerState: m.IiotDeviceBreakerState.Enabled,
	}
}

// RequestConfig bounds how fields are merged into reads, and holds per-device quirks. It is set at
// three levels, receiver → profile → device: a key a level sets replaces the one above, 0 and false
// included; a key it leaves out is inherited (see device.Layer).
type RequestConfig struct {
	// MaxRegisters is the most registers in one read of holding or input registers (1–125).
	MaxRegisters *int `mapstructure:"max_registers"`
	// MaxBits is the most coils or discrete inputs in one read (1–2000).
	MaxBits *int `mapstructure:"max_bits"`
	// MaxGap is the most unused registers (or bits) a read may bridge to serve two fields in one request.
	MaxGap *int `mapstructure:"max_gap"`
	// Pause is the wait between two requests of one poll (devices that need quiet time); 0: none.
	Pause *time.Duration `mapstructure:"pause"`
	// CloseAfterPoll closes the connection after each poll of the device.
	CloseAfterPoll *bool `mapstructure:"close_after_poll"`
	// RemergeAfter is how long reads split after an exception stay split before merging is tried
	// again; 0: they stay split.
	RemergeAfter *time.Duration `mapstructure:"remerge_after"`
	// Blocks, in a profile or a device, are the device's reads given explicitly, for firmware that
	// answers only exact blocks: they are read as given (never merged, split or planned) and every
	// field must lie inside one of them.
	Blocks []BlockConfig `mapstructure:"blocks"`
}

// BlockConfig is one explicit read: a range of one table.
type BlockConfig struct {
	// Table is holding (default), input, coil or discrete.
	Table Table `mapstructure:"table"`
	// Address is the 0-based protocol address of the first register (or bit).
	Address *int `mapstructure:"address"`
	// Register is the Modicon reference of the first register instead of Table and Address.
	Register int `mapstructure:"register"`
	// Count is the number of registers (1–125) or bits (1–2000) read.
	Count int `mapstructure:"count"`
}

// requestSpec is a device's RequestConfig with every level applied.
type requestSpec struct {
	MaxRegisters   int
	MaxBits        int
	MaxGap         int
	Pause          time.Duration
	CloseAfterPoll bool
	RemergeAfter   time.Duration
	Blocks         []BlockConfig
}

// newDefaultRequestSpec is what applies where no level sets a key.
func newDefaultRequestSpec() requestSpec {
	return requestSpec{MaxRegisters: maxRegistersPerRead, MaxBits: maxBitsPerRead, MaxGap: 16, RemergeAfter: time.Hour}
}

// over applies the keys a level sets.
func (r requestSpec) over(c RequestConfig) requestSpec {
	r.MaxRegisters = device.Layer(r.MaxRegisters, c.MaxRegisters)
	r.MaxBits = device.Layer(r.MaxBits, c.MaxBits)
	r.MaxGap = device.Layer(r.MaxGap, c.MaxGap)
	r.Pause = device.Layer(r.Pause, c.Pause)
	r.CloseAfterPoll = device.Layer(r.CloseAfterPoll, c.CloseAfterPoll)
	r.RemergeAfter = device.Layer(r.RemergeAfter, c.RemergeAfter)
	if c.Blocks != nil {
		r.Blocks = c.Blocks
	}
	return r
}

// clamped keeps limits within the protocol's (a bad value is reported by validate).
func (r requestSpec) clamped() requestSpec {
	if r.MaxRegisters < 1 || r.MaxRegisters > maxRegistersPerRead {
		r.MaxRegisters = maxRegistersPerRead
	}
	if r.MaxBits < 1 || r.MaxBits > maxBitsPerRead {
		r.MaxBits = maxBitsPerRead
	}
	if r.MaxGap < 0 || r.MaxGap > maxBitsPerRead {
		r.MaxGap = 0
	}
	return r
}

// validate reports every problem of the keys a level sets.
func (r RequestConfig) validate(prefix string) []error {
	var errs []error
	if r.MaxRegisters != nil && (*r.MaxRegisters < 1 || *r.MaxRegisters > maxRegistersPerRead) {
		errs = append(errs, fmt.Errorf("%smax_registers: must be between 1 and %d, got %d", prefix, maxRegistersPerRead, *r.MaxRegisters))
	}
	if r.MaxBits != nil && (*r.MaxBits < 1 || *r.MaxBits > maxBitsPerRead) {
		errs = append(errs, fmt.Errorf("%smax_bits: must be between 1 and %d, got %d", prefix, maxBitsPerRead, *r.MaxBits))
	}
	if r.MaxGap != nil && (*r.MaxGap < 0 || *r.MaxGap > maxBitsPerRead) {
		errs = append(errs, fmt.Errorf("%smax_gap: must be between 0 and %d, got %d", prefix, maxBitsPerRead, *r.MaxGap))
	}
	if r.Pause != nil && *r.Pause < 0 {
		errs = append(errs, fmt.Errorf("%spause: must be >= 0, got %s", prefix, *r.Pause))
	}
	if r.RemergeAfter != nil && *r.RemergeAfter < 0 {
		errs = append(errs, fmt.Errorf("%sremerge_after: must be >= 0 (0: split reads stay split), got %s", prefix, *r.RemergeAfter))
	}
	return errs
}

// ProfileConfig is a named, reusable register map of one device model.
type ProfileConfig struct {
	Manufacturer string `mapstructure:"manufacturer"`
	Model        string `mapstructure:"model"`
	// Document names the register documentation the map was taken from.
	Document string `mapstructure:"document"`
	// ByteOrder is the default byte/word order of the profile's multi-register fields.
	ByteOrder ByteOrder     `mapstructure:"byte_order"`
	Requests  RequestConfig `mapstructure:"requests"`
	Fields    []FieldConfig `mapstructure:"fields"`
}

// TLSConfig holds the files of a Modbus/TCP Security (tcp+tls://) connection: the client certificate
// and key (the protocol has no other authentication) and the CA that signed the server's certificate.
type TLSConfig struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// ConnectionConfig is one endpoint: a TCP socket (plain, RTU-framed or TLS) or a serial port.
type ConnectionConfig struct {
	// Endpoint is tcp://host:port, rtuovertcp://host:port, tcp+tls://host:port or rtu:///dev/ttyX.
	Endpoint string `mapstructure:"endpoint"`
	// BaudRate, DataBits, Parity and StopBits set the serial line (rtu:// only).
	BaudRate int    `mapstructure:"baud_rate"`
	DataBits int    `mapstructure:"data_bits"`
	Parity   string `mapstructure:"parity"`
	StopBits int    `mapstructure:"stop_bits"`
	// TLS is required for tcp+tls:// and refused for the others.
	TLS *TLSConfig `mapstructure:"tls"`
	// PauseBetweenPolls is the idle time the bus gets between the polls of two devices.
	PauseBetweenPolls time.Duration `mapstructure:"pause_between_polls"`
	// Devices reached through this connection (unit ids).
	Devices []DeviceConfig `mapstructure:"devices"`
}

// DeviceConfig is one Modbus device (one unit id on a connection).
type DeviceConfig struct {
	// ID is the device.id resource attribute; required and unique in the receiver.
	ID string `mapstructure:"id"`
	// UnitID is the Modbus unit (slave) id: 1–247 (0 and 255 are accepted on TCP). Default 1.
	UnitID *int `mapstructure:"unit_id"`
	// Profile is the name of the register map to use; Fields add to it or patch it.
	Profile      string `mapstructure:"profile"`
	Manufacturer string `mapstructure:"manufacturer"`
	Model        string `mapstructure:"model"`
	// ByteOrder is the default order of the device's fields (overrides the profile's).
	ByteOrder ByteOrder `mapstructure:"byte_order"`
	// RegisterOffset is added to every address of the device (devices whose map is off by one).
	RegisterOffset int `mapstructure:"register_offset"`
	// Fields are added to the profile's; a field named like a profile field patches it.
	Fields []FieldConfig `mapstructure:"fields"`
	// ExcludeFields drops fields of the profile by name.
	ExcludeFields      []string          `mapstructure:"exclude_fields"`
	ResourceAttributes map[string]string `mapstructure:"resource_attributes"`
	// Poll changes the receiver's poll keys for this device (a key left out is inherited).
	Poll     device.PollOverrides `mapstructure:"poll"`
	Requests RequestConfig        `mapstructure:"requests"`
}

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
	// Unit is the UCUM unit (V, A, W, kWh, Hz, Cel …).
	Unit string `mapstructure:"unit"`
	// Kind is gauge (default) or sum (monotonic cumulative counter, e.g. energy).
	Kind Kind `mapstructure:"kind"`
	// Attributes are data-point attributes (e.g. phase: L1).
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

// Kind is how a reading is exported.
type Kind string

const (
	KindGauge Kind = "gauge"
	KindSum   Kind = "sum"
)

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

// Validate reports every problem of the configuration, naming each key.
func (cfg *Config) Validate() error {
	_, err := cfg.resolve()
	return err
}

// deviceSpec is one device with its profile, overrides and defaults applied.
type deviceSpec struct {
	identity device.Identity
	unitID   uint8
	poll     device.PollConfig
	requests requestSpec
	fields   []fieldSpec
	blocks   []blockSpec // explicit reads; nil: planned
}

// connSpec is one connection with its devices.
type connSpec struct {
	endpoint string // as configured
	scheme   string
	address  string // host:port or serial device
	baud     int
	dataBits int
	parity   uint
	stopBits int
	tls      *TLSConfig
	gap      time.Duration
	devices  []deviceSpec
}

// resolve validates the configuration and returns the devices to poll.
func (cfg *Config) resolve() ([]connSpec, error) {
	var errs []error
	add := func(e ...error) {
		for _, x := range e {
			if x != nil {
				errs = append(errs, x)
			}
		}
	}
	add(cfg.Settings.Validate(""))
	add(cfg.Requests.validate("requests.")...)
	if cfg.Requests.Blocks != nil {
		add(errors.New("requests.blocks: explicit blocks belong to a profile or a device (the blocks a firmware answers depend on the device model)"))
	}
	defaults := newDefaultRequestSpec().over(cfg.Requests)

	profiles := map[string]ProfileConfig{}
	origin := map[string]string{}
	for name, p := range cfg.Profiles {
		profiles[name] = p
		origin[name] = fmt.Sprintf("profiles::%s", name)
	}
	for i, path := range cfg.ProfileFiles {
		loaded, err := loadProfileFile(path)
		if err != nil {
			add(fmt.Errorf("profile_files[%d] %q: %w", i, path, err))
			continue
		}
		for name, p := range loaded {
			if prev, ok := origin[name]; ok {
				add(fmt.Errorf("profile_files[%d] %q: profile %q is already defined in %s", i, path, name, prev))
				continue
			}
			profiles[name] = p
			origin[name] = fmt.Sprintf("profile_files[%d]::%s", i, name)
		}
	}
	// Validate every profile once on its own, so a broken profile is reported even when unused.
	profileNames := make([]string, 0, len(profiles))
	for name := range profiles {
		profileNames = append(profileNames, name)
	}
	slices.Sort(profileNames)
	badProfile := map[string]bool{}
	for _, name := range profileNames {
		p := profiles[name]
		prefix := origin[name] + ": "
		var perrs []error
		if p.ByteOrder != "" && !p.ByteOrder.valid() {
			perrs = append(perrs, fmt.Errorf("%sbyte_order: unknown %q (want ABCD, CDAB, BADC, DCBA)", prefix, p.ByteOrder))
		}
		perrs = append(perrs, p.Requests.validate(prefix+"requests.")...)
		if len(p.Fields) == 0 {
			perrs = append(perrs, fmt.Errorf("%sfields: a profile needs at least one field", prefix))
		}
		req := defaults.over(p.Requests).clamped()
		specs, ferrs := buildFields(p.Fields, orDefault(p.ByteOrder, OrderABCD), 0, req, prefix)
		perrs = append(perrs, ferrs...)
		if p.Requests.Blocks != nil {
			_, berrs := resolveBlocks(p.Requests.Blocks, 0, specs, prefix, "requests.blocks")
			perrs = append(perrs, berrs...)
		}
		if len(perrs) > 0 {
			badProfile[name] = true
			add(perrs...)
		}
	}

	if len(cfg.Connections) == 0 {
		add(errors.New("connections: at least one connection with devices is required"))
	}
	ids := device.IDs{}
	var conns []connSpec
	for ci, c := range cfg.Connections {
		cprefix := fmt.Sprintf("connections[%d]", ci)
		cs, cerrs := resolveConnection(c, cprefix)
		add(cerrs...)
		if len(c.Devices) == 0 {
			add(fmt.Errorf("%s.devices: at least one device is required", cprefix))
		}
		units := map[int]string{}
		for di, d := range c.Devices {
			var derrs []error
			dprefix, err := ids.Check(fmt.Sprintf("%s.devices[%d]", cprefix, di), d.ID)
			if err != nil {
				derrs = append(derrs, err)
			}
			unit := 1
			if d.UnitID != nil {
				unit = *d.UnitID
			}
			tcpLike := cs.scheme == "tcp" || cs.scheme == "tcp+tls"
			switch {
			case unit >= 1 && unit <= 247:
			case tcpLike && (unit == 0 || unit == 255):
			default:
				allowed := "1 to 247"
				if tcpLike {
					allowed = "1 to 247, or 0 or 255 on tcp:// and tcp+tls://"
				}
				derrs = append(derrs, fmt.Errorf("%sunit_id: must be %s, got %d", dprefix, allowed, unit))
			}
			if prev, ok := units[unit]; ok && d.UnitID != nil {
				derrs = append(derrs, fmt.Errorf("%sunit_id: %d is already used on this connection by %s", dprefix, unit, prev))
			}
			units[unit] = fmt.Sprintf("devices[%d]", di)
			if d.ByteOrder != "" && !d.ByteOrder.valid() {
				derrs = append(derrs, fmt.Errorf("%sbyte_order: unknown %q (want ABCD, CDAB, BADC, DCBA)", dprefix, d.ByteOrder))
			}
			if d.RegisterOffset < -65535 || d.RegisterOffset > 65535 {
				derrs = append(derrs, fmt.Errorf("%sregister_offset: must be between -65535 and 65535, got %d", dprefix, d.RegisterOffset))
			}
			if err := d.Poll.Validate(dprefix+"poll.", cfg.Poll); err != nil {
				derrs = append(derrs, err)
			}
			pollCfg := cfg.Poll.Override(d.Poll)
			derrs = append(derrs, d.Requests.validate(dprefix+"requests.")...)
			for k := range d.ResourceAttributes {
				if strings.HasPrefix(k, "device.") && slices.Contains([]string{device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress, device.AttrDeviceManufacturer, device.AttrDeviceModelName}, k) {
					derrs = append(derrs, fmt.Errorf("%sresource_attributes: %q is set by the receiver (use id, manufacturer or model)", dprefix, k))
				}
			}

			var prof ProfileConfig
			if d.Profile != "" {
				p, ok := profiles[d.Profile]
				switch {
				case !ok:
					known := strings.Join(profileNames, ", ")
					if known == "" {
						known = "none defined"
					}
					derrs = append(derrs, fmt.Errorf("%sprofile: unknown %q (known: %s)", dprefix, d.Profile, known))
				case badProfile[d.Profile]:
					derrs = append(derrs, fmt.Errorf("%sprofile: %q has errors (reported above)", dprefix, d.Profile))
				default:
					prof = p
				}
			}
			fields, ferrs := mergeFields(prof.Fields, d.Fields, d.ExcludeFields, dprefix)
			derrs = append(derrs, ferrs...)
			if len(fields) == 0 && len(ferrs) == 0 && (d.Profile == "" || prof.Fields != nil) {
				derrs = append(derrs, fmt.Errorf("%sfields: the device has no fields (give a profile or fields)", dprefix))
			}
			order := orDefault(d.ByteOrder, orDefault(prof.ByteOrder, OrderABCD))
			req := defaults.over(prof.Requests).over(d.Requests).clamped()
			specs, ferrs := buildFields(fields, order, d.RegisterOffset, req, dprefix)
			derrs = append(derrs, ferrs...)
			var blocks []blockSpec
			if req.Blocks != nil {
				key := "requests.blocks"
				if d.Requests.Blocks == nil {
					key = fmt.Sprintf("profile %q requests.blocks", d.Profile)
				}
				var berrs []error
				blocks, berrs = resolveBlocks(req.Blocks, d.RegisterOffset, specs, dprefix, key)
				derrs = append(derrs, berrs...)
			}
			if len(derrs) > 0 {
				add(derrs...)
				continue
			}
			manufacturer, model := orDefault(d.Manufacturer, prof.Manufacturer), orDefault(d.Model, prof.Model)
			cs.devices = append(cs.devices, deviceSpec{
				identity: device.Identity{
					ID:           d.ID,
					Protocol:     device.ProtocolModbus,
					Address:      fmt.Sprintf("%s/%d", strings.TrimSuffix(c.Endpoint, "/"), unit),
					Manufacturer: manufacturer,
					Model:        model,
					Attributes:   d.ResourceAttributes,
				},
				unitID:   uint8(unit),
				poll:     pollCfg,
				requests: req,
				fields:   specs,
				blocks:   blocks,
			})
		}
		conns = append(conns, cs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return conns, nil
}

func orDefault[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

func resolveConnection(c ConnectionConfig, prefix string) (connSpec, []error) {
	cs := connSpec{endpoint: c.Endpoint, gap: c.PauseBetweenPolls}
	var errs []error
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "":
		errs = append(errs, fmt.Errorf("%s.endpoint: required (tcp://host:port, rtuovertcp://host:port, tcp+tls://host:port or rtu:///dev/ttyX)", prefix))
	case err != nil:
		errs = append(errs, fmt.Errorf("%s.endpoint: %q is not a URL: %v", prefix, c.Endpoint, err))
	default:
		cs.scheme = u.Scheme
		switch u.Scheme {
		case "tcp", "rtuovertcp", "tcp+tls":
			host, port, err := net.SplitHostPort(u.Host)
			if err != nil || host == "" || u.Path != "" {
				errs = append(errs, fmt.Errorf("%s.endpoint: %q must be %s://host:port", prefix, c.Endpoint, u.Scheme))
				break
			}
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				errs = append(errs, fmt.Errorf("%s.endpoint: port %q must be a number from 1 to 65535", prefix, port))
			}
			cs.address = u.Host
		case "rtu":
			if u.Host != "" || u.Path == "" {
				errs = append(errs, fmt.Errorf("%s.endpoint: %q must be rtu:///path/to/serial/device (three slashes)", prefix, c.Endpoint))
			}
			cs.address = u.Path
		default:
			errs = append(errs, fmt.Errorf("%s.endpoint: unknown scheme %q in %q (want tcp, rtuovertcp, tcp+tls or rtu)", prefix, u.Scheme, c.Endpoint))
		}
	}
	serial := cs.scheme == "rtu"
	if !serial && (c.DataBits != 0 || c.Parity != "" || c.StopBits != 0) {
		errs = append(errs, fmt.Errorf("%s: data_bits, parity and stop_bits apply only to rtu:// endpoints", prefix))
	}
	if c.BaudRate < 0 || c.BaudRate > 4000000 {
		errs = append(errs, fmt.Errorf("%s.baud_rate: must be between 1 and 4000000, got %d", prefix, c.BaudRate))
	}
	cs.baud = c.BaudRate
	if serial && cs.baud == 0 {
		cs.baud = 9600
	}
	cs.dataBits = c.DataBits
	if cs.dataBits == 0 {
		cs.dataBits = 8
	}
	if cs.dataBits < 5 || cs.dataBits > 8 {
		errs = append(errs, fmt.Errorf("%s.data_bits: must be 5, 6, 7 or 8, got %d", prefix, c.DataBits))
	}
	switch strings.ToLower(c.Parity) {
	case "", "none", "n":
		cs.parity = 0
	case "even", "e":
		cs.parity = 1
	case "odd", "o":
		cs.parity = 2
	default:
		errs = append(errs, fmt.Errorf("%s.parity: unknown %q (want none, even or odd)", prefix, c.Parity))
	}
	cs.stopBits = c.StopBits
	if cs.stopBits != 0 && cs.stopBits != 1 && cs.stopBits != 2 {
		errs = append(errs, fmt.Errorf("%s.stop_bits: must be 1 or 2, got %d", prefix, c.StopBits))
	}
	if c.PauseBetweenPolls < 0 {
		errs = append(errs, fmt.Errorf("%s.pause_between_polls: must be >= 0, got %s", prefix, c.PauseBetweenPolls))
	}
	switch {
	case cs.scheme == "tcp+tls" && c.TLS == nil:
		errs = append(errs, fmt.Errorf("%s.tls: required for tcp+tls:// (ca_file, cert_file and key_file)", prefix))
	case c.TLS != nil && cs.scheme != "tcp+tls" && cs.scheme != "":
		errs = append(errs, fmt.Errorf("%s.tls: only tcp+tls:// endpoints use TLS (endpoint is %s://)", prefix, cs.scheme))
	case c.TLS != nil:
		for _, f := range []struct{ key, path string }{{"ca_file", c.TLS.CAFile}, {"cert_file", c.TLS.CertFile}, {"key_file", c.TLS.KeyFile}} {
			if f.path == "" {
				errs = append(errs, fmt.Errorf("%s.tls.%s: required (Modbus/TCP Security authenticates both ends by certificate)", prefix, f.key))
			} else if _, err := os.Stat(f.path); err != nil {
				errs = append(errs, fmt.Errorf("%s.tls.%s: %v", prefix, f.key, err))
			}
		}
		cs.tls = c.TLS
	}
	return cs, errs
}

func loadProfileFile(path string) (map[string]ProfileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ret, err := confmap.NewRetrievedFromYAML(data)
	if err != nil {
		return nil, err
	}
	conf, err := ret.AsConf()
	if err != nil {
		return nil, err
	}
	var file struct {
		Profiles map[string]ProfileConfig `mapstructure:"profiles"`
	}
	if err := conf.Unmarshal(&file); err != nil {
		return nil, err
	}
	if len(file.Profiles) == 0 {
		return nil, errors.New("no profiles: the file needs a top-level `profiles:` map")
	}
	return file.Profiles, nil
}

// mergeFields applies a device's fields over its profile's: a field named like a profile field patches
// it (keys set in the device win, attributes are merged); others are added.
func mergeFields(profile, own []FieldConfig, exclude []string, prefix string) ([]FieldConfig, []error) {
	var errs []error
	out := make([]FieldConfig, 0, len(profile)+len(own))
	index := map[string]int{}
	for _, f := range profile {
		index[f.Name] = len(out)
		out = append(out, f)
	}
	patched := map[string]bool{}
	for _, f := range own {
		j, ok := index[f.Name]
		if !ok || f.Name == "" || patched[f.Name] {
			// a new field (a second patch of the same name is reported as a duplicate)
			out = append(out, f)
			continue
		}
		patched[f.Name] = true
		out[j] = patchField(out[j], f)
	}
	for i, name := range exclude {
		j, ok := index[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%sexclude_fields[%d]: no field named %q", prefix, i, name))
			continue
		}
		out[j].Skip = true
	}
	kept := out[:0]
	for _, f := range out {
		if !f.Skip {
			kept = append(kept, f)
		}
	}
	return kept, errs
}

func patchField(base, p FieldConfig) FieldConfig {
	if p.Metric != "" {
		base.Metric = p.Metric
	}
	if p.Description != "" {
		base.Description = p.Description
	}
	if p.Register != 0 {
		base.Register, base.Address, base.Table = p.Register, nil, ""
	}
	if p.Address != nil {
		base.Address, base.Register = p.Address, 0
	}
	if p.Table != "" {
		base.Table = p.Table
	}
	if p.Type != "" {
		base.Type = p.Type
	}
	if p.Bit != nil {
		base.Bit = p.Bit
	}
	if p.Byte != "" {
		base.Byte = p.Byte
	}
	if p.Length != 0 {
		base.Length = p.Length
	}
	if p.ByteOrder != "" {
		base.ByteOrder = p.ByteOrder
	}
	if p.Scale != nil {
		base.Scale = p.Scale
	}
	if p.Offset != nil {
		base.Offset = p.Offset
	}
	if p.ScaleFactor != "" {
		base.ScaleFactor = p.ScaleFactor
	}
	if p.InvalidValues != nil {
		base.InvalidValues = p.InvalidValues
	}
	if p.Unit != "" {
		base.Unit = p.Unit
	}
	if p.Kind != "" {
		base.Kind = p.Kind
	}
	if p.StringAs != "" {
		base.StringAs = p.StringAs
	}
	if p.Attribute != "" {
		base.Attribute = p.Attribute
	}
	if len(p.Attributes) > 0 {
		merged := make(map[string]string, len(base.Attributes)+len(p.Attributes))
		for k, v := range base.Attributes {
			merged[k] = v
		}
		for k, v := range p.Attributes {
			merged[k] = v
		}
		base.Attributes = merged
	}
	base.Skip = base.Skip || p.Skip
	if p.Internal != nil {
		base.Internal = p.Internal
	}
	return base
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

// blockSpec is a validated explicit read.
type blockSpec struct {
	table Table
	start int // offset applied
	count int
}

func (b blockSpec) String() string {
	if b.count == 1 {
		return fmt.Sprintf("%s %d", b.table, b.start)
	}
	return fmt.Sprintf("%s %d–%d", b.table, b.start, b.start+b.count-1)
}

// resolveBlocks validates explicit blocks (key names them in errors: requests.blocks, or the profile's)
// and checks that every field lies inside one of them.
func resolveBlocks(cfgs []BlockConfig, regOffset int, fields []fieldSpec, prefix, key string) ([]blockSpec, []error) {
	var errs []error
	if len(cfgs) == 0 {
		return nil, []error{fmt.Errorf("%s%s: empty; list the reads the device answers (table, address, count), or leave blocks out to let the receiver plan the reads", prefix, key)}
	}
	blocks := make([]blockSpec, 0, len(cfgs))
	valid := make([]bool, 0, len(cfgs))
	for i, c := range cfgs {
		bp := fmt.Sprintf("%s%s[%d]: ", prefix, key, i)
		n := len(errs)
		b := blockSpec{table: c.Table, count: c.Count}
		switch {
		case c.Register != 0 && c.Address != nil:
			errs = append(errs, fmt.Errorf("%saddress and register: give one (address is 0-based, register is the Modicon reference)", bp))
		case c.Register != 0:
			t, a, err := modicon(c.Register)
			if err != nil {
				errs = append(errs, fmt.Errorf("%sregister: %v", bp, err))
			} else if c.Table != "" && c.Table != t {
				errs = append(errs, fmt.Errorf("%stable: %q contradicts register %d (a %s reference)", bp, c.Table, c.Register, t))
			}
			b.table, b.start = t, a
		case c.Address != nil:
			b.start = *c.Address
		default:
			errs = append(errs, fmt.Errorf("%saddress: required (0-based address of the first register, or register: the Modicon reference)", bp))
		}
		if b.table == "" {
			b.table = TableHolding
		}
		b.start += regOffset
		switch {
		case !b.table.valid():
			errs = append(errs, fmt.Errorf("%stable: unknown %q (want holding, input, coil or discrete)", bp, c.Table))
		case b.table.bits() && (b.count < 1 || b.count > maxBitsPerRead):
			errs = append(errs, fmt.Errorf("%scount: must be between 1 and %d bits, got %d", bp, maxBitsPerRead, b.count))
		case !b.table.bits() && (b.count < 1 || b.count > maxRegistersPerRead):
			errs = append(errs, fmt.Errorf("%scount: must be between 1 and %d registers, got %d", bp, maxRegistersPerRead, b.count))
		case b.start < 0 || b.start+b.count-1 > 65535:
			errs = append(errs, fmt.Errorf("%saddress: %d (with register_offset) to %d is outside 0–65535", bp, b.start, b.start+b.count-1))
		}
		ok := len(errs) == n
		for j := range blocks {
			o := blocks[j]
			if ok && valid[j] && o.table == b.table && b.start < o.start+o.count && o.start < b.start+b.count {
				errs = append(errs, fmt.Errorf("%soverlaps %s[%d] (%s and %s); a register belongs to one block", bp, key, j, b, o))
				ok = false
			}
		}
		blocks = append(blocks, b)
		valid = append(valid, ok)
	}
	var usable []blockSpec
	for i, b := range blocks {
		if valid[i] {
			usable = append(usable, b)
		}
	}
	if len(usable) == 0 {
		return nil, errs
	}
	for i := range fields {
		f := &fields[i]
		if !f.table.valid() || f.count < 1 || f.address < 0 || f.address+f.count-1 > 65535 {
			continue // reported by buildFields
		}
		if blockOf(usable, f) < 0 {
			var list []string
			for _, b := range usable {
				list = append(list, b.String())
			}
			errs = append(errs, fmt.Errorf("%sfields[%d] %q: %s is not inside any of %s (%s); with explicit blocks every field must lie inside one",
				prefix, i, f.name, blockSpec{table: f.table, start: f.address, count: f.count}, key, strings.Join(list, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return blocks, nil
}

// blockOf returns the index of the block holding the whole of field f, or -1.
func blockOf(blocks []blockSpec, f *fieldSpec) int {
	for i, b := range blocks {
		if b.table == f.table && f.address >= b.start && f.address+f.count <= b.start+b.count {
			return i
		}
	}
	return -1
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
	scale       float64
	offset      float64
	scaleFactor int // index of the scale-factor field, -1 if none
	invalid     []int64
	unit        string
	kind        Kind
	attributes  map[string]string
	stringAs    string
	attribute   string
	internal    bool
}

func healthMetric(name string) bool {
	switch name {
	case device.MetricUp, device.MetricPollDuration, device.MetricPollErrors, device.MetricRequests, device.MetricBreakerState:
		return true
	}
	return false
}

// buildFields validates fields and resolves them into specs.
func buildFields(fields []FieldConfig, order ByteOrder, regOffset int, req requestSpec, prefix string) ([]fieldSpec, []error) {
	var errs []error
	specs := make([]fieldSpec, 0, len(fields))
	byName := map[string]int{}
	type metricInfo struct {
		unit, field string
		kind        Kind
	}
	metrics := map[string]metricInfo{}
	seriesSeen := map[string]string{}
	valid := make([]bool, 0, len(fields))
	for i, f := range fields {
		fp := fmt.Sprintf("%sfields[%d]", prefix, i)
		if f.Name != "" {
			fp += fmt.Sprintf(" %q", f.Name)
		}
		fp += ": "
		n := len(errs)
		if f.Name == "" {
			errs = append(errs, fmt.Errorf("%sname: required", fp))
		} else if _, dup := byName[f.Name]; dup {
			errs = append(errs, fmt.Errorf("%sname: %q is used by another field of the device", fp, f.Name))
		}
		s := fieldSpec{name: f.Name, metric: orDefault(f.Metric, f.Name), description: f.Description, scale: 1, scaleFactor: -1,
			unit: f.Unit, kind: orDefault(f.Kind, KindGauge), attributes: f.Attributes, stringAs: f.StringAs, attribute: f.Attribute, invalid: f.InvalidValues, internal: f.Internal != nil && *f.Internal}
		if f.Scale != nil {
			s.scale = *f.Scale
		}
		if f.Offset != nil {
			s.offset = *f.Offset
		}
		// Table and address.
		s.table = f.Table
		switch {
		case f.Register != 0 && f.Address != nil:
			errs = append(errs, fmt.Errorf("%saddress and register: give one (address is 0-based, register is the Modicon reference)", fp))
		case f.Register != 0:
			t, a, err := modicon(f.Register)
			if err != nil {
				errs = append(errs, fmt.Errorf("%sregister: %v", fp, err))
			} else if f.Table != "" && f.Table != t {
				errs = append(errs, fmt.Errorf("%stable: %q contradicts register %d (a %s reference)", fp, f.Table, f.Register, t))
			}
			s.table, s.address = t, a
		case f.Address != nil:
			s.address = *f.Address
		default:
			errs = append(errs, fmt.Errorf("%saddress: required (0-based address, or register: the Modicon reference)", fp))
		}
		if s.table == "" {
			s.table = TableHolding
		}
		if !s.table.valid() {
			errs = append(errs, fmt.Errorf("%stable: unknown %q (want holding, input, coil or discrete)", fp, f.Table))
		}
		s.address += regOffset
		// Type.
		s.typ = f.Type
		if s.typ == "" {
			if s.table.bits() {
				s.typ = TypeBool
			} else {
				s.typ = TypeUint16
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
			if s.stringAs == "resource" && strings.HasPrefix(f.Attribute, "device.") && slices.Contains([]string{device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress}, f.Attribute) {
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
		s.order = orDefault(f.ByteOrder, order)
		if !s.order.valid() {
			errs = append(errs, fmt.Errorf("%sbyte_order: unknown %q (want ABCD, CDAB, BADC, DCBA)", fp, f.ByteOrder))
		}
		if s.kind != KindGauge && s.kind != KindSum {
			errs = append(errs, fmt.Errorf("%skind: unknown %q (want gauge or sum)", fp, f.Kind))
		}
		if s.scale == 0 || s.scale != s.scale {
			errs = append(errs, fmt.Errorf("%sscale: must be a non-zero number", fp))
		}
		if s.metric == "" {
			// reported through name
		} else if healthMetric(s.metric) {
			errs = append(errs, fmt.Errorf("%smetric: %q is a health metric of the receiver", fp, s.metric))
		} else if !s.internal && (s.typ != TypeString || s.stringAs == "info") {
			if mi, ok := metrics[s.metric]; ok {
				if mi.unit != s.unit || mi.kind != s.kind {
					errs = append(errs, fmt.Errorf("%smetric: %q is also field %q with unit %q and kind %s; fields sharing a metric need the same unit and kind", fp, s.metric, mi.field, mi.unit, mi.kind))
				}
			} else {
				metrics[s.metric] = metricInfo{unit: s.unit, kind: s.kind, field: f.Name}
			}
			key := s.metric + "{" + attrKey(s.attributes) + "}"
			if prev, ok := seriesSeen[key]; ok {
				errs = append(errs, fmt.Errorf("%sattributes: metric %q with the same attributes is also field %q; give the fields different attributes", fp, s.metric, prev))
			} else {
				seriesSeen[key] = f.Name
			}
		}
		if !s.table.bits() && s.count > req.MaxRegisters {
			errs = append(errs, fmt.Errorf("%stype: %d registers do not fit max_registers %d", fp, s.count, req.MaxRegisters))
		}
		if f.Name != "" {
			if _, dup := byName[f.Name]; !dup {
				byName[f.Name] = i
			}
		}
		valid = append(valid, len(errs) == n)
		specs = append(specs, s)
	}
	// Scale-factor references.
	for i, f := range fields {
		if f.ScaleFactor == "" {
			continue
		}
		fp := fmt.Sprintf("%sfields[%d] %q: ", prefix, i, f.Name)
		j, ok := byName[f.ScaleFactor]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%sscale_factor: no field named %q", fp, f.ScaleFactor))
		case specs[j].typ != TypeInt16 && specs[j].typ != TypeInt8:
			errs = append(errs, fmt.Errorf("%sscale_factor: field %q must be int16 (a power-of-ten exponent), is %s", fp, f.ScaleFactor, specs[j].typ))
		case specs[i].typ == TypeString || specs[i].typ == TypeBool || specs[i].typ == TypeBit:
			errs = append(errs, fmt.Errorf("%sscale_factor: applies only to numbers", fp))
		case specs[j].scaleFactor >= 0 || fields[j].ScaleFactor != "":
			errs = append(errs, fmt.Errorf("%sscale_factor: field %q has a scale factor itself", fp, f.ScaleFactor))
		default:
			specs[i].scaleFactor = j
		}
	}
	// Overlaps: fields of one table may not share registers, except bit fields (different bits) of one register.
	idx := make([]int, 0, len(specs))
	for i := range specs {
		if valid[i] {
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
			if a.table != b.table || a.address+a.count <= b.address {
				if a.table != b.table {
					break
				}
				continue
			}
			if a.typ == TypeBit && b.typ == TypeBit && a.address == b.address && a.bit != b.bit {
				continue
			}
			errs = append(errs, fmt.Errorf("%sfields %q and %q overlap: %s %d–%d and %d–%d", prefix, a.name, b.name, a.table, a.address, a.address+a.count-1, b.address, b.address+b.count-1))
		}
	}
	return specs, errs
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
