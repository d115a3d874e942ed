package dlt645receiver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // meters keep local time; gateways may lack a zone database

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// Config is the dlt645 receiver's configuration.
type Config struct {
	// Settings are the poll, breaker and traces defaults of every meter.
	device.Settings `mapstructure:",squash"`
	// Metrics turns each metric of metadata.yaml (the iiot.device.* health metrics) on or off.
	Metrics metadata.MetricsConfig `mapstructure:"metrics"`
	// TimeZone is the IANA zone the meters' clocks keep (e.g. Asia/Shanghai), for the clock drift and
	// time sync. Default: the collector's local zone.
	TimeZone string `mapstructure:"time_zone"`
	// Profiles are named identifier lists that meters refer to (besides the built-in ones).
	Profiles map[string]ProfileConfig `mapstructure:"profiles"`
	// Buses are the serial lines and TCP serial servers, and the meters on each.
	Buses []BusConfig `mapstructure:"buses"`
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

// ProfileConfig is a named, reusable list of identifiers of one meter model.
type ProfileConfig struct {
	// Version is the edition the identifiers are written in: 2007 (default) or 1997.
	Version      string             `mapstructure:"version"`
	Manufacturer string             `mapstructure:"manufacturer"`
	Model        string             `mapstructure:"model"`
	Identifiers  []IdentifierConfig `mapstructure:"identifiers"`
}

// BusConfig is one line of meters: a serial port or a TCP transparent serial server.
type BusConfig struct {
	// Endpoint is serial:///dev/ttyUSB0 or tcp://host:port.
	Endpoint string `mapstructure:"endpoint"`
	// BaudRate, DataBits, Parity and StopBits set the serial line (default 2400 8E1). On tcp:// the
	// baud rate is optional: it tells the receiver how long frames take on the server's own line.
	BaudRate int    `mapstructure:"baud_rate"`
	DataBits int    `mapstructure:"data_bits"`
	Parity   string `mapstructure:"parity"`
	StopBits int    `mapstructure:"stop_bits"`
	// Preamble is the number of FE wake-up bytes before each request (default 4, 0 to 8).
	Preamble *int `mapstructure:"preamble"`
	// InterFrameGap is the least silence between frames on the line (default: 4 character times,
	// at least 5ms, when the line speed is known; else 10ms).
	InterFrameGap time.Duration `mapstructure:"inter_frame_gap"`
	// TimeSync broadcasts the time to the bus's meters (off unless an interval is set).
	TimeSync TimeSyncConfig `mapstructure:"time_sync"`
	// Meters on this bus.
	Meters []MeterConfig `mapstructure:"meters"`
}

// TimeSyncConfig sets the broadcast time sync (control code 08) of a bus.
type TimeSyncConfig struct {
	// Interval between broadcasts; 0 (default) never sends one.
	Interval time.Duration `mapstructure:"interval"`
}

// MeterConfig is one meter on a bus.
type MeterConfig struct {
	// ID is the device.id resource attribute; required and unique in the receiver.
	ID string `mapstructure:"id"`
	// Address is the meter's address as on its nameplate (up to 12 digits), or "discover" to ask the
	// only meter of the bus for it.
	Address string `mapstructure:"address"`
	// Version is 2007 (default, or the profile's) or 1997.
	Version string `mapstructure:"version"`
	// Profile names an identifier list (a built-in one or one of profiles); Identifiers add to it.
	Profile string `mapstructure:"profile"`
	// Identifiers are the data identifiers to read: strings ("0201FF00") or maps with overrides.
	Identifiers []IdentifierConfig `mapstructure:"identifiers"`
	// ExcludeIdentifiers drops identifiers of the profile.
	ExcludeIdentifiers []string          `mapstructure:"exclude_identifiers"`
	Manufacturer       string            `mapstructure:"manufacturer"`
	Model              string            `mapstructure:"model"`
	TimeZone           string            `mapstructure:"time_zone"`
	ResourceAttributes map[string]string `mapstructure:"resource_attributes"`
	// Poll changes the receiver's poll keys for this meter (a key left out is inherited).
	Poll device.PollOverrides `mapstructure:"poll"`
}

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
	Kind string `mapstructure:"kind"`
	// Scale multiplies the value (e.g. a CT ratio for meters that report secondary values).
	Scale *float64 `mapstructure:"scale"`
	// Attributes are added to (or override) the catalogue's data point attributes.
	Attributes map[string]string `mapstructure:"attributes"`
}

// UnmarshalText lets an identifier be given as a plain string.
func (c *IdentifierConfig) UnmarshalText(b []byte) error {
	*c = IdentifierConfig{DI: string(b)}
	return nil
}

// Validate reports every problem of the configuration, naming each key.
func (cfg *Config) Validate() error {
	_, err := cfg.resolve()
	return err
}

// busSpec is one bus with its meters, resolved.
type busSpec struct {
	endpoint string
	scheme   string // tcp or serial
	address  string // host:port or device path
	serial   dlt645.SerialConfig
	charTime time.Duration
	preamble int
	gap      time.Duration
	timeSync time.Duration
	location *time.Location
	meters   []meterSpec
}

// meterSpec is one meter with its profile, overrides and defaults applied.
type meterSpec struct {
	identity device.Identity
	address  dlt645.Address
	discover bool
	version  dlt645.Version
	poll     device.PollConfig
	location *time.Location
	reads    []readSpec
	clock    clockSpec
}

// readSpec is one request: a single identifier or a block.
type readSpec struct {
	di    dlt645.DI
	block bool
	parts []partSpec
}

// partSpec is one reading: a value of a reply.
type partSpec struct {
	entry       dlt645.Entry
	scale       float64
	description string
}

// clockSpec is how the meter's clock is read: date and time, or one date-time identifier.
type clockSpec struct {
	date, time, dateTime dlt645.DI
	enabled              bool
}

var deviceKeys = []string{device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress, device.AttrDeviceManufacturer, device.AttrDeviceModelName}

// resolve validates the configuration and returns the buses to poll.
func (cfg *Config) resolve() ([]busSpec, error) {
	var errs []error
	add := func(e ...error) {
		for _, x := range e {
			if x != nil {
				errs = append(errs, x)
			}
		}
	}
	add(cfg.Settings.Validate(""))
	defaultLoc, err := loadLocation(cfg.TimeZone)
	if err != nil {
		add(fmt.Errorf("time_zone: %w", err))
	}

	profiles := builtinProfiles()
	names := make([]string, 0, len(cfg.Profiles))
	for name := range cfg.Profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	badProfile := map[string]bool{}
	for _, name := range names {
		p := cfg.Profiles[name]
		prefix := fmt.Sprintf("profiles::%s: ", name)
		var perrs []error
		v := dlt645.V2007
		if p.Version != "" {
			if v, err = dlt645.ParseVersion(p.Version); err != nil {
				perrs = append(perrs, fmt.Errorf("%sversion: %w", prefix, err))
			}
		}
		if len(p.Identifiers) == 0 {
			perrs = append(perrs, fmt.Errorf("%sidentifiers: a profile needs at least one identifier", prefix))
		}
		if len(perrs) == 0 {
			_, _, ierrs := buildReads(v, p.Identifiers, nil, prefix)
			perrs = append(perrs, ierrs...)
		}
		if len(perrs) > 0 {
			badProfile[name] = true
			add(perrs...)
		}
		profiles[name] = profile{version: v, versionSet: p.Version != "", manufacturer: p.Manufacturer, model: p.Model, identifiers: p.Identifiers}
	}
	known := make([]string, 0, len(profiles))
	for name := range profiles {
		known = append(known, name)
	}
	sort.Strings(known)

	if len(cfg.Buses) == 0 {
		add(errors.New("buses: at least one bus with meters is required"))
	}
	ids := device.IDs{}
	var buses []busSpec
	for bi, b := range cfg.Buses {
		bprefix := fmt.Sprintf("buses[%d]", bi)
		bs, berrs := resolveBus(b, bprefix)
		add(berrs...)
		bs.location = defaultLoc
		if len(b.Meters) == 0 {
			add(fmt.Errorf("%s.meters: at least one meter is required", bprefix))
		}
		addresses := map[dlt645.Address]string{}
		for mi, m := range b.Meters {
			var merrs []error
			mprefix, err := ids.Check(fmt.Sprintf("%s.meters[%d]", bprefix, mi), m.ID)
			if err != nil {
				merrs = append(merrs, err)
			}
			spec := meterSpec{location: defaultLoc}
			switch strings.TrimSpace(strings.ToLower(m.Address)) {
			case "":
				merrs = append(merrs, fmt.Errorf("%saddress: required (up to 12 digits as on the nameplate, or \"discover\")", mprefix))
			case "discover":
				spec.discover = true
				if len(b.Meters) != 1 {
					merrs = append(merrs, fmt.Errorf("%saddress: \"discover\" needs the meter to be alone on its bus (this bus has %d meters)", mprefix, len(b.Meters)))
				}
			default:
				a, err := dlt645.ParseAddress(m.Address)
				switch {
				case err != nil:
					merrs = append(merrs, fmt.Errorf("%saddress: %w", mprefix, err))
				case a == dlt645.BroadcastAddress || slices.Contains(a[:], 0xAA):
					merrs = append(merrs, fmt.Errorf("%saddress: %s is a broadcast or wildcard address, not a meter's", mprefix, a))
				default:
					if prev, ok := addresses[a]; ok {
						merrs = append(merrs, fmt.Errorf("%saddress: %s is already used on this bus by %s", mprefix, a, prev))
					}
					addresses[a] = fmt.Sprintf("meters[%d]", mi)
					spec.address = a
				}
			}

			var prof profile
			if m.Profile != "" {
				p, ok := profiles[m.Profile]
				switch {
				case !ok:
					merrs = append(merrs, fmt.Errorf("%sprofile: unknown %q (known: %s)", mprefix, m.Profile, strings.Join(known, ", ")))
				case badProfile[m.Profile]:
					merrs = append(merrs, fmt.Errorf("%sprofile: %q has errors (reported above)", mprefix, m.Profile))
				default:
					prof = p
				}
			}
			spec.version = dlt645.V2007
			switch {
			case m.Version != "":
				v, err := dlt645.ParseVersion(m.Version)
				if err != nil {
					merrs = append(merrs, fmt.Errorf("%sversion: %w", mprefix, err))
				} else {
					spec.version = v
				}
				if prof.versionSet && v != prof.version && err == nil {
					merrs = append(merrs, fmt.Errorf("%sversion: %s, but profile %q is written for %s", mprefix, v, m.Profile, prof.version))
				}
			case prof.versionSet:
				spec.version = prof.version
			}
			if m.TimeZone != "" {
				loc, err := loadLocation(m.TimeZone)
				if err != nil {
					merrs = append(merrs, fmt.Errorf("%stime_zone: %w", mprefix, err))
				} else {
					spec.location = loc
				}
			}
			if err := m.Poll.Validate(mprefix+"poll.", cfg.Poll); err != nil {
				merrs = append(merrs, err)
			}
			spec.poll = cfg.Poll.Override(m.Poll)
			for k := range m.ResourceAttributes {
				if slices.Contains(deviceKeys, k) {
					merrs = append(merrs, fmt.Errorf("%sresource_attributes: %q is set by the receiver (use id, manufacturer or model)", mprefix, k))
				}
			}

			idents := prof.identifiersFor(spec.version)
			exclude := map[dlt645.DI]bool{}
			for i, s := range m.ExcludeIdentifiers {
				di, err := dlt645.ParseDI(spec.version, s)
				if err != nil {
					merrs = append(merrs, fmt.Errorf("%sexclude_identifiers[%d]: %w", mprefix, i, err))
					continue
				}
				exclude[di] = true
			}
			all := append(slices.Clone(idents), m.Identifiers...)
			reads, clock, ierrs := buildReads(spec.version, all, exclude, mprefix)
			merrs = append(merrs, ierrs...)
			if len(reads) == 0 && !clock.enabled && len(ierrs) == 0 {
				merrs = append(merrs, fmt.Errorf("%sidentifiers: the meter has nothing to read (give a profile or identifiers)", mprefix))
			}
			if len(merrs) > 0 {
				add(merrs...)
				continue
			}
			spec.reads, spec.clock = reads, clock
			attrs := map[string]string{}
			for k, v := range m.ResourceAttributes {
				attrs[k] = v
			}
			addr := bs.endpoint
			if !spec.discover {
				addr = fmt.Sprintf("%s/%s", strings.TrimSuffix(bs.endpoint, "/"), spec.address)
				attrs[attrMeterAddress] = spec.address.String()
			}
			attrs[attrVersion] = spec.version.String()
			spec.identity = device.Identity{
				ID:           m.ID,
				Protocol:     device.ProtocolDLT645,
				Address:      addr,
				Manufacturer: orDefault(m.Manufacturer, prof.manufacturer),
				Model:        orDefault(m.Model, prof.model),
				Attributes:   attrs,
			}
			bs.meters = append(bs.meters, spec)
		}
		buses = append(buses, bs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return buses, nil
}

// Resource attributes of a meter besides the device.* ones.
const (
	attrMeterAddress = "dlt645.meter.address"
	attrVersion      = "dlt645.version"
)

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as Asia/Shanghai, or UTC)", name)
	}
	return loc, nil
}

func resolveBus(b BusConfig, prefix string) (busSpec, []error) {
	bs := busSpec{endpoint: b.Endpoint, timeSync: b.TimeSync.Interval, preamble: 4}
	var errs []error
	u, err := url.Parse(b.Endpoint)
	switch {
	case b.Endpoint == "":
		errs = append(errs, fmt.Errorf("%s.endpoint: required (serial:///dev/ttyUSB0 or tcp://host:port)", prefix))
	case err != nil:
		errs = append(errs, fmt.Errorf("%s.endpoint: %q is not a URL: %v", prefix, b.Endpoint, err))
	default:
		bs.scheme = u.Scheme
		switch u.Scheme {
		case "tcp":
			host, port, err := net.SplitHostPort(u.Host)
			if err != nil || host == "" || (u.Path != "" && u.Path != "/") {
				errs = append(errs, fmt.Errorf("%s.endpoint: %q must be tcp://host:port", prefix, b.Endpoint))
				break
			}
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				errs = append(errs, fmt.Errorf("%s.endpoint: port %q must be a number from 1 to 65535", prefix, port))
			}
			bs.address = u.Host
		case "serial":
			if u.Host != "" || u.Path == "" {
				errs = append(errs, fmt.Errorf("%s.endpoint: %q must be serial:///path/to/device (three slashes)", prefix, b.Endpoint))
			}
			bs.address = u.Path
		default:
			errs = append(errs, fmt.Errorf("%s.endpoint: unknown scheme %q in %q (want serial or tcp)", prefix, u.Scheme, b.Endpoint))
		}
	}
	sc := dlt645.DefaultSerialConfig(bs.address)
	if b.BaudRate != 0 {
		sc.BaudRate = b.BaudRate
	}
	if b.DataBits != 0 {
		sc.DataBits = b.DataBits
	}
	if b.Parity != "" {
		sc.Parity = b.Parity
	}
	if b.StopBits != 0 {
		sc.StopBits = b.StopBits
	}
	if bs.scheme == "serial" || b.BaudRate != 0 {
		sc.Device = orDefault(sc.Device, "-") // the endpoint error, if any, is reported above
		if err := sc.Validate(prefix + "."); err != nil {
			errs = append(errs, err)
		}
		bs.charTime = sc.CharTime()
	} else if b.DataBits != 0 || b.Parity != "" || b.StopBits != 0 {
		errs = append(errs, fmt.Errorf("%s: data_bits, parity and stop_bits are set by the serial server on tcp://; remove them", prefix))
	}
	bs.serial = sc
	if b.Preamble != nil {
		bs.preamble = *b.Preamble
		if bs.preamble < 0 || bs.preamble > 8 {
			errs = append(errs, fmt.Errorf("%s.preamble: must be between 0 and 8 wake-up bytes, got %d", prefix, bs.preamble))
		}
	}
	switch {
	case b.InterFrameGap < 0:
		errs = append(errs, fmt.Errorf("%s.inter_frame_gap: must be >= 0, got %s", prefix, b.InterFrameGap))
	case b.InterFrameGap > 0:
		bs.gap = b.InterFrameGap
	case bs.charTime > 0: // serial, or tcp with the server's line speed given
		bs.gap = max(4*bs.charTime, 5*time.Millisecond)
	default:
		bs.gap = 10 * time.Millisecond
	}
	if b.TimeSync.Interval < 0 || (b.TimeSync.Interval > 0 && b.TimeSync.Interval < time.Minute) {
		errs = append(errs, fmt.Errorf("%s.time_sync.interval: must be 0 (off) or at least 1m, got %s", prefix, b.TimeSync.Interval))
	}
	return bs, errs
}

// buildReads turns identifier configs into requests. The meter's clock identifiers are set aside
// for the drift; exclude drops identifiers.
func buildReads(v dlt645.Version, idents []IdentifierConfig, exclude map[dlt645.DI]bool, prefix string) ([]readSpec, clockSpec, []error) {
	var errs []error
	var reads []readSpec
	var clock clockSpec
	type seriesKey struct{ metric, attrs string }
	seenSeries := map[seriesKey]string{}
	type shape struct {
		unit string
		kind dlt645.Kind
	}
	metricShape := map[string]shape{}
	cat := dlt645.Builtin()
	// A later entry for the same identifier (the meter's own) replaces an earlier one (the
	// profile's) in its place.
	type item struct {
		index int
		di    dlt645.DI
		ic    IdentifierConfig
	}
	var items []item
	pos := map[dlt645.DI]int{}
	for i, ic := range idents {
		di, err := dlt645.ParseDI(v, ic.DI)
		if err != nil {
			errs = append(errs, fmt.Errorf("%sidentifiers[%d]: %w", prefix, i, err))
			continue
		}
		if exclude[di] {
			continue
		}
		if j, ok := pos[di]; ok {
			items[j] = item{i, di, ic}
			continue
		}
		pos[di] = len(items)
		items = append(items, item{i, di, ic})
	}
	for _, it := range items {
		di, ic := it.di, it.ic
		p := fmt.Sprintf("%sidentifiers[%d] %s: ", prefix, it.index, di.Format(v))
		var entries []dlt645.Entry
		block := false
		if e, ok := cat.Lookup(v, di); ok {
			entries = []dlt645.Entry{e}
		} else if members, ok := cat.Block(v, di); ok {
			entries, block = members, true
		} else {
			if ic.Format == "" || ic.Metric == "" {
				errs = append(errs, fmt.Errorf("%snot in the DL/T 645-%s catalogue: give format (e.g. XXX.XX) and metric (and unit, kind)", p, v))
				continue
			}
			entries = []dlt645.Entry{{Version: v, DI: di, Name: "identifier " + di.Format(v), Kind: dlt645.Gauge}}
		}
		if entries[0].Kind == dlt645.ClockPart {
			if ic.Metric != "" || ic.Format != "" || ic.Scale != nil || ic.Kind != "" || len(ic.Attributes) > 0 {
				errs = append(errs, fmt.Errorf("%sthe meter clock yields the dlt645.meter.clock.drift metric and takes no overrides", p))
				continue
			}
			switch entries[0].Format.Kind {
			case dlt645.Date:
				clock.date = di
			case dlt645.TimeOfDay:
				clock.time = di
			case dlt645.DateTime:
				clock.dateTime = di
			}
			continue
		}
		var over []error
		var format *dlt645.Format
		if ic.Format != "" {
			signed := false
			if ic.Signed != nil {
				signed = *ic.Signed
			} else if !block && len(entries) == 1 {
				signed = entries[0].Format.Signed
			}
			f, err := dlt645.ParseFormat(ic.Format, signed)
			switch {
			case err != nil:
				over = append(over, fmt.Errorf("%sformat: %w", p, err))
			case f.Kind != dlt645.Number:
				over = append(over, fmt.Errorf("%sformat: %q is a clock format; readings need a number format such as XXX.XX", p, ic.Format))
			default:
				format = &f
			}
		}
		var kind *dlt645.Kind
		if ic.Kind != "" {
			k, err := dlt645.ParseKind(ic.Kind)
			if err != nil {
				over = append(over, fmt.Errorf("%s%w", p, err))
			} else {
				kind = &k
			}
		}
		scale := 1.0
		if ic.Scale != nil {
			scale = *ic.Scale
			if scale == 0 {
				over = append(over, fmt.Errorf("%sscale: must not be 0", p))
			}
		}
		if ic.Metric != "" && !validMetricName(ic.Metric) {
			over = append(over, fmt.Errorf("%smetric: %q is not a metric name (letters, digits, '.', '_', '-', '/'; starting with a letter)", p, ic.Metric))
		}
		if len(over) > 0 {
			errs = append(errs, over...)
			continue
		}
		r := readSpec{di: di, block: block}
		for _, e := range entries {
			if format != nil {
				e.Format = *format
			} else if ic.Signed != nil {
				e.Format.Signed = *ic.Signed
			}
			if kind != nil {
				e.Kind = *kind
			}
			if ic.Metric != "" {
				e.Metric = ic.Metric
			}
			if ic.Unit != "" {
				e.Unit = ic.Unit
			}
			if e.Unit == "" {
				e.Unit = "1"
			}
			if len(ic.Attributes) > 0 {
				e.Attributes = mergeAttrs(e.Attributes, ic.Attributes)
			}
			key := seriesKey{e.Metric, attrString(e.Attributes)}
			if prev, ok := seenSeries[key]; ok {
				errs = append(errs, fmt.Errorf("%smetric %s{%s} is already read by %s; give different attributes", p, e.Metric, key.attrs, prev))
				continue
			}
			seenSeries[key] = di.Format(v)
			s := shape{e.Unit, e.Kind}
			if old, ok := metricShape[e.Metric]; ok && old != s {
				errs = append(errs, fmt.Errorf("%smetric %s: unit %q and kind %s differ from another identifier's (%q, %s)", p, e.Metric, s.unit, s.kind, old.unit, old.kind))
				continue
			}
			metricShape[e.Metric] = s
			r.parts = append(r.parts, partSpec{entry: e, scale: scale, description: ic.Description})
		}
		reads = append(reads, r)
	}
	switch {
	case clock.dateTime != 0:
		clock.enabled = true
	case clock.date != 0 && clock.time != 0:
		clock.enabled = true
	case clock.date != 0 || clock.time != 0:
		errs = append(errs, fmt.Errorf("%sidentifiers: the meter clock needs both the date and the time identifier (%s)", prefix, clockPair(v)))
	}
	return reads, clock, errs
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
