// Package transport parses what receivers of field devices share about how a device is reached: the
// endpoint URL (a TCP socket or a serial port) and the settings of a serial line. Modbus (tcp, tcp+tls,
// rtu, rtuovertcp, ascii, asciiovertcp) and DL/T 645 (serial, tcp) use it; the serial port owner
// (internal/serialbus) keys ports by the Address it returns.
package transport

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Scheme is one endpoint scheme a receiver accepts.
type Scheme struct {
	// Name is the URL scheme (tcp, rtu, serial …).
	Name string
	// Serial schemes name a device path (rtu:///dev/ttyUSB0); the others a host:port.
	Serial bool
}

// Endpoint is a parsed endpoint URL.
type Endpoint struct {
	// URL is the endpoint as configured.
	URL string
	// Scheme is the URL's scheme, one of those the receiver accepts.
	Scheme string
	// Address is host:port, or the serial device's path.
	Address string
	// Serial is set when Address is a serial device.
	Serial bool
}

// ParseEndpoint parses raw, which must use one of schemes. Its error names what is wrong and what is
// allowed, without the key (the caller prefixes it). An empty raw is an error the caller reports
// itself, with its own example.
func ParseEndpoint(raw string, schemes ...Scheme) (Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	ep := Endpoint{URL: raw, Scheme: u.Scheme}
	var s *Scheme
	for i := range schemes {
		if schemes[i].Name == u.Scheme {
			s = &schemes[i]
		}
	}
	if s == nil {
		names := make([]string, len(schemes))
		for i, s := range schemes {
			names[i] = s.Name
		}
		return ep, fmt.Errorf("unknown scheme %q in %q (want %s)", u.Scheme, raw, orList(names))
	}
	ep.Serial = s.Serial
	if s.Serial {
		if u.Host != "" || u.Path == "" {
			return ep, fmt.Errorf("%q must be %s:///path/to/device (three slashes)", raw, s.Name)
		}
		ep.Address = u.Path
		return ep, nil
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || (u.Path != "" && u.Path != "/") {
		return ep, fmt.Errorf("%q must be %s://host:port", raw, s.Name)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return ep, fmt.Errorf("port %q must be a number from 1 to 65535", port)
	}
	ep.Address = u.Host
	return ep, nil
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
