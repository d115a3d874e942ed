package modbusreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
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
	// DTU is where 4G DTUs dial in (only needed by connections with a dtu:// endpoint).
	DTU dtu.Config `mapstructure:"dtu"`
	// Connections are the endpoints (TCP sockets, serial ports, DTUs) and the devices reached through each.
	Connections []ConnectionConfig `mapstructure:"connections"`
	// Report is the report-by-exception default of every field; profiles, devices and fields override it.
	Report device.ReportConfig `mapstructure:"report"`
}

var _ confmap.Validator = (*Config)(nil)

// health is which health metrics the `metrics` key enables, for the device recorders.
func (cfg *Config) health() device.HealthMetrics {
	m := cfg.Metrics
	return device.HealthMetrics{
		Up:           m.IiotDeviceUp.Enabled,
		PollDuration: m.IiotDevicePollDuration.Enabled,
		PollErrors:   m.IiotDevicePollErrors.Enabled,
		Requests:     m.IiotDeviceRequests.Enabled,
		BreakerState: m.IiotDeviceBreakerState.Enabled,
	}
}

// ConnectionConfig is one endpoint: a TCP socket (plain, RTU-framed or TLS) or a serial port.
type ConnectionConfig struct {
	// Endpoint is tcp://host:port, rtuovertcp://host:port, tcp+tls://host:port, udp://host:port (Modbus
	// TCP framing in datagrams), rtu:///dev/ttyX, ascii:///dev/ttyX, asciiovertcp://host:port, or dtu://<id> for the serial port of a DTU that dials
	// in to the receiver's dtu.endpoint and registers with that id.
	Endpoint string `mapstructure:"endpoint"`
	// Endpoints are the endpoint and its backups, in order (instead of Endpoint; tcp:// and tcp+tls://):
	// after FailoverAfter failed connects the next is used, and the first is tried again after
	// FailbackAfter on another.
	Endpoints []string `mapstructure:"endpoints"`
	// FailoverAfter is the number of failed connects to an endpoint before the next is used (default 3).
	FailoverAfter int `mapstructure:"failover_after"`
	// FailbackAfter is how long a backup serves before the first endpoint is tried again (default 10m).
	FailbackAfter time.Duration `mapstructure:"failback_after"`
	// Framing is what a DTU passes on (dtu:// only): rtu (default: a transparent DTU), tcp (a DTU that
	// converts to Modbus TCP) or ascii.
	Framing string `mapstructure:"framing"`
	// LineConfig sets the serial line: baud_rate, data_bits, parity and stop_bits (rtu:// and ascii://
	// only; the baud rate also on rtuovertcp:// and asciiovertcp://, for the line's timing).
	transport.LineConfig `mapstructure:",squash"`
	// TLS is required for tcp+tls:// and refused for the others: the CA that signed the server's
	// certificate and the client's certificate and key (the protocol has no other authentication).
	TLS *configtls.ClientConfig `mapstructure:"tls"`
	// PauseBetweenPolls is the idle time the bus gets between the polls of two devices.
	PauseBetweenPolls time.Duration `mapstructure:"pause_between_polls"`
	// Devices reached through this connection (unit ids).
	Devices []DeviceConfig `mapstructure:"devices"`
}

// DeviceConfig is one Modbus device (one unit id on a connection).
type DeviceConfig struct {
	// ID is the device.id resource attribute; required and unique in the receiver.
	ID string `mapstructure:"id"`
	// Enabled false keeps the device in the file, validated, but not polled (default true).
	Enabled *bool `mapstructure:"enabled"`
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
	// Report changes the report-by-exception keys for the device's fields (a key left out is inherited).
	Report device.ReportConfig `mapstructure:"report"`
}

// Endpoint schemes.
const (
	schemeTCP          = "tcp"
	schemeRTUOverTCP   = "rtuovertcp"
	schemeTLS          = "tcp+tls"
	schemeRTU          = "rtu"
	schemeASCII        = "ascii"
	schemeASCIIOverTCP = "asciiovertcp"
	schemeDTU          = dtu.Scheme
	schemeUDP          = "udp"
)

// Framings of a DTU connection.
const (
	framingRTU   = "rtu"
	framingTCP   = "tcp"
	framingASCII = "ascii"
)

var schemes = []transport.Scheme{
	{Name: schemeTCP}, {Name: schemeRTUOverTCP}, {Name: schemeTLS}, {Name: schemeRTU, Serial: true},
	{Name: schemeASCII, Serial: true}, {Name: schemeASCIIOverTCP}, {Name: schemeUDP},
}

// Validate reports every problem of the configuration, naming each key. It does no I/O: the
// profile_files are read, and the TLS files loaded, once, when the receiver is created (the
// collector's `validate` command creates the components too, so it reports those files' problems).
// Devices whose profile is in a profile file are checked then.
func (cfg *Config) Validate() error {
	_, err := cfg.compile(false)
	return err
}

// validateTLS checks the shape of a connection's tls block: Modbus/TCP Security authenticates both
// ends by certificate, and the Modbus library takes only the CA pool and the client certificate, so
// the other configtls keys would be silently ignored: they are refused.
func validateTLS(scheme string, t *configtls.ClientConfig, prefix string) []error {
	switch {
	case scheme == schemeTLS && t == nil:
		return []error{fmt.Errorf("%s.tls: required for tcp+tls:// (ca_file, cert_file and key_file)", prefix)}
	case t == nil:
		return nil
	case scheme != schemeTLS && scheme != "":
		return []error{fmt.Errorf("%s.tls: only tcp+tls:// endpoints use TLS (endpoint is %s://)", prefix, scheme)}
	}
	var errs []error
	if t.CAFile == "" && t.CAPem == "" {
		errs = append(errs, fmt.Errorf("%s.tls.ca_file: required (Modbus/TCP Security authenticates both ends by certificate)", prefix))
	}
	// One of certificate and key without the other is reported by configtls's own Validate.
	if t.CertFile == "" && t.CertPem == "" && t.KeyFile == "" && t.KeyPem == "" {
		errs = append(errs, fmt.Errorf("%s.tls.cert_file, %[1]s.tls.key_file: required (Modbus/TCP Security authenticates both ends by certificate)", prefix))
	}
	unsupported := map[string]bool{
		"insecure":                       t.Insecure,
		"insecure_skip_verify":           t.InsecureSkipVerify,
		"server_name_override":           t.ServerName != "",
		"min_version":                    t.MinVersion != "",
		"max_version":                    t.MaxVersion != "",
		"cipher_suites":                  len(t.CipherSuites) > 0,
		"curve_preferences":              len(t.CurvePreferences) > 0,
		"include_insecure_cipher_suites": t.IncludeInsecureCipherSuites,
		"tpm":                            t.TPMConfig.Enabled,
	}
	for _, key := range []string{"insecure", "insecure_skip_verify", "server_name_override", "min_version", "max_version", "cipher_suites", "curve_preferences", "include_insecure_cipher_suites", "tpm"} {
		if unsupported[key] {
			errs = append(errs, fmt.Errorf("%s.tls.%s: not supported by Modbus/TCP Security (TLS 1.2 or later, server name checked against the endpoint's host); supported: ca_file/ca_pem, cert_file/cert_pem, key_file/key_pem, include_system_ca_certs_pool, reload_interval", prefix, key))
		}
	}
	return errs
}

// errList collects validation problems; nil errors are skipped.
type errList []error

func (l *errList) add(errs ...error) {
	for _, e := range errs {
		if e != nil {
			*l = append(*l, e)
		}
	}
}

func (l errList) join() error { return errors.Join(l...) }
