package dlt645receiver

import (
	"time"
	_ "time/tzdata" // meters keep local time; gateways may lack a zone database

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
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
	// DTU is where 4G DTUs dial in (only needed by buses with a dtu:// endpoint).
	DTU dtu.Config `mapstructure:"dtu"`
	// Buses are the serial lines, TCP serial servers and DTUs, and the meters on each.
	Buses []BusConfig `mapstructure:"buses"`
	// Report is the report-by-exception default of every reading; profiles, meters and identifiers
	// override it.
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

// ProfileConfig is a named, reusable list of identifiers of one meter model.
type ProfileConfig struct {
	// Version is the edition the identifiers are written in: 2007 (default) or 1997.
	Version      string             `mapstructure:"version"`
	Manufacturer string             `mapstructure:"manufacturer"`
	Model        string             `mapstructure:"model"`
	Identifiers  []IdentifierConfig `mapstructure:"identifiers"`
	// Report changes the report-by-exception keys for the profile's identifiers.
	Report device.ReportConfig `mapstructure:"report"`
}

// BusConfig is one line of meters: a serial port or a TCP transparent serial server.
type BusConfig struct {
	// Endpoint is serial:///dev/ttyUSB0, tcp://host:port, or dtu://<id> for the serial port of a DTU that
	// dials in to the receiver's dtu.endpoint and registers with that id.
	Endpoint string `mapstructure:"endpoint"`
	// Endpoints are the endpoint and its backups, in order (instead of Endpoint; tcp:// only): after
	// FailoverAfter failed connects the next is used, and the first is tried again after FailbackAfter.
	Endpoints     []string      `mapstructure:"endpoints"`
	FailoverAfter int           `mapstructure:"failover_after"`
	FailbackAfter time.Duration `mapstructure:"failback_after"`
	// LineConfig sets the serial line: baud_rate, data_bits, parity and stop_bits (default 2400 8E1). On
	// tcp:// and dtu:// the baud rate is optional: it tells the receiver how long frames take on the
	// server's (or DTU's) own line.
	transport.LineConfig `mapstructure:",squash"`
	// Preamble is the number of FE wake-up bytes before each request (default 4, 0 to 8).
	Preamble *int `mapstructure:"preamble"`
	// InterFrameGap is the least silence between frames on the line (default: 4 character times,
	// at least 5ms, when the line speed is known; else 10ms).
	InterFrameGap time.Duration `mapstructure:"inter_frame_gap"`
	// TimeSync broadcasts the time to the bus's meters (off unless an interval is set).
	TimeSync TimeSyncConfig `mapstructure:"time_sync"`
	// Meters on this bus.
	Meters []MeterConfig `mapstructure:"meters"`
	// Discover finds the meters of the bus that Meters does not list, and polls each as it says.
	Discover *DiscoverConfig `mapstructure:"discover"`
}

// DiscoverConfig searches a bus for its meters (at start, and again on a rescan) and polls every meter
// found that the bus's `meters` do not list, each with the same keys: a template of a meter.
type DiscoverConfig struct {
	// ID is the device.id of the bus's search itself: its health metrics, dlt645.search spans and the
	// dlt645.discovery.meters metric (default dlt645-bus-<bus index>).
	ID string `mapstructure:"id"`
	// IDPrefix makes each meter's device.id: the prefix and the meter's address (default "meter-").
	IDPrefix string `mapstructure:"id_prefix"`
	// MaxMeters is the most meters polled (default 32); the search stops at as many.
	MaxMeters int `mapstructure:"max_meters"`
	// MaxFrames is the most requests one search sends (default 2000); a search stopped by it reports
	// what it found so far.
	MaxFrames int `mapstructure:"max_frames"`
	// RescanInterval searches the bus again this often, adding meters that joined (0, the default: never).
	RescanInterval time.Duration `mapstructure:"rescan_interval"`
	// RescanAfterSilence searches the bus again when a meter found has answered no poll for this long (a
	// meter replaced by one with another address); 0, the default: never.
	RescanAfterSilence time.Duration `mapstructure:"rescan_after_silence"`

	// MeterKeys are a meter's keys, for every meter found: with load_profile each meter found backfills
	// its load profile under its own checkpoint (its device.id, which its address makes stable across
	// restarts and rescans).
	MeterKeys `mapstructure:",squash"`
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
	// Enabled false keeps the meter in the file, validated, but not polled (default true).
	Enabled *bool `mapstructure:"enabled"`
	// Address is the meter's address as on its nameplate (up to 12 digits), or "discover" to ask the
	// only meter of the bus for it.
	Address string `mapstructure:"address"`

	MeterKeys `mapstructure:",squash"`
}

// MeterKeys are what a meter is read as: those of a listed meter, and of every meter a bus's
// discover: finds.
type MeterKeys struct {
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
	// Report changes the report-by-exception keys for the meter's readings (a key left out is inherited).
	Report device.ReportConfig `mapstructure:"report"`
	// LoadProfile reads the meter's load-profile records without gaps (see LoadProfileConfig).
	LoadProfile *LoadProfileConfig `mapstructure:"load_profile"`
}

// Validate reports every problem of the configuration, naming each key. The receiver has no files to
// read: its factory resolves the same configuration once more into the buses to poll.
func (cfg *Config) Validate() error {
	_, err := cfg.resolve()
	return err
}
