// Package cli is the command line of otelcol-iiot-probe: subcommands per protocol, flags, and exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
	probedlt645 "github.com/otelcol-iiot/otelcol-iiot/internal/probe/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/probe/modbus"
	probeopcua "github.com/otelcol-iiot/otelcol-iiot/internal/probe/opcua"
)

const usage = `otelcol-iiot-probe: commissioning help for otelcol-iiot. Each command prints YAML for the
device files of the edge configuration (devices/*.yaml), with what it measured as comments.

  modbus scan   --endpoint tcp://host:port [--units 1-247] [--timeout 300ms] [--max-time 2m]
  modbus check  --endpoint … --unit N --profile NAME|FILE[:NAME] [--id ID]
  modbus find   --endpoint … --unit N --value 230.4 [--range 0-2000] [--table holding,input] [--tolerance T]
  dlt645 scan   --endpoint tcp://host:port|serial:///dev/ttyUSB0 [--baud-rate 2400] [--address A,…]
  opcua browse  --endpoint opc.tcp://host:port [--root ns=0;i=85] [--depth 5] [--security none|auto]

Run a command with -h for its flags. Exit code 0: done; 1: the device could not be reached or the
command failed; 2: bad usage.
`

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] + " " + args[1] {
	case "modbus scan":
		err = modbusScan(args[2:], stdout, stderr)
	case "modbus check":
		err = modbusCheck(args[2:], stdout, stderr)
	case "modbus find":
		err = modbusFind(args[2:], stdout, stderr)
	case "dlt645 scan":
		err = dlt645Scan(args[2:], stdout, stderr)
	case "opcua browse":
		err = opcuaBrowse(args[2:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", strings.Join(args[:2], " "), usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "otelcol-iiot-probe %s %s: %v\n", args[0], args[1], err)
		return 2
	}
	fmt.Fprintf(stderr, "otelcol-iiot-probe %s %s: %v\n", args[0], args[1], err)
	return 1
}

// usageError is a mistake in the command line (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	return nil
}

// modbusFlags are the link flags every modbus command takes.
type modbusFlags struct {
	endpoint *string
	timeout  *time.Duration
	baud     *int
	dataBits *int
	parity   *string
	stopBits *int
}

func addModbusFlags(fs *flag.FlagSet, timeout time.Duration) *modbusFlags {
	return &modbusFlags{
		endpoint: fs.String("endpoint", "", "tcp://host:port, rtuovertcp://host:port or rtu:///dev/ttyUSB0"),
		timeout:  fs.Duration("timeout", timeout, "how long a device has to answer one request"),
		baud:     fs.Int("baud-rate", 0, "serial speed (rtu://: default 9600; rtuovertcp://: the gateway's line speed, to wait out late answers)"),
		dataBits: fs.Int("data-bits", 8, "serial data bits (rtu:// only)"),
		parity:   fs.String("parity", "none", "serial parity: none, even or odd (rtu:// only)"),
		stopBits: fs.Int("stop-bits", 0, "serial stop bits, 1 or 2 (rtu:// only; default 2 without parity, 1 with)"),
	}
}

func (m *modbusFlags) resolve() (probe.Endpoint, modbus.Line, error) {
	ep, err := probe.ParseEndpoint(*m.endpoint, "tcp", "rtuovertcp", "rtu")
	if err != nil {
		return ep, modbus.Line{}, usageError{err}
	}
	var errs []error
	if *m.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: must be > 0, got %s", *m.timeout))
	}
	line := modbus.Line{BaudRate: *m.baud, DataBits: *m.dataBits, Parity: strings.ToLower(*m.parity), StopBits: *m.stopBits}
	if ep.Scheme == "rtu" && line.BaudRate == 0 {
		line.BaudRate = 9600
	}
	if line.BaudRate < 0 || line.BaudRate > 4000000 {
		errs = append(errs, fmt.Errorf("--baud-rate: must be between 1 and 4000000, got %d", line.BaudRate))
	}
	switch line.Parity {
	case "none", "even", "odd":
	default:
		errs = append(errs, fmt.Errorf("--parity: unknown %q (want none, even or odd)", *m.parity))
	}
	if line.DataBits < 5 || line.DataBits > 8 {
		errs = append(errs, fmt.Errorf("--data-bits: must be 5 to 8, got %d", line.DataBits))
	}
	if line.StopBits != 0 && line.StopBits != 1 && line.StopBits != 2 {
		errs = append(errs, fmt.Errorf("--stop-bits: must be 1 or 2, got %d", line.StopBits))
	}
	if len(errs) > 0 {
		return ep, line, usageError{errors.Join(errs...)}
	}
	return ep, line, nil
}

func modbusScan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("modbus scan", stderr)
	mf := addModbusFlags(fs, 300*time.Millisecond)
	units := fs.String("units", "1-247", "unit ids to ask, e.g. 1-247 or 1,3,10-20")
	maxTime := fs.Duration("max-time", 2*time.Minute, "bound on the whole scan; units not asked by then are listed as not tried")
	profiles := fs.String("profiles", "", "identify the devices found: comma-separated profile names or files, or all (every profile in --profile-dir)")
	dirs := fs.String("profile-dir", strings.Join(modbus.ProfileDirs(), ","), "comma-separated directories of profile files")
	if err := parse(fs, args); err != nil {
		return err
	}
	ep, line, err := mf.resolve()
	if err != nil {
		return err
	}
	list, err := probe.ParseRange("--units", *units, 0, 255)
	if err != nil {
		return usageError{err}
	}
	var candidates []*modbus.Profile
	switch *profiles {
	case "":
	case "all":
		if candidates, err = modbus.AllProfiles(strings.Split(*dirs, ",")); err != nil {
			return usageError{fmt.Errorf("--profiles: %w", err)}
		}
	default:
		var errs []error
		for _, name := range strings.Split(*profiles, ",") {
			p, err := modbus.FindProfile(strings.TrimSpace(name), strings.Split(*dirs, ","))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			candidates = append(candidates, p)
		}
		if len(errs) > 0 {
			return usageError{errors.Join(errs...)}
		}
	}
	cfg := modbus.ScanConfig{Endpoint: ep, Line: line, Units: list, Timeout: *mf.timeout, MaxTime: *maxTime}
	res, err := modbus.Scan(cfg)
	if err == nil && len(candidates) > 0 {
		err = modbus.Identify(cfg, res, candidates)
	}
	if res != nil {
		modbus.WriteScan(stdout, cfg, res)
	}
	return err
}

func unitFlag(fs *flag.FlagSet) *int {
	return fs.Int("unit", 1, "unit id of the device (1-247; 0 or 255 on tcp://)")
}

func checkUnit(u int) error {
	if u < 0 || u > 255 {
		return usagef("--unit: must be 0 to 255, got %d", u)
	}
	return nil
}

func modbusCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("modbus check", stderr)
	mf := addModbusFlags(fs, time.Second)
	unit := unitFlag(fs)
	profile := fs.String("profile", "", "a profile name (looked up in --profile-dir), a profile file, or FILE:NAME")
	dirs := fs.String("profile-dir", strings.Join(modbus.ProfileDirs(), ","), "comma-separated directories of profile files")
	id := fs.String("id", "", "device id of the entry printed (default: profile name and unit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ep, line, err := mf.resolve()
	if err != nil {
		return err
	}
	if err := checkUnit(*unit); err != nil {
		return err
	}
	if *profile == "" {
		return usagef("--profile: required (a profile name such as eastron_sdm630, or a profile file)")
	}
	p, err := modbus.FindProfile(*profile, strings.Split(*dirs, ","))
	if err != nil {
		return usageError{err}
	}
	cfg := modbus.CheckConfig{Endpoint: ep, Line: line, Unit: *unit, Timeout: *mf.timeout, Profile: p, DeviceID: *id}
	res, err := modbus.Check(cfg)
	if err != nil {
		return err
	}
	modbus.WriteCheck(stdout, cfg, res)
	return nil
}

func modbusFind(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("modbus find", stderr)
	mf := addModbusFlags(fs, time.Second)
	unit := unitFlag(fs)
	value := fs.String("value", "", "the value the device's display shows, e.g. 230.4")
	tolerance := fs.Float64("tolerance", 0, "largest difference accepted (default: half the last digit of --value plus 0.5 %)")
	rng := fs.String("range", "0-2000", "register addresses to read (0-based), e.g. 0-2000 or 8192-8300")
	tables := fs.String("table", "holding,input", "tables to search: holding, input or both")
	name := fs.String("name", "value", "field name in the entry printed")
	unitName := fs.String("unit-name", "", "UCUM unit of the field printed (V, A, W, kWh …)")
	maxN := fs.Int("max", 20, "most candidates printed")
	if err := parse(fs, args); err != nil {
		return err
	}
	ep, line, err := mf.resolve()
	if err != nil {
		return err
	}
	if err := checkUnit(*unit); err != nil {
		return err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(*value), 64)
	if err != nil {
		return usagef("--value: required, a number as the display shows it (e.g. 230.4), got %q", *value)
	}
	if v == 0 {
		return usagef("--value: 0 matches every empty register; give a value that is not 0")
	}
	addrs, err := probe.ParseRange("--range", *rng, 0, 65535)
	if err != nil {
		return usageError{err}
	}
	if len(addrs) != addrs[len(addrs)-1]-addrs[0]+1 {
		return usagef("--range: give one range (from-to), got %q", *rng)
	}
	var ts []modbus.Table
	for _, t := range strings.Split(*tables, ",") {
		switch tt := modbus.Table(strings.TrimSpace(t)); tt {
		case modbus.Holding, modbus.Input:
			ts = append(ts, tt)
		default:
			return usagef("--table: unknown %q (want holding, input or holding,input)", t)
		}
	}
	tol := *tolerance
	if tol <= 0 {
		tol = modbus.DefaultTolerance(strings.TrimSpace(*value), v)
	}
	cfg := modbus.FindConfig{Endpoint: ep, Line: line, Unit: *unit, Timeout: *mf.timeout, Value: v, Tolerance: tol,
		Tables: ts, From: addrs[0], To: addrs[len(addrs)-1], Name: *name, UnitName: *unitName, Max: *maxN}
	res, err := modbus.Find(cfg)
	if err != nil {
		return err
	}
	modbus.WriteFind(stdout, cfg, res)
	return nil
}

func dlt645Scan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dlt645 scan", stderr)
	endpoint := fs.String("endpoint", "", "tcp://host:port (a transparent serial server) or serial:///dev/ttyUSB0")
	timeout := fs.Duration("timeout", 500*time.Millisecond, "how long a meter has to start answering (the time frames take on the line is added)")
	baud := fs.Int("baud-rate", 0, "line speed (serial: default 2400; tcp: the server's line speed, stretches timeouts)")
	parity := fs.String("parity", "even", "serial parity: even, odd or none")
	stopBits := fs.Int("stop-bits", 1, "serial stop bits")
	addresses := fs.String("address", "", "comma-separated meter addresses to read instead of discovering them (as on the nameplate)")
	version := fs.String("version", "2007,1997", "editions to discover, in order")
	all := fs.Bool("all", false, "read every catalogue identifier (default: energies only for the total and tariffs 1-4)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ep, err := probe.ParseEndpoint(*endpoint, "tcp", "serial")
	if err != nil {
		return usageError{err}
	}
	var errs []error
	if *timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: must be > 0, got %s", *timeout))
	}
	sc := dlt645.DefaultSerialConfig(ep.Address)
	sc.BaudRate, sc.Parity, sc.StopBits = *baud, *parity, *stopBits
	if ep.Scheme == "serial" && sc.BaudRate == 0 {
		sc.BaudRate = 2400
	}
	if sc.BaudRate != 0 || ep.Scheme == "serial" {
		if err := sc.Validate("--"); err != nil {
			errs = append(errs, errors.New(strings.NewReplacer("baud_rate", "baud-rate", "stop_bits", "stop-bits", "data_bits", "data-bits").Replace(err.Error())))
		}
	}
	cfg := probedlt645.ScanConfig{Endpoint: ep, Serial: sc, Timeout: *timeout, All: *all}
	for _, a := range strings.Split(*addresses, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		addr, err := dlt645.ParseAddress(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("--address: %w", err))
			continue
		}
		cfg.Addresses = append(cfg.Addresses, addr)
	}
	for _, v := range strings.Split(*version, ",") {
		ver, err := dlt645.ParseVersion(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("--version: %w", err))
			continue
		}
		cfg.Versions = append(cfg.Versions, ver)
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	res, err := probedlt645.Scan(context.Background(), cfg)
	if err != nil {
		return err
	}
	probedlt645.WriteScan(stdout, cfg, res)
	return nil
}

func opcuaBrowse(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("opcua browse", stderr)
	endpoint := fs.String("endpoint", "", "opc.tcp://host:port")
	root := fs.String("root", "ns=0;i=85", "node id to browse from, ns=… or nsu=<namespace URI>;… (default the Objects folder)")
	depth := fs.Int("depth", 5, "levels of objects below the root")
	maxNodes := fs.Int("max-nodes", 2000, "most variables listed")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of one request")
	id := fs.String("id", "opcua-server", "id of the entry printed")
	security := fs.String("security", "none", "none: browse over an endpoint without security; auto: over the most secure one, with a throw-away client certificate")
	if err := parse(fs, args); err != nil {
		return err
	}
	var errs []error
	if _, err := probe.ParseEndpoint(*endpoint, "opc.tcp"); err != nil {
		errs = append(errs, err)
	}
	if _, err := ua.ParseNodeID(*root); err != nil && !strings.HasPrefix(*root, "nsu=") {
		errs = append(errs, fmt.Errorf("--root: %q is not a node id (e.g. ns=0;i=85 or ns=2;s=Plant): %w", *root, err))
	}
	if *depth < 0 || *depth > 50 {
		errs = append(errs, fmt.Errorf("--depth: must be 0 to 50, got %d", *depth))
	}
	if *timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout: must be > 0, got %s", *timeout))
	}
	if *security != "none" && *security != "auto" {
		errs = append(errs, fmt.Errorf("--security: unknown %q (want none or auto)", *security))
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	cfg := probeopcua.BrowseConfig{Endpoint: *endpoint, Root: *root, Depth: *depth, MaxNodes: *maxNodes, Timeout: *timeout, DeviceID: *id, Secure: *security == "auto"}
	res, err := probeopcua.Browse(context.Background(), cfg)
	if err != nil {
		return err
	}
	return probeopcua.WriteBrowse(stdout, cfg, res)
}
