package dlt645receiver

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/serialbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// busSpec is one bus with its meters, resolved.
type busSpec struct {
	endpoint string
	scheme   string // tcp, serial or dtu
	address  string // host:port, device path or DTU id
	serial   dlt645.SerialConfig
	charTime time.Duration
	rs485    transport.RS485
	preamble int
	gap      time.Duration
	timeSync time.Duration
	location *time.Location
	meters   []meterSpec
	// endpoints: the endpoint and its backups (tcp://), more than one with `endpoints:`.
	transport.Backups
	// discover: the bus is searched for the meters not listed (nil: not searched)
	discover *discoverSpec
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
	report   device.ReportConfig // the meter's report keys (its identifiers' own go over them)
	// loadProfile: the load profile is backfilled (nil: not read)
	loadProfile *loadProfileSpec
}

// Resource attributes of a meter besides the device.* ones.
const (
	attrMeterAddress = "dlt645.meter.address"
	attrVersion      = "dlt645.version"
)

var deviceKeys = []string{device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress, device.AttrDeviceManufacturer, device.AttrDeviceModelName}

// Endpoint schemes.
const (
	schemeTCP    = "tcp"
	schemeSerial = "serial"
	schemeDTU    = "dtu"
)

// schemes are parsed by transport.ParseEndpoint; dtu:// (an id, not an address) is parsed here and only
// named in its errors.
var schemes = []transport.Scheme{{Name: schemeSerial, Serial: true}, {Name: schemeTCP}, {Name: schemeDTU}}

// baudRates are the line speeds DL/T 645 meters use (1200 to 9600) and those of fast converters.
var baudRates = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

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
	add(cfg.Report.Validate("report."))
	defaultLoc, err := loadLocation(cfg.TimeZone)
	if err != nil {
		add(fmt.Errorf("time_zone: %w", err))
	}
	profiles, perrs := resolveProfiles(cfg.Profiles)
	add(perrs...)
	if len(cfg.Buses) == 0 {
		add(errors.New("buses: at least one bus with meters is required"))
	}
	r := meterResolver{poll: cfg.Poll, report: cfg.Report, location: defaultLoc, profiles: profiles, ids: device.IDs{}}
	buses := make([]busSpec, 0, len(cfg.Buses))
	dtus := map[string]string{}  // DTU id → the bus bound to it
	ports := map[string]string{} // serial port or serial server → the bus on it
	for bi, b := range cfg.Buses {
		bprefix := fmt.Sprintf("buses[%d]", bi)
		bs, berrs := resolveBus(b, bprefix)
		add(berrs...)
		if bs.scheme == schemeDTU {
			add(cfg.bindDTU(&bs, dtus, bprefix))
		} else if bs.address != "" {
			// One port is one bus: its meters belong under one bus, polled one at a time. A backup's
			// port is the bus's too.
			for i, addr := range bs.lineAddresses() {
				key := serialbus.Key(bs.scheme == schemeSerial, addr)
				where, owner := bprefix+".endpoint", bprefix
				if len(bs.Addresses) > 0 {
					where = fmt.Sprintf("%s.endpoints[%d]", bprefix, i)
					owner = where
				}
				if prev, ok := ports[key]; ok {
					add(fmt.Errorf("%s: %s is the port of %s too (one bus per serial port or serial server: list every meter under one)", where, addr, prev))
				} else {
					ports[key] = owner
				}
			}
		}
		bs.location = defaultLoc
		if len(b.Meters) == 0 && b.Discover == nil {
			add(fmt.Errorf("%s.meters: at least one meter is required (or discover: to find them)", bprefix))
		}
		addresses := map[dlt645.Address]string{}
		for mi, m := range b.Meters {
			spec, merrs := r.meter(m, &bs, len(b.Meters), addresses, fmt.Sprintf("%s.meters[%d]", bprefix, mi), mi)
			if len(merrs) > 0 {
				add(merrs...)
				continue
			}
			if device.Layer(true, m.Enabled) {
				bs.meters = append(bs.meters, spec)
			}
		}
		if b.Discover != nil {
			ds, derrs := r.discover(*b.Discover, &bs, b.Meters, bprefix, bi)
			add(derrs...)
			bs.discover = ds
		}
		if len(bs.meters) > 0 || bs.discover != nil { // a bus whose meters are all disabled is not opened (no time sync either)
			buses = append(buses, bs)
		}
	}
	switch {
	case cfg.DTU.Endpoint != "":
		add(cfg.DTU.Validate("dtu."))
		if len(dtus) == 0 {
			add(errors.New("dtu: no bus has a dtu://<id> endpoint; bind buses to DTU ids, or remove dtu.endpoint"))
		}
	case len(dtus) > 0:
		add(errors.New("dtu.endpoint: required by the dtu:// buses: the host:port the DTUs dial (e.g. 127.0.0.1:9000)"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return buses, nil
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

// bindDTU normalizes the DTU ids of a dtu:// bus and its backups; a DTU is one serial line, so one bus per id.
func (cfg *Config) bindDTU(bs *busSpec, dtus map[string]string, prefix string) error {
	var err error
	bs.address, err = cfg.DTU.BindLine(bs.address, bs.Addresses, prefix, dtus, "put its meters on one bus")
	return err
}

// dtuIDs are the DTU ids the buses are bound to.
func dtuIDs(buses []busSpec) []string {
	var ids []string
	for _, b := range buses {
		switch {
		case b.scheme != schemeDTU:
		case len(b.Addresses) > 0:
			ids = append(ids, b.Addresses...) // the backups' ids too: the listener accepts only those bound
		default:
			ids = append(ids, b.address)
		}
	}
	return ids
}

// resolveBus checks a bus's own keys and resolves its endpoint, line and timing.
func resolveBus(b BusConfig, prefix string) (busSpec, []error) {
	bs := busSpec{endpoint: b.Endpoint, timeSync: b.TimeSync.Interval, preamble: device.Layer(4, b.Preamble)}
	var errs []error
	errs = append(errs, bs.backups(b, prefix)...)
	if len(b.Endpoints) > 0 {
		b.Endpoint, bs.endpoint = b.Endpoints[0], b.Endpoints[0]
	}
	if b.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%s.endpoint: required (serial:///dev/ttyUSB0, tcp://host:port or dtu://<id>)", prefix))
	} else if id, ok, err := dtu.ParseEndpoint(b.Endpoint); ok {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoint: %w", prefix, err))
		}
		bs.scheme, bs.address = schemeDTU, id
	} else {
		ep, err := transport.ParseEndpoint(b.Endpoint, schemes...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoint: %w", prefix, err))
		}
		bs.scheme, bs.address = ep.Scheme, ep.Address
	}
	// 2400 baud 8E1 is the most common meter setting.
	line := transport.Line{BaudRate: 2400, DataBits: 8, Parity: transport.ParityEven, StopBits: 1}.Over(b.LineConfig)
	if bs.scheme == schemeSerial || b.BaudRate != 0 {
		if err := b.Validate(prefix+".", baudRates...); err != nil {
			errs = append(errs, err)
		}
		bs.charTime = line.CharTime()
	} else if b.Framing() {
		errs = append(errs, fmt.Errorf("%s: data_bits, parity and stop_bits are set by the serial server (or DTU) on %s://; remove them", prefix, bs.scheme))
	}
	rs485, err := b.ResolveRS485(prefix+".", bs.scheme == schemeSerial)
	if err != nil {
		errs = append(errs, err)
	}
	bs.rs485 = rs485
	bs.serial = dlt645.SerialConfig{Device: bs.address, BaudRate: line.BaudRate, DataBits: line.DataBits, Parity: line.Parity.String(), StopBits: line.StopBits}
	if bs.preamble < 0 || bs.preamble > 8 {
		errs = append(errs, fmt.Errorf("%s.preamble: must be between 0 and 8 wake-up bytes, got %d", prefix, bs.preamble))
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

// meterResolver resolves the meters of every bus.
type meterResolver struct {
	poll     device.PollConfig
	report   device.ReportConfig
	location *time.Location
	profiles *profileSet
	ids      device.IDs
}

// meter resolves meter m (the mi-th of its bus, named path) over its profile. addresses holds the
// addresses taken on the bus.
func (r *meterResolver) meter(m MeterConfig, bs *busSpec, onBus int, addresses map[dlt645.Address]string, path string, mi int) (meterSpec, []error) {
	var errs []error
	mprefix, err := r.ids.Validate(path, m.ID)
	if err != nil {
		errs = append(errs, err)
	}
	spec := meterSpec{location: r.location}
	errs = append(errs, spec.resolveAddress(m, onBus, addresses, mprefix, mi)...)
	errs = append(errs, r.meterKeys(&spec, m, bs, mprefix)...)
	if len(errs) > 0 {
		return meterSpec{}, errs
	}
	return spec, nil
}

// meterKeys resolves the keys of meter m besides its id and address into spec.
func (r *meterResolver) meterKeys(spec *meterSpec, m MeterConfig, bs *busSpec, mprefix string) []error {
	var errs []error
	prof, err := r.profiles.lookup(m.Profile, mprefix)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, spec.resolveVersion(m, prof, mprefix)...)
	errs = append(errs, spec.resolveOwnKeys(m, r.poll, mprefix)...)
	reads, clock, rerrs := meterReads(m, prof, spec.version, mprefix)
	errs = append(errs, rerrs...)
	lp, lerrs := m.LoadProfile.resolve(mprefix)
	errs = append(errs, lerrs...)
	if lp != nil && spec.version != dlt645.V2007 {
		errs = append(errs, fmt.Errorf("%sload_profile: needs a DL/T 645-2007 meter (version 2007)", mprefix))
	}
	if len(errs) > 0 {
		return errs
	}
	spec.reads, spec.clock, spec.loadProfile = reads, clock, lp
	// an identifier's report keys over its meter's, over its profile's, over the receiver's
	spec.report = r.report.Over(prof.report).Over(m.Report)
	spec.identity = spec.identityOn(m, prof, bs.endpoint)
	return nil
}

// resolveAddress reads the meter's address, or "discover" (only for the one meter of a bus).
func (s *meterSpec) resolveAddress(m MeterConfig, onBus int, addresses map[dlt645.Address]string, mprefix string, mi int) []error {
	switch strings.TrimSpace(strings.ToLower(m.Address)) {
	case "":
		return []error{fmt.Errorf("%saddress: required (up to 12 digits as on the nameplate, or \"discover\")", mprefix)}
	case "discover":
		s.discover = true
		if onBus != 1 {
			return []error{fmt.Errorf("%saddress: \"discover\" needs the meter to be alone on its bus (this bus has %d meters)", mprefix, onBus)}
		}
		return nil
	}
	a, err := dlt645.ParseAddress(m.Address)
	switch {
	case err != nil:
		return []error{fmt.Errorf("%saddress: %w", mprefix, err)}
	case a == dlt645.BroadcastAddress || slices.Contains(a[:], 0xAA):
		return []error{fmt.Errorf("%saddress: %s is a broadcast or wildcard address, not a meter's", mprefix, a)}
	}
	var errs []error
	if prev, ok := addresses[a]; ok {
		errs = append(errs, fmt.Errorf("%saddress: %s is already used on this bus by %s", mprefix, a, prev))
	}
	addresses[a] = fmt.Sprintf("meters[%d]", mi)
	s.address = a
	return errs
}

// resolveVersion takes the meter's edition, else its profile's, else 2007.
func (s *meterSpec) resolveVersion(m MeterConfig, prof profile, mprefix string) []error {
	s.version = dlt645.V2007
	switch {
	case m.Version != "":
		v, err := dlt645.ParseVersion(m.Version)
		if err != nil {
			return []error{fmt.Errorf("%sversion: %w", mprefix, err)}
		}
		s.version = v
		if prof.versionSet && v != prof.version {
			return []error{fmt.Errorf("%sversion: %s, but profile %q is written for %s", mprefix, v, m.Profile, prof.version)}
		}
	case prof.versionSet:
		s.version = prof.version
	}
	return nil
}

// resolveOwnKeys checks the meter's time zone, poll overrides and resource attributes.
func (s *meterSpec) resolveOwnKeys(m MeterConfig, poll device.PollConfig, mprefix string) []error {
	var errs []error
	if m.TimeZone != "" {
		loc, err := loadLocation(m.TimeZone)
		if err != nil {
			errs = append(errs, fmt.Errorf("%stime_zone: %w", mprefix, err))
		} else {
			s.location = loc
		}
	}
	if err := m.Poll.Validate(mprefix+"poll.", poll); err != nil {
		errs = append(errs, err)
	}
	if err := m.Report.Validate(mprefix + "report."); err != nil {
		errs = append(errs, err)
	}
	s.poll = poll.Override(m.Poll)
	for _, k := range slices.Sorted(maps.Keys(m.ResourceAttributes)) {
		if slices.Contains(deviceKeys, k) {
			errs = append(errs, fmt.Errorf("%sresource_attributes: %q is set by the receiver (use id, manufacturer or model)", mprefix, k))
		}
	}
	return errs
}

// meterReads builds the meter's requests from its profile's identifiers and its own.
func meterReads(m MeterConfig, prof profile, v dlt645.Version, mprefix string) ([]readSpec, clockSpec, []error) {
	var errs []error
	exclude := map[dlt645.DI]bool{}
	for i, s := range m.ExcludeIdentifiers {
		di, err := dlt645.ParseDI(v, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%sexclude_identifiers[%d]: %w", mprefix, i, err))
			continue
		}
		exclude[di] = true
	}
	all := append(slices.Clone(prof.identifiersFor(v)), m.Identifiers...)
	reads, clock, ierrs := buildReads(v, all, exclude, mprefix)
	errs = append(errs, ierrs...)
	if len(reads) == 0 && !clock.enabled && len(ierrs) == 0 && m.LoadProfile == nil {
		errs = append(errs, fmt.Errorf("%sidentifiers: the meter has nothing to read (give a profile, identifiers or load_profile)", mprefix))
	}
	return reads, clock, errs
}

// identityOn is the meter's device identity on the bus at endpoint.
func (s *meterSpec) identityOn(m MeterConfig, prof profile, endpoint string) device.Identity {
	attrs := maps.Clone(m.ResourceAttributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	addr := endpoint
	if !s.discover {
		addr = fmt.Sprintf("%s/%s", strings.TrimSuffix(endpoint, "/"), s.address)
		attrs[attrMeterAddress] = s.address.String()
	}
	attrs[attrVersion] = s.version.String()
	return device.Identity{
		ID:           m.ID,
		Protocol:     device.ProtocolDLT645,
		Address:      addr,
		Manufacturer: device.LayerSet(prof.manufacturer, m.Manufacturer),
		Model:        device.LayerSet(prof.model, m.Model),
		Attributes:   attrs,
	}
}

// backups checks `endpoints:` and the failover keys (defaults: 3 failed connects, 10m).
func (bs *busSpec) backups(b BusConfig, prefix string) []error {
	var errs []error
	bs.Backups, errs = transport.ResolveBackups(prefix, b.Endpoint, b.Endpoints, b.FailoverAfter, b.FailbackAfter, parseEndpoint)
	return errs
}

// parseEndpoint parses one endpoint: dtu://<id>, serial:// or tcp://.
func parseEndpoint(raw string) (transport.Endpoint, error) {
	return dtu.ParseLineEndpoint(raw, schemes...)
}

// lineAddresses are the ports of the bus's endpoint and its backups.
func (bs *busSpec) lineAddresses() []string {
	if len(bs.Addresses) > 0 {
		return bs.Addresses
	}
	return []string{bs.address}
}
