// Package probe holds what the protocol probes of otelcol-iiot-probe share: endpoint parsing and YAML
// output. The probes are in its sub-packages, the command line in probe/cli.
package probe

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Endpoint is a parsed device endpoint: a TCP address (host:port) or a serial device path.
//
// TODO(merge): parsing belongs to internal/transport once it lands; this is the small subset the probe
// needs, with the receivers' error wording.
type Endpoint struct {
	Scheme  string // tcp, rtuovertcp, rtu, serial, opc.tcp
	Address string // host:port, or the serial device path
	Raw     string // as given
}

// Serial tells whether the endpoint is a local serial port.
func (e Endpoint) Serial() bool { return e.Scheme == "rtu" || e.Scheme == "serial" }

// ParseEndpoint parses s and accepts only the given schemes.
func ParseEndpoint(s string, schemes ...string) (Endpoint, error) {
	want := strings.Join(schemes, ", ")
	if s == "" {
		return Endpoint{}, fmt.Errorf("--endpoint: required (scheme %s)", want)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("--endpoint: %q is not a URL: %w", s, err)
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	if !ok {
		return Endpoint{}, fmt.Errorf("--endpoint: unknown scheme %q in %q (want %s)", u.Scheme, s, want)
	}
	ep := Endpoint{Scheme: u.Scheme, Raw: s}
	switch u.Scheme {
	case "rtu", "serial":
		if u.Host != "" || u.Path == "" {
			return Endpoint{}, fmt.Errorf("--endpoint: %q must be %s:///path/to/serial/device (three slashes)", s, u.Scheme)
		}
		ep.Address = u.Path
	default:
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || (u.Path != "" && u.Path != "/") {
			return Endpoint{}, fmt.Errorf("--endpoint: %q must be %s://host:port", s, u.Scheme)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return Endpoint{}, fmt.Errorf("--endpoint: port %q must be a number from 1 to 65535", port)
		}
		ep.Address = u.Host
	}
	return ep, nil
}

// ParseRange parses "1-247", "5" or "1-10,20,30-32" into sorted, distinct numbers within [lo, hi].
func ParseRange(flag, s string, lo, hi int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		a, b, isRange := strings.Cut(part, "-")
		from, err1 := strconv.Atoi(strings.TrimSpace(a))
		to := from
		var err2 error
		if isRange {
			to, err2 = strconv.Atoi(strings.TrimSpace(b))
		}
		if err1 != nil || err2 != nil || from > to || from < lo || to > hi {
			return nil, fmt.Errorf("%s: %q is not a number or range within %d-%d (e.g. 1-247 or 1,3,10-20)", flag, part, lo, hi)
		}
		for n := from; n <= to; n++ {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// CompactRange renders sorted numbers as "1-3,7,9-12".
func CompactRange(nums []int) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", nums[i], nums[j])
		} else {
			fmt.Fprintf(&b, "%d", nums[i])
		}
		i = j + 1
	}
	return b.String()
}
