// Package dlt645 is the DL/T 645 part of otelcol-iiot-probe: find the meters on a bus and the catalogue
// identifiers each answers.
package dlt645

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
)

// ScanConfig is what `dlt645 scan` asks.
type ScanConfig struct {
	Endpoint probe.Endpoint
	// Serial is the line set-up of a serial:// endpoint; its BaudRate also stretches the timeouts on a
	// tcp:// serial server when set.
	Serial dlt645.SerialConfig
	// Timeout is how long a meter has to start answering.
	Timeout time.Duration
	// Gap is the least silence between two frames on the line; 0: as the receiver (4 characters at the
	// line speed, at least 5 ms; 10 ms on a TCP server of unknown speed).
	Gap time.Duration
	// Addresses are the meters to read; empty: discover them.
	Addresses []dlt645.Address
	// Versions to try when discovering, in order (2007, then 1997).
	Versions []dlt645.Version
	// All reads every catalogue identifier; otherwise energies only for the total and tariffs 1 to 4.
	All bool
}

// Meter is one meter found and what it answered.
type Meter struct {
	Address  dlt645.Address
	Version  dlt645.Version
	Answered []dlt645.Entry
	Refused  int // identifiers answered with an error word
	Silent   int // identifiers not answered at all
	Found    string
}

// ScanResult is the outcome of a scan.
type ScanResult struct {
	Meters   []*Meter
	Notes    []string
	Requests uint64
	Elapsed  time.Duration
}

// dial opens the line: a TCP serial server or a serial port.
func dial(cfg ScanConfig) (dlt645.Link, io.Closer, time.Duration, error) {
	if cfg.Endpoint.Scheme == "serial" {
		s := cfg.Serial
		s.Device = cfg.Endpoint.Address
		l, err := dlt645.OpenSerial(s)
		if err != nil {
			return nil, nil, 0, err
		}
		return l, l, s.CharTime(), nil
	}
	c, err := net.DialTimeout("tcp", cfg.Endpoint.Address, max(cfg.Timeout, time.Second))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("cannot open %s: %w", cfg.Endpoint.Raw, err)
	}
	var ct time.Duration
	if cfg.Serial.BaudRate > 0 {
		ct = cfg.Serial.CharTime()
	}
	return c, c, ct, nil
}

// Scan finds the meters (unless given) and reads the catalogue from each.
func Scan(ctx context.Context, cfg ScanConfig) (*ScanResult, error) {
	start := time.Now()
	link, closer, charTime, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	c := dlt645.NewClient(link)
	c.Timeout, c.CharTime = cfg.Timeout, charTime
	switch {
	case cfg.Gap > 0:
		c.Gap = cfg.Gap
	case charTime > 0:
		c.Gap = max(4*charTime, 5*time.Millisecond)
	default:
		c.Gap = 10 * time.Millisecond
	}
	res := &ScanResult{}
	if len(cfg.Addresses) > 0 {
		for _, a := range cfg.Addresses {
			res.Meters = append(res.Meters, &Meter{Address: a, Found: "given"})
		}
	} else {
		for _, v := range cfg.Versions {
			found, note, err := discover(ctx, c, v)
			if err != nil {
				return nil, err
			}
			if note != "" {
				res.Notes = append(res.Notes, note)
			}
			res.Meters = append(res.Meters, found...)
			if len(found) > 0 {
				break
			}
		}
	}
	// The edition of each meter: the one in which it reads its forward active energy (a meter may
	// answer the other edition's frames with an error word, which is how it was found).
	var meters []*Meter
	for _, m := range res.Meters {
		v, err := edition(ctx, c, m.Address)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.Notes = append(res.Notes, fmt.Sprintf("meter %s does not answer: %v", m.Address, err))
			continue
		}
		m.Version = v
		meters = append(meters, m)
	}
	res.Meters = meters
	for _, m := range res.Meters {
		if err := readCatalogue(ctx, c, m, cfg.All); err != nil {
			return nil, err
		}
	}
	res.Requests, res.Elapsed = c.Counts().Requests, time.Since(start)
	return res, nil
}

// edition finds the edition a meter speaks: the first in which it reads forward active energy, else
// the first it answers at all (with an error word).
func edition(ctx context.Context, c *dlt645.Client, a dlt645.Address) (dlt645.Version, error) {
	var answered []dlt645.Version
	var errs []error
	for _, v := range []dlt645.Version{dlt645.V2007, dlt645.V1997} {
		_, err := c.Read(ctx, v, a, forwardActive(v))
		switch {
		case err == nil:
			return v, nil
		case isMeterError(err):
			answered = append(answered, v)
		default:
			errs = append(errs, fmt.Errorf("%s: %w", v, err))
		}
	}
	if len(answered) > 0 {
		return answered[0], nil
	}
	return 0, errors.Join(errs...)
}

func isMeterError(err error) bool {
	var me *dlt645.MeterError
	return errors.As(err, &me)
}

// discover finds the meters of one edition with the address search the receiver uses (dlt645.Search).
func discover(ctx context.Context, c *dlt645.Client, v dlt645.Version) ([]*Meter, string, error) {
	res, err := dlt645.Search(ctx, dlt645.ClientSearch(c), dlt645.SearchOptions{Version: v})
	if err != nil {
		return nil, "", err
	}
	how := "read address"
	if res.Collided {
		how = "address search"
	}
	var out []*Meter
	for _, a := range res.Meters {
		out = append(out, &Meter{Address: a, Version: v, Found: how})
	}
	switch {
	case len(res.Shared) > 0:
		return out, fmt.Sprintf("DL/T 645-%s: replies to %s still collided: two meters share an address (give one another with its own tool)", v, res.Shared[0]), nil
	case res.Collided:
		return out, fmt.Sprintf("DL/T 645-%s: several meters answered the %s at once; searched their addresses digit pair by digit pair (%d requests)", v, readAddressName(v), res.Frames), nil
	case len(out) == 0:
		return nil, fmt.Sprintf("DL/T 645-%s: no meter answered the %s", v, readAddressName(v)), nil
	}
	return out, "", nil
}

func readAddressName(v dlt645.Version) string {
	if v == dlt645.V1997 {
		return "wildcard read of forward active energy"
	}
	return "read-address command"
}

func forwardActive(v dlt645.Version) dlt645.DI {
	if v == dlt645.V1997 {
		return dlt645.DIForwardActive1997
	}
	return 0x00010000
}

// tariff returns the tariff number of an energy identifier (0: the total or not an energy).
func tariff(v dlt645.Version, e dlt645.Entry) int {
	if !strings.Contains(e.Metric, "energy") {
		return 0
	}
	if v == dlt645.V1997 {
		return int(e.DI & 0x0F)
	}
	return int(e.DI.Byte(1))
}

// readCatalogue reads each catalogue identifier of the meter's edition.
func readCatalogue(ctx context.Context, c *dlt645.Client, m *Meter, all bool) error {
	for _, e := range dlt645.Builtin().Entries(m.Version) {
		if !all && tariff(m.Version, e) > 4 {
			continue
		}
		_, err := c.Read(ctx, m.Version, m.Address, e.DI)
		switch {
		case err == nil:
			m.Answered = append(m.Answered, e)
		case isMeterError(err):
			m.Refused++
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			m.Silent++
		}
	}
	return nil
}

// identifiers returns the identifiers to configure: what the meter answered, with the clock kept only
// as a whole (0400010C, or the date and time pair; 1997: C010 and C011), since half a clock is no drift.
func (m *Meter) identifiers() []string {
	has := map[string]bool{}
	for _, e := range m.Answered {
		has[e.DI.Format(m.Version)] = true
	}
	var out []string
	for _, e := range m.Answered {
		di := e.DI.Format(m.Version)
		if e.Kind == dlt645.ClockPart {
			switch {
			case di == "0400010C":
			case (di == "04000101" || di == "04000102") && has["04000101"] && has["04000102"] && !has["0400010C"]:
			case (di == "C010" || di == "C011") && has["C010"] && has["C011"]:
			default:
				continue
			}
		}
		out = append(out, di)
	}
	return out
}

// WriteScan prints a buses: entry with a meter per address found, each with the identifiers it
// answered, as the dlt645 receiver loads it (devices/dlt645.yaml).
func WriteScan(w io.Writer, cfg ScanConfig, r *ScanResult) {
	probe.Comment(w, "otelcol-iiot-probe dlt645 scan %s: %d meters, %d requests in %s", cfg.Endpoint.Raw, len(r.Meters), r.Requests, r.Elapsed.Round(time.Millisecond))
	for _, n := range r.Notes {
		probe.Comment(w, "%s", n)
	}
	for _, m := range r.Meters {
		probe.Comment(w, "meter %s (DL/T 645-%s, %s): %d catalogue identifiers answered, %d refused with an error word, %d unanswered",
			m.Address, m.Version, m.Found, len(m.Answered), m.Refused, m.Silent)
	}
	if !cfg.All {
		probe.Comment(w, "energies were read for the total and tariffs 1-4 (--all reads every tariff)")
	}
	usable := 0
	for _, m := range r.Meters {
		if len(m.identifiers()) > 0 {
			usable++
		}
	}
	if usable == 0 {
		probe.Comment(w, "no meter found: check the line settings (--baud-rate, --parity; most meters: 2400 8E1), the A/B wiring, or give --address")
		return
	}
	fmt.Fprintln(w, "buses:")
	fmt.Fprintf(w, "  - endpoint: %s\n", probe.Q(cfg.Endpoint.Raw))
	if cfg.Endpoint.Scheme == "serial" || cfg.Serial.BaudRate > 0 {
		fmt.Fprintf(w, "    baud_rate: %d\n", cfg.Serial.BaudRate)
	}
	if cfg.Endpoint.Scheme == "serial" && cfg.Serial.Parity != "" && cfg.Serial.Parity != "even" {
		fmt.Fprintf(w, "    parity: %s\n", cfg.Serial.Parity)
	}
	fmt.Fprintln(w, "    meters:")
	for _, m := range r.Meters {
		if len(m.identifiers()) == 0 {
			// A meter without identifiers does not load; the user has to take them from its manual.
			probe.Comment(w, "    meter %s answered no catalogue identifier: add it with identifiers from its manual", m.Address)
			continue
		}
		fmt.Fprintf(w, "      - id: %s\n", probe.Q("meter-"+m.Address.String()))
		fmt.Fprintf(w, "        address: %q\n", m.Address.String())
		if m.Version != dlt645.V2007 {
			fmt.Fprintf(w, "        version: %q\n", m.Version.String())
		}
		ids := m.identifiers()
		fmt.Fprintln(w, "        identifiers:")
		for _, di := range ids {
			e, _ := dlt645.Builtin().Lookup(m.Version, mustDI(m.Version, di))
			what := e.Metric
			if what == "" {
				what = e.Name
			}
			if attrs := attrText(e); attrs != "" {
				what += " " + attrs
			}
			fmt.Fprintf(w, "          - %q  # %s\n", di, what)
		}
	}
}

func mustDI(v dlt645.Version, s string) dlt645.DI {
	d, _ := dlt645.ParseDI(v, s)
	return d
}

func attrText(e dlt645.Entry) string {
	var parts []string
	for _, a := range e.Attributes {
		parts = append(parts, a.Key+"="+a.Value)
	}
	return strings.Join(parts, " ")
}
