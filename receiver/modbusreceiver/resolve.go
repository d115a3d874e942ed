package modbusreceiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/serialbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// connSpec is one connection with its devices.
type connSpec struct {
	endpoint string // as configured
	scheme   string
	address  string // host:port or serial device
	baud     int
	dataBits int
	parity   uint
	stopBits int
	rs485    transport.RS485
	tls      *tls.Config // tcp+tls: the CA pool and the client certificate (reloaded per reload_interval)
	gap      time.Duration
	devices  []deviceSpec
	key      string            // connections[i], for errors naming the connection
	port     *serialbus.Handle // line schemes: joined at Start
	// backupPorts are the owners of the backups' ports (line schemes with endpoints:), joined at Start.
	backupPorts []*serialbus.Handle
	dtuFrame    string // dtu://: rtu, tcp or ascii
	// endpoints are the endpoint and its backups (addresses, as configured): more than one with
	// `endpoints:`; address is the first.
	transport.Backups
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

// resolve turns the configuration into the connections and devices to poll, reading the profile files
// and loading the TLS certificates: once, when the receiver is created.
func (cfg *Config) resolve() ([]connSpec, error) { return cfg.compile(true) }

// compile checks the configuration and, when it is valid, returns what it resolves to. atCreation
// reads files (profile_files, TLS); without it (Validate) devices using a profile that may be in a
// profile file are checked only as far as their own keys go.
func (cfg *Config) compile(atCreation bool) ([]connSpec, error) {
	var errs errList
	errs.add(cfg.Settings.Validate(""))
	errs.add(cfg.Requests.Validate("requests."))
	errs.add(cfg.Report.Validate("report."))
	if cfg.Requests.Blocks != nil {
		errs.add(errors.New("requests.blocks: explicit blocks belong to a profile or a device (the blocks a firmware answers depend on the device model)"))
	}
	defaults := newDefaultRequestSpec().over(cfg.Requests)
	profiles, perrs := cfg.loadProfiles(atCreation, defaults)
	errs.add(perrs...)
	if len(cfg.Connections) == 0 {
		errs.add(errors.New("connections: at least one connection with devices is required"))
	}
	r := resolver{poll: cfg.Poll, report: cfg.Report, defaults: defaults, profiles: profiles, ids: device.IDs{}}
	conns := make([]connSpec, 0, len(cfg.Connections))
	ports := map[string]string{}
	dtus := map[string]string{} // DTU id → the connection bound to it
	for ci, c := range cfg.Connections {
		cs, cerrs := resolveConnection(c, fmt.Sprintf("connections[%d]", ci), atCreation)
		errs.add(cerrs...)
		if cs.scheme == schemeDTU && cs.address != "" {
			errs.add(cfg.bindDTU(&cs, dtus))
		}
		if lineScheme(cs.scheme) && cs.address != "" {
			// One port is one bus: its devices belong under one connection, polled one at a time. A
			// backup's port is the connection's too (its requests go under the first port's turns).
			for i, addr := range cs.lineAddresses() {
				key := serialbus.Key(cs.scheme == schemeRTU || cs.scheme == schemeASCII, addr)
				where, owner := fmt.Sprintf("connections[%d].endpoint", ci), fmt.Sprintf("connections[%d]", ci)
				if len(cs.Addresses) > 0 {
					where = fmt.Sprintf("connections[%d].endpoints[%d]", ci, i)
					owner = where
				}
				if prev, ok := ports[key]; ok {
					errs.add(fmt.Errorf("%s: %s is the port of %s too (one connection per serial port or serial server: list every device under one)", where, addr, prev))
				}
				ports[key] = owner
			}
		}
		errs.add(r.devices(&cs, c, fmt.Sprintf("connections[%d]", ci))...)
		conns = append(conns, cs)
	}
	switch {
	case cfg.DTU.Endpoint != "":
		errs.add(cfg.DTU.Validate("dtu."))
		if len(dtus) == 0 {
			errs.add(errors.New("dtu: no connection has a dtu://<id> endpoint; bind connections to DTU ids, or remove dtu.endpoint"))
		}
	case len(dtus) > 0:
		errs.add(errors.New("dtu.endpoint: required by the dtu:// connections: the host:port the DTUs dial (e.g. 127.0.0.1:9000)"))
	}
	if len(errs) > 0 {
		return nil, errs.join()
	}
	return conns, nil
}

// backups checks `endpoints:` and the failover keys (defaults: 3 failed connects, 10m).
func (cs *connSpec) backups(c ConnectionConfig, prefix string) []error {
	var errs []error
	cs.Backups, errs = transport.ResolveBackups(prefix, c.Endpoint, c.Endpoints, c.FailoverAfter, c.FailbackAfter, parseEndpoint)
	return errs
}

// parseEndpoint parses one endpoint: dtu://<id> or one of schemes.
func parseEndpoint(raw string) (transport.Endpoint, error) {
	return dtu.ParseLineEndpoint(raw, schemes...)
}

// bindDTU normalizes the DTU ids of a dtu:// connection and its backups; a DTU is one serial line, so one
// connection per id.
func (cfg *Config) bindDTU(cs *connSpec, dtus map[string]string) error {
	var err error
	cs.address, err = cfg.DTU.BindLine(cs.address, cs.Addresses, cs.key, dtus, "list every device under one connection")
	return err
}

// lineAddresses are the ports of the connection's endpoint and its backups.
func (cs *connSpec) lineAddresses() []string {
	if len(cs.Addresses) > 0 {
		return cs.Addresses
	}
	return []string{cs.address}
}

// dtuIDs are the DTU ids the connections are bound to.
func dtuIDs(conns []connSpec) []string {
	var ids []string
	for _, c := range conns {
		switch {
		case c.scheme != schemeDTU:
		case len(c.Addresses) > 0:
			ids = append(ids, c.Addresses...) // the backups' ids too: the listener accepts only those bound
		default:
			ids = append(ids, c.address)
		}
	}
	return ids
}

// resolveConnection checks a connection's own keys and resolves its endpoint, line and TLS.
func resolveConnection(c ConnectionConfig, prefix string, atCreation bool) (connSpec, []error) {
	cs := connSpec{endpoint: c.Endpoint, gap: c.PauseBetweenPolls, key: prefix}
	var errs []error
	errs = append(errs, cs.backups(c, prefix)...)
	if len(c.Endpoints) > 0 {
		c.Endpoint = c.Endpoints[0]
		cs.endpoint = c.Endpoint
	}
	if c.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%s.endpoint: required (tcp://host:port, rtuovertcp://host:port, tcp+tls://host:port, rtu:///dev/ttyX, ascii:///dev/ttyX, asciiovertcp://host:port, udp://host:port or dtu://<id>)", prefix))
	} else if id, ok, err := dtu.ParseEndpoint(c.Endpoint); ok {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoint: %w", prefix, err))
		}
		cs.scheme, cs.address = schemeDTU, id
	} else {
		ep, err := transport.ParseEndpoint(c.Endpoint, schemes...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoint: %w", prefix, err))
		}
		cs.scheme, cs.address = ep.Scheme, ep.Address
	}
	switch {
	case cs.scheme == schemeDTU:
		cs.dtuFrame = framingRTU
		switch c.Framing {
		case "", framingRTU:
		case framingTCP, framingASCII:
			cs.dtuFrame = c.Framing
		default:
			errs = append(errs, fmt.Errorf("%s.framing: unknown %q (want rtu, tcp or ascii: what the DTU passes on)", prefix, c.Framing))
		}
	case c.Framing != "":
		errs = append(errs, fmt.Errorf("%s.framing: applies only to dtu:// endpoints (the scheme sets the framing of the others)", prefix))
	}
	serial := cs.scheme == schemeRTU || cs.scheme == schemeASCII
	if !serial && c.LineConfig.Framing() {
		errs = append(errs, fmt.Errorf("%s: data_bits, parity and stop_bits apply only to rtu:// and ascii:// endpoints", prefix))
	}
	if err := c.Validate(prefix + "."); err != nil {
		errs = append(errs, err)
	}
	rs485, err := c.ResolveRS485(prefix+".", serial)
	if err != nil {
		errs = append(errs, err)
	}
	cs.rs485 = rs485
	// Defaults: 9600 baud on a serial port, else unknown (0); RTU 8 data bits, no parity; ASCII 7 data
	// bits, even parity (the serial line guide's default); stop bits 2 without parity, 1 with.
	def := transport.Line{DataBits: 8, Parity: transport.ParityNone}
	if serial {
		def.BaudRate = 9600
	}
	if cs.scheme == schemeASCII || cs.scheme == schemeASCIIOverTCP || cs.dtuFrame == framingASCII {
		def.DataBits, def.Parity = 7, transport.ParityEven
	}
	line := def.Over(c.LineConfig)
	cs.baud, cs.dataBits, cs.parity, cs.stopBits = line.BaudRate, line.DataBits, uint(line.Parity), line.StopBits
	if c.PauseBetweenPolls < 0 {
		errs = append(errs, fmt.Errorf("%s.pause_between_polls: must be >= 0, got %s", prefix, c.PauseBetweenPolls))
	}
	terrs := validateTLS(cs.scheme, c.TLS, prefix)
	errs = append(errs, terrs...)
	if atCreation && c.TLS != nil && len(terrs) == 0 {
		t, err := c.TLS.LoadTLSConfig(context.Background())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.tls: %w", prefix, err))
		}
		cs.tls = t
	}
	return cs, errs
}

// resolver resolves the devices of every connection.
type resolver struct {
	poll     device.PollConfig
	report   device.ReportConfig
	defaults requestSpec
	profiles *profileSet
	ids      device.IDs
}

// devices resolves the devices of connection c (named cprefix) into cs.
func (r *resolver) devices(cs *connSpec, c ConnectionConfig, cprefix string) []error {
	var errs errList
	if len(c.Devices) == 0 {
		errs.add(fmt.Errorf("%s.devices: at least one device is required", cprefix))
	}
	units := map[int]string{}
	for di, d := range c.Devices {
		var derrs errList
		dprefix, err := r.ids.Validate(fmt.Sprintf("%s.devices[%d]", cprefix, di), d.ID)
		derrs.add(err)
		scheme := cs.scheme
		if cs.dtuFrame == framingTCP {
			scheme = schemeTCP // Modbus TCP from the DTU on: its units as on tcp://
		}
		unit, err := unitID(d, scheme, units, di, dprefix)
		derrs.add(err)
		derrs.add(d.Validate(dprefix, r.poll)...)
		spec, ok, serrs := r.device(d, dprefix)
		derrs.add(serrs...)
		if len(derrs) > 0 || !ok {
			errs.add(derrs...)
			continue
		}
		if !device.Layer(true, d.Enabled) {
			continue // validated, unit id reserved, not polled
		}
		spec.unitID = uint8(unit)
		spec.identity.Address = fmt.Sprintf("%s/%d", strings.TrimSuffix(cs.endpoint, "/"), unit)
		cs.devices = append(cs.devices, spec)
	}
	return errs
}

// unitID returns the device's unit id, checking its range on the connection's scheme and that no
// other device of the connection set it too (units holds those seen).
func unitID(d DeviceConfig, scheme string, units map[int]string, di int, dprefix string) (int, error) {
	unit := device.Layer(1, d.UnitID)
	tcpLike := scheme == schemeTCP || scheme == schemeTLS || scheme == schemeUDP
	var err error
	switch {
	case unit >= 1 && unit <= 247:
	case tcpLike && (unit == 0 || unit == 255):
	default:
		allowed := "1 to 247"
		if tcpLike {
			allowed = "1 to 247, or 0 or 255 on tcp://, tcp+tls:// and udp://"
		}
		err = fmt.Errorf("%sunit_id: must be %s, got %d", dprefix, allowed, unit)
	}
	if prev, ok := units[unit]; ok && d.UnitID != nil {
		err = errors.Join(err, fmt.Errorf("%sunit_id: %d is already used on this connection by %s", dprefix, unit, prev))
	}
	units[unit] = fmt.Sprintf("devices[%d]", di)
	return unit, err
}

var receiverResourceKeys = []string{device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress, device.AttrDeviceManufacturer, device.AttrDeviceModelName}

// Validate checks the device's own keys, those that do not depend on its profile, named under
// dprefix; poll is the receiver's, which the device's poll keys override.
func (d DeviceConfig) Validate(dprefix string, poll device.PollConfig) []error {
	var errs errList
	errs.add(d.ByteOrder.Validate(dprefix))
	if d.RegisterOffset < -65535 || d.RegisterOffset > 65535 {
		errs.add(fmt.Errorf("%sregister_offset: must be between -65535 and 65535, got %d", dprefix, d.RegisterOffset))
	}
	errs.add(d.Poll.Validate(dprefix+"poll.", poll))
	errs.add(d.Requests.Validate(dprefix + "requests."))
	errs.add(d.Report.Validate(dprefix + "report."))
	for _, k := range slices.Sorted(maps.Keys(d.ResourceAttributes)) {
		if slices.Contains(receiverResourceKeys, k) {
			errs.add(fmt.Errorf("%sresource_attributes: %q is set by the receiver (use id, manufacturer or model)", dprefix, k))
		}
	}
	return errs
}

// device resolves a device over its profile: fields, requests, blocks and identity. ok is false when
// the profile is not known yet (in a profile file Validate does not read) or has errors.
func (r *resolver) device(d DeviceConfig, dprefix string) (spec deviceSpec, ok bool, errs []error) {
	prof, ok, err := r.profiles.lookup(d.Profile, dprefix)
	if !ok {
		if err != nil {
			errs = append(errs, err)
		}
		return deviceSpec{}, false, errs
	}
	fields, ferrs := mergeFields(prof.Fields, d.Fields, d.ExcludeFields, dprefix)
	errs = append(errs, ferrs...)
	if len(fields) == 0 && len(ferrs) == 0 && (d.Profile == "" || prof.Fields != nil) {
		errs = append(errs, fmt.Errorf("%sfields: the device has no fields (give a profile or fields)", dprefix))
	}
	order := device.LayerSet(OrderABCD, prof.ByteOrder, d.ByteOrder)
	req := r.defaults.over(prof.Requests).over(d.Requests).clamped()
	specs, ferrs := buildFields(fields, order, d.RegisterOffset, req, dprefix)
	errs = append(errs, ferrs...)
	// a field's report keys over its device's, over its profile's, over the receiver's
	level := r.report.Over(prof.Report).Over(d.Report)
	for i := range specs {
		specs[i].report = level.Over(specs[i].report)
	}
	var blocks []blockSpec
	if req.Blocks != nil {
		key := "requests.blocks"
		if d.Requests.Blocks == nil {
			key = fmt.Sprintf("profile %q requests.blocks", d.Profile)
		}
		var berrs []error
		blocks, berrs = resolveBlocks(req.Blocks, d.RegisterOffset, specs, dprefix, key)
		errs = append(errs, berrs...)
	}
	return deviceSpec{
		identity: device.Identity{
			ID:           d.ID,
			Protocol:     device.ProtocolModbus,
			Manufacturer: device.LayerSet(prof.Manufacturer, d.Manufacturer),
			Model:        device.LayerSet(prof.Model, d.Model),
			Attributes:   d.ResourceAttributes,
		},
		poll:     r.poll.Override(d.Poll),
		requests: req,
		fields:   specs,
		blocks:   blocks,
	}, true, errs
}
