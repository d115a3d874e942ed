package modbus

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
)

// ScanConfig is what `modbus scan` asks.
type ScanConfig struct {
	Endpoint probe.Endpoint
	Line     Line
	Units    []int
	// Timeout is how long each unit has to answer.
	Timeout time.Duration
	// MaxTime bounds the whole scan: units not asked by then are reported as not tried.
	MaxTime time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// UnitResult is what one unit did.
type UnitResult struct {
	Unit    int
	Kind    Kind
	Code    int    // exception code
	Detail  string // the error, or the value read
	Present bool   // the device answered (a value or an exception)
}

// ScanResult is the outcome of a scan.
type ScanResult struct {
	Units    []UnitResult
	NotTried []int
	Elapsed  time.Duration
	Requests int
	// Identified holds, per unit, the profile its registers matched (Identify).
	Identified map[int]*Identification
	// Tried holds, per unit, the score of every profile tried.
	Tried map[int][]Identification
}

// Identification is how well a profile fits a unit: the share of its fields that read a plausible,
// non-zero value. Zero does not count (except for internal scale factors): a register map read at the
// wrong place reads zeros, which are plausible, while a live meter's voltages, currents and energies
// are not zero.
type Identification struct {
	Profile *Profile
	Check   *CheckResult
	Score   float64
}

// MinScore is the least score that identifies a device.
const MinScore = 0.5

// Identify checks every profile against every unit that answered and keeps, per unit, the best profile
// whose score reaches MinScore.
func Identify(cfg ScanConfig, r *ScanResult, profiles []*Profile) error {
	r.Identified, r.Tried = map[int]*Identification{}, map[int][]Identification{}
	for _, u := range r.Present() {
		var best *Identification
		for _, p := range profiles {
			res, err := Check(CheckConfig{Endpoint: cfg.Endpoint, Line: cfg.Line, Unit: u.Unit, Timeout: cfg.Timeout, Profile: p})
			if err != nil {
				var o *Outcome
				if errors.As(err, &o) && o.Kind == KindConnection {
					return err // the link is gone
				}
				// This profile cannot be read from this unit (it stopped answering): it does not fit.
				r.Tried[u.Unit] = append(r.Tried[u.Unit], Identification{Profile: p})
				continue
			}
			live := 0
			for _, f := range res.Fields {
				internal := f.Field.Internal != nil && *f.Field.Internal // scale factors: 0 is a value
				if f.Kind == KindOK && f.Plausible && f.Text == "" && !f.Invalid && (f.Value != 0 || internal) {
					live++
				}
			}
			id := Identification{Profile: p, Check: res, Score: float64(live) / float64(max(1, len(res.Fields)))}
			r.Tried[u.Unit] = append(r.Tried[u.Unit], id)
			if id.Score >= MinScore && (best == nil || id.Score > best.Score) {
				best = &id
			}
		}
		if best != nil {
			r.Identified[u.Unit] = best
		}
	}
	return nil
}

// Present lists the units that answered.
func (r *ScanResult) Present() []UnitResult {
	var out []UnitResult
	for _, u := range r.Units {
		if u.Present {
			out = append(out, u)
		}
	}
	return out
}

// Scan asks every unit for holding register 0, one after the other (a serial line or a gateway carries
// one transaction at a time). Any answer of the device, an exception included, means a device is
// there; an exception 10 or 11 is a gateway saying the device is not. The scan stops once MaxTime is
// spent, so a link where nothing answers costs at most MaxTime plus one Timeout.
func Scan(cfg ScanConfig) (*ScanResult, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	ask, closeFn, requests := cfg.asker()
	defer closeFn()
	// An endpoint that refuses the connection would cost a dial per unit: fail at once instead.
	if _, err := ask(-1); err != nil {
		return nil, err
	}
	res := &ScanResult{}
	for i, unit := range cfg.Units {
		if cfg.MaxTime > 0 && now().Sub(start) >= cfg.MaxTime {
			res.NotTried = append(res.NotTried, cfg.Units[i:]...)
			break
		}
		ur := UnitResult{Unit: unit, Kind: KindOK}
		v, err := ask(unit)
		if err == nil {
			ur.Present = true
			ur.Detail = fmt.Sprintf("holding 0 = %d", v)
		} else {
			o := Classify(err)
			ur.Kind, ur.Code, ur.Detail = o.Kind, o.Code, o.Err.Error()
			ur.Present = o.Kind == KindException
			if o.Kind == KindConnection {
				// The link itself broke (the gateway closed the socket): reopen once for the next unit.
				if _, err := ask(-1); err != nil {
					res.Units = append(res.Units, ur)
					res.NotTried = append(res.NotTried, cfg.Units[i+1:]...)
					res.Elapsed, res.Requests = now().Sub(start), requests()
					return res, errors.Join(errors.New("the link failed during the scan"), err)
				}
			}
		}
		res.Units = append(res.Units, ur)
	}
	res.Elapsed, res.Requests = now().Sub(start), requests()
	return res, nil
}

// WriteScan prints the result as YAML: a connections entry with one device per unit that answered,
// each with a placeholder the user replaces by a profile (modbus check) or fields (modbus find), and
// the report as comments. The devices are commented out: without a register map a device does not
// load, and the probe does not invent one.
func WriteScan(w io.Writer, cfg ScanConfig, r *ScanResult) {
	present := r.Present()
	probe.Comment(w, "otelcol-iiot-probe modbus scan %s units %s, timeout %s per unit: %d answered, %d requests in %s",
		cfg.Endpoint.Raw, probe.CompactRange(cfg.Units), cfg.Timeout, len(present), r.Requests, r.Elapsed.Round(time.Millisecond))
	var silent, gateway []int
	for _, u := range r.Units {
		switch {
		case u.Present && u.Kind == KindOK:
			probe.Comment(w, "unit %d: answered (%s)", u.Unit, u.Detail)
		case u.Present:
			probe.Comment(w, "unit %d: answered with exception %d (%s): a device is there", u.Unit, u.Code, u.Detail)
		case u.Kind == KindGateway:
			gateway = append(gateway, u.Unit)
		case u.Kind == KindConnection:
			probe.Comment(w, "unit %d: the connection broke while asking it (%s); reopened for the next unit: ask it again", u.Unit, u.Detail)
		case u.Kind == KindGarbled:
			probe.Comment(w, "unit %d: garbled reply (%s): something answered, but not a Modbus reply to the request (wrong framing: tcp:// vs rtuovertcp://, or line settings?)", u.Unit, u.Detail)
		default:
			silent = append(silent, u.Unit)
		}
	}
	if len(silent) > 0 {
		probe.Comment(w, "no answer: %s", probe.CompactRange(silent))
	}
	if len(gateway) > 0 {
		probe.Comment(w, "the gateway answered for (exception 10/11, no device behind it): %s", probe.CompactRange(gateway))
	}
	if len(r.NotTried) > 0 {
		probe.Comment(w, "not tried (the scan's --max-time was spent): %s", probe.CompactRange(r.NotTried))
	}
	if len(present) == 0 && len(silent) > 0 {
		switch cfg.Endpoint.Scheme {
		case "tcp":
			probe.Comment(w, "nothing answered: a serial-to-Ethernet gateway in transparent mode needs rtuovertcp://, try rtuovertcp://")
		case "rtuovertcp":
			probe.Comment(w, "nothing answered: a gateway in Modbus/TCP mode needs tcp://, try tcp://; or check --baud-rate and the gateway's line settings")
		default:
			probe.Comment(w, "nothing answered: check --baud-rate, --parity, --stop-bits, the A/B wiring and the termination")
		}
	}
	if len(present) > 1 && len(present) == len(r.Units) && len(r.NotTried) == 0 {
		probe.Comment(w, "every unit answered: this device probably ignores the unit id (a native Modbus/TCP device); use unit_id 1 (or 255)")
	}
	var files []string
	for _, u := range present {
		var scores []string
		for _, t := range r.Tried[u.Unit] {
			scores = append(scores, fmt.Sprintf("%s %.0f%%", t.Profile.Name, 100*t.Score))
		}
		if len(scores) > 0 {
			probe.Comment(w, "unit %d: share of each profile's fields that read live values: %s", u.Unit, strings.Join(scores, ", "))
		}
		if id := r.Identified[u.Unit]; id != nil && !slices.Contains(files, id.Profile.File) {
			files = append(files, id.Profile.File)
		}
	}
	if len(files) > 0 {
		fmt.Fprintln(w, "profile_files:")
		for _, f := range files {
			fmt.Fprintf(w, "  - %s\n", probe.Q(f))
		}
	}
	fmt.Fprintln(w, "connections:")
	fmt.Fprintf(w, "  - endpoint: %s\n", probe.Q(cfg.Endpoint.Raw))
	writeLine(w, cfg.Endpoint, cfg.Line)
	if len(present) == 0 {
		fmt.Fprintln(w, "    devices: []  # no device answered")
		return
	}
	fmt.Fprintln(w, "    devices:")
	if len(r.Identified) < len(present) {
		fmt.Fprintln(w, "      # give each commented device a profile (check it: otelcol-iiot-probe modbus check --unit N --profile NAME)")
		fmt.Fprintln(w, "      # or fields (find them: otelcol-iiot-probe modbus find --unit N --value V), then uncomment it")
	}
	for _, u := range present {
		id := r.Identified[u.Unit]
		if id == nil {
			fmt.Fprintf(w, "      # - {id: unit-%d, unit_id: %d, profile: PROFILE}\n", u.Unit, u.Unit)
			continue
		}
		exclude := excluded(id.Check)
		fmt.Fprintf(w, "      - %s  # %.0f%% of its fields read live values\n", probe.Map("id", probe.Q(fmt.Sprintf("%s-%d", probe.ID(id.Profile.Name), u.Unit)),
			"unit_id", fmt.Sprint(u.Unit), "profile", probe.Q(id.Profile.Name), "exclude_fields", probe.List(exclude)), 100*id.Score)
	}
}

// asker returns a function that reads holding register 0 of a unit (unit -1: only open the link), a
// close function and a request counter: the raw reader on TCP sockets, the library on serial lines.
func (cfg ScanConfig) asker() (func(unit int) (uint16, error), func(), func() int) {
	if cfg.Endpoint.Scheme == "tcp" || cfg.Endpoint.Scheme == "rtuovertcp" {
		l := &rawLink{scheme: cfg.Endpoint.Scheme, address: cfg.Endpoint.Address, timeout: cfg.Timeout}
		n := 0
		return func(unit int) (uint16, error) {
			if unit < 0 {
				return 0, l.open()
			}
			n++
			v, err := l.readHolding0(uint8(unit))
			var o *Outcome
			if errors.As(err, &o) && o.Kind != KindException && o.Kind != KindGateway && l.scheme == "rtuovertcp" {
				// a late answer on the gateway's serial line must be over before the next unit is asked
				waitOutLine(cfg.Line.BaudRate)
			}
			return v, err
		}, l.close, func() int { return n }
	}
	c := NewConn(cfg.Endpoint, cfg.Line, cfg.Timeout)
	return func(unit int) (uint16, error) {
		if unit < 0 {
			return 0, c.Open()
		}
		raw, err := c.Read(uint8(unit), Holding, 0, 1)
		if err != nil {
			return 0, err
		}
		return uint16(raw[0])<<8 | uint16(raw[1]), nil
	}, c.Close, func() int { return c.Requests }
}

// writeLine writes the serial keys of a connection entry.
func writeLine(w io.Writer, ep probe.Endpoint, l Line) {
	if ep.Scheme != "rtu" && (ep.Scheme != "rtuovertcp" || l.BaudRate <= 0) {
		return
	}
	fmt.Fprintf(w, "    baud_rate: %d\n", l.BaudRate)
	if ep.Scheme != "rtu" {
		return
	}
	var kv []string
	if l.DataBits != 0 && l.DataBits != 8 {
		kv = append(kv, fmt.Sprintf("    data_bits: %d", l.DataBits))
	}
	if l.Parity != "" && l.Parity != "none" {
		kv = append(kv, "    parity: "+l.Parity)
	}
	if l.StopBits != 0 {
		kv = append(kv, fmt.Sprintf("    stop_bits: %d", l.StopBits))
	}
	if len(kv) > 0 {
		fmt.Fprintln(w, strings.Join(kv, "\n"))
	}
}
