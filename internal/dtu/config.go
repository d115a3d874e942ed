package dtu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configtls"

	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// Defaults of Config.
const (
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultMaxConnections      = 256
	DefaultRegistrationTimeout = 30 * time.Second
)

// Registration formats: how the registration packet names the DTU.
const (
	FormatText = "text" // the packet, trimmed of spaces, CR/LF and NULs, is the id (e.g. a configured string, an IMEI)
	FormatHex  = "hex"  // the packet's bytes in upper-case hex are the id (DTUs that register with binary ids)
)

// Config is a listening endpoint for DTUs, shared by every receiver that polls through DTUs.
type Config struct {
	// Endpoint is the host:port to listen on (e.g. 127.0.0.1:9000; 0.0.0.0:9000 to take DTUs from the
	// mobile network, then with tls).
	Endpoint string `mapstructure:"endpoint"`
	// TLS makes the DTUs connect with TLS (for DTUs that support it).
	TLS *configtls.ServerConfig `mapstructure:"tls"`
	// Registration is how the first packet of a DTU names it.
	Registration RegistrationConfig `mapstructure:"registration"`
	// Heartbeat is the DTU's heartbeat packet, removed from the byte stream wherever it arrives.
	Heartbeat PatternConfig `mapstructure:"heartbeat"`
	// IdleTimeout closes a socket that has sent nothing (not even a heartbeat) for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// RegistrationTimeout closes a socket that has not registered within this time.
	RegistrationTimeout time.Duration `mapstructure:"registration_timeout"`
	// MaxConnections caps the open sockets, registered or not; more are closed at once.
	MaxConnections int `mapstructure:"max_connections"`
}

// RegistrationConfig is how a registration packet names a DTU.
type RegistrationConfig struct {
	// Format is text (default) or hex.
	Format string `mapstructure:"format"`
	// Regex, if set, is matched against the packet as text; its one capture group is the id (e.g.
	// '^IMEI:(\d{15})' or '(\d{20})' for an ICCID).
	Regex string `mapstructure:"regex"`
}

// PatternConfig is a byte pattern given as text or as hex bytes (one of them).
type PatternConfig struct {
	Text string `mapstructure:"text"`
	Hex  string `mapstructure:"hex"`
}

// NewDefaultConfig returns a listener config with the defaults filled in.
func NewDefaultConfig() *Config {
	return &Config{
		IdleTimeout:         DefaultIdleTimeout,
		RegistrationTimeout: DefaultRegistrationTimeout,
		MaxConnections:      DefaultMaxConnections,
		Registration:        RegistrationConfig{Format: FormatText},
	}
}

// bytes returns the pattern's bytes (nil when unset).
func (p PatternConfig) bytes() ([]byte, error) {
	switch {
	case p.Text != "" && p.Hex != "":
		return nil, errors.New("give text or hex, not both")
	case p.Text != "":
		return []byte(p.Text), nil
	case p.Hex != "":
		return parseHex(p.Hex)
	}
	return nil, nil
}

// parseHex reads hex bytes, allowing spaces, colons and a 0x prefix ("FE FE 68", "0xFEFE").
func parseHex(s string) ([]byte, error) {
	c := strings.NewReplacer(" ", "", ":", "", "-", "").Replace(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	b, err := hex.DecodeString(c)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex bytes (e.g. \"FE 01 A0\")", s)
	}
	return b, nil
}

// Validate reports every problem, each key prefixed with prefix (e.g. "dtu.").
func (c *Config) Validate(prefix string) error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%sendpoint: required: the host:port the DTUs dial (e.g. 127.0.0.1:9000)", prefix))
	} else if host, port, err := net.SplitHostPort(c.Endpoint); err != nil || strings.Contains(host, "/") {
		errs = append(errs, fmt.Errorf("%sendpoint: %q must be host:port (e.g. 127.0.0.1:9000 or 0.0.0.0:9000), without a scheme", prefix, c.Endpoint))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("%sendpoint: port %q must be a number from 0 to 65535", prefix, port))
	}
	if _, err := c.matcher(prefix); err != nil {
		errs = append(errs, err)
	}
	if hb, err := c.Heartbeat.bytes(); err != nil {
		errs = append(errs, fmt.Errorf("%sheartbeat: %w", prefix, err))
	} else if len(hb) == 1 {
		errs = append(errs, fmt.Errorf("%sheartbeat: one byte is too short to tell from protocol data; give the whole heartbeat packet", prefix))
	} else if len(hb) > maxPattern {
		errs = append(errs, fmt.Errorf("%sheartbeat: %d bytes, at most %d", prefix, len(hb), maxPattern))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%sidle_timeout: must be > 0 (longer than the DTUs' heartbeat interval), got %s", prefix, c.IdleTimeout))
	}
	if c.RegistrationTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%sregistration_timeout: must be > 0, got %s", prefix, c.RegistrationTimeout))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("%smax_connections: must be at least 1, got %d", prefix, c.MaxConnections))
	}
	return errors.Join(errs...)
}

// maxPattern bounds heartbeat and registration packets.
const maxPattern = 256

// matcher turns a registration packet into a DTU id.
type matcher struct {
	format string
	re     *regexp.Regexp
}

func (c *Config) matcher(prefix string) (matcher, error) {
	m := matcher{format: c.Registration.Format}
	if m.format == "" {
		m.format = FormatText
	}
	var errs []error
	if m.format != FormatText && m.format != FormatHex {
		errs = append(errs, fmt.Errorf("%sregistration.format: unknown %q (want text or hex)", prefix, c.Registration.Format))
	}
	if c.Registration.Regex != "" {
		re, err := regexp.Compile(c.Registration.Regex)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%sregistration.regex: %w", prefix, err))
		case re.NumSubexp() != 1:
			errs = append(errs, fmt.Errorf("%sregistration.regex: %q has %d capture groups; want exactly one, around the id", prefix, c.Registration.Regex, re.NumSubexp()))
		case m.format == FormatHex:
			errs = append(errs, fmt.Errorf("%sregistration: regex reads the packet as text; leave format unset (or text) with it", prefix))
		default:
			m.re = re
		}
	}
	return m, errors.Join(errs...)
}

// id returns the DTU id a registration packet names, or "" if it names none.
func (m matcher) id(packet []byte) string {
	if m.format == FormatHex {
		return strings.ToUpper(hex.EncodeToString(packet))
	}
	if m.re != nil {
		sub := m.re.FindSubmatch(packet)
		if sub == nil {
			return ""
		}
		return string(sub[1])
	}
	return strings.Trim(string(packet), " \t\r\n\x00")
}

// NormalizeID returns the id of a configured DTU as the listener compares it (hex ids in upper case,
// without spaces), or an error saying what an id must look like.
func (c *Config) NormalizeID(id string) (string, error) {
	if id == "" {
		return "", errors.New("the DTU id is empty")
	}
	if c.Registration.Format == FormatHex {
		b, err := parseHex(id)
		if err != nil {
			return "", fmt.Errorf("registration.format is hex, so the DTU id must be hex bytes: %w", err)
		}
		return strings.ToUpper(hex.EncodeToString(b)), nil
	}
	return id, nil
}

// Scheme is the endpoint scheme of a device line behind a DTU: dtu://<id>.
const Scheme = "dtu"

// ParseEndpoint reads dtu://<id>; ok is false when raw is not a dtu:// endpoint.
func ParseEndpoint(raw string) (id string, ok bool, err error) {
	rest, ok := strings.CutPrefix(raw, Scheme+"://")
	if !ok {
		return "", false, nil
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || strings.ContainsAny(rest, "/?#") {
		return "", true, fmt.Errorf("%q must be dtu://<id>, the id the DTU registers with (e.g. dtu://862951034567890)", raw)
	}
	return rest, true, nil
}

// ParseLineEndpoint parses the endpoint of a device line: dtu://<id> (the id as Address) or one of
// schemes (transport.ParseEndpoint).
func ParseLineEndpoint(raw string, schemes ...transport.Scheme) (transport.Endpoint, error) {
	if id, ok, err := ParseEndpoint(raw); ok {
		return transport.Endpoint{URL: raw, Scheme: Scheme, Address: id}, err
	}
	return transport.ParseEndpoint(raw, schemes...)
}

// BindLine normalizes the DTU ids of one device line — its endpoint's, or each of its backups'
// (`endpoints:`, normalized in place) — and claims them in ids (id → who named it): a DTU is one serial
// line, so one line per id; hint tells the user how to fix a second claim. It returns the line's address,
// its first id.
func (c *Config) BindLine(address string, backups []string, prefix string, ids map[string]string, hint string) (string, error) {
	var errs []error
	bind := func(id, key, owner string) string {
		n, err := c.NormalizeID(id)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return id
		}
		if prev, ok := ids[n]; ok {
			errs = append(errs, fmt.Errorf("%s: DTU %q is already the endpoint of %s (one DTU is one serial line: %s)", key, n, prev, hint))
		}
		ids[n] = owner
		return n
	}
	if len(backups) == 0 {
		return bind(address, prefix+".endpoint", prefix), errors.Join(errs...)
	}
	for i := range backups {
		key := fmt.Sprintf("%s.endpoints[%d]", prefix, i)
		backups[i] = bind(backups[i], key, key)
	}
	return backups[0], errors.Join(errs...)
}
