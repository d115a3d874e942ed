package device

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// PollConfig is how a device is polled: the receiver's defaults (its top-level `poll`), or a device's
// settings once its PollOverrides are applied.
type PollConfig struct {
	// Interval between two polls of the device.
	Interval time.Duration `mapstructure:"interval"`
	// Jitter is the largest random delay added to each poll, as a fraction of Interval (0 to 0.5).
	Jitter float64 `mapstructure:"jitter"`
	// Timeout of one request.
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries of a request that timed out or failed on the wire (not of protocol exceptions).
	Retries int `mapstructure:"retries"`
	// HealthInterval is the longest that a health series other than iiot.device.up and
	// iiot.device.poll.duration goes unsent while its value stays the same (breaker state) or on its
	// straight line (requests); a change is sent at once. 0 sends them at every poll. Receiver level
	// only: devices have no such key (PollOverrides).
	HealthInterval time.Duration `mapstructure:"health_interval"`
}

// DefaultHealthInterval keeps several samples of each health counter in the 5-minute rate windows
// of the shipped rules.
const DefaultHealthInterval = time.Minute

// NewDefaultPollConfig polls every 10s with a 2s timeout and one retry, and sends unchanged health
// series every minute.
func NewDefaultPollConfig() PollConfig {
	return PollConfig{Interval: 10 * time.Second, Jitter: 0.05, Timeout: 2 * time.Second, Retries: 1, HealthInterval: DefaultHealthInterval}
}

// Override returns c with the keys set in levels applied, the last level winning (see Layer).
func (c PollConfig) Override(levels ...PollOverrides) PollConfig {
	for _, o := range levels {
		c.Interval = Layer(c.Interval, o.Interval)
		c.Jitter = Layer(c.Jitter, o.Jitter)
		c.Timeout = Layer(c.Timeout, o.Timeout)
		c.Retries = Layer(c.Retries, o.Retries)
	}
	return c
}

// Validate reports every problem of a complete config (the receiver's), each key once, named under
// prefix.
func (c PollConfig) Validate(prefix string) error {
	var errs []error
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%sinterval: must be > 0, got %s", prefix, c.Interval))
	}
	if err := validateJitter(prefix, c.Jitter); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Timeout <= 0:
		errs = append(errs, fmt.Errorf("%stimeout: must be > 0, got %s", prefix, c.Timeout))
	case c.Interval > 0 && c.Timeout > c.Interval:
		errs = append(errs, fmt.Errorf("%stimeout: %s is longer than the poll interval %s", prefix, c.Timeout, c.Interval))
	}
	if err := validateRetries(prefix, c.Retries); err != nil {
		errs = append(errs, err)
	}
	if c.HealthInterval < 0 {
		errs = append(errs, fmt.Errorf("%shealth_interval: must be >= 0 (0 sends every health series at every poll), got %s", prefix, c.HealthInterval))
	}
	return errors.Join(errs...)
}

func validateJitter(prefix string, j float64) error {
	if j < 0 || j > 0.5 || math.IsNaN(j) {
		return fmt.Errorf("%sjitter: must be between 0 and 0.5 (a fraction of interval), got %g", prefix, j)
	}
	return nil
}

func validateRetries(prefix string, n int) error {
	if n < 0 || n > 10 {
		return fmt.Errorf("%sretries: must be between 0 and 10, got %d", prefix, n)
	}
	return nil
}

// PollOverrides is a device's `poll`: each key it sets replaces the receiver's, 0 included; a key it
// leaves out is inherited.
type PollOverrides struct {
	Interval *time.Duration `mapstructure:"interval"`
	Jitter   *float64       `mapstructure:"jitter"`
	Timeout  *time.Duration `mapstructure:"timeout"`
	Retries  *int           `mapstructure:"retries"`
}

// Validate reports every problem of the keys o sets, named under prefix. inherited is the config o
// applies to; it is checked only where o changes it (a timeout longer than the interval is reported
// on the device that sets either), so a problem of the receiver's own keys is reported once, there.
func (o PollOverrides) Validate(prefix string, inherited PollConfig) error {
	var errs []error
	if o.Interval != nil && *o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%sinterval: must be > 0 (leave it out to inherit), got %s", prefix, *o.Interval))
	}
	if o.Jitter != nil {
		if err := validateJitter(prefix, *o.Jitter); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Timeout != nil && *o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("%stimeout: must be > 0 (leave it out to inherit), got %s", prefix, *o.Timeout))
	}
	if o.Retries != nil {
		if err := validateRetries(prefix, *o.Retries); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && (o.Interval != nil || o.Timeout != nil) {
		eff := inherited.Override(o)
		if eff.Interval > 0 && eff.Timeout > 0 && eff.Timeout > eff.Interval {
			errs = append(errs, fmt.Errorf("%stimeout: %s is longer than the poll interval %s", prefix, eff.Timeout, eff.Interval))
		}
	}
	return errors.Join(errs...)
}

// TracesConfig sets which poll traces are kept.
type TracesConfig struct {
	// SuccessSampleRatio is the share of successful polls whose trace is kept (0 to 1).
	// Polls with any error are always kept.
	SuccessSampleRatio float64 `mapstructure:"success_sample_ratio"`
}

// NewDefaultTracesConfig keeps every failed poll and one successful poll in 100.
func NewDefaultTracesConfig() TracesConfig { return TracesConfig{SuccessSampleRatio: 0.01} }

// Validate reports a ratio outside 0..1.
func (c TracesConfig) Validate(prefix string) error {
	if c.SuccessSampleRatio < 0 || c.SuccessSampleRatio > 1 {
		return fmt.Errorf("%ssuccess_sample_ratio: must be between 0 and 1, got %g", prefix, c.SuccessSampleRatio)
	}
	return nil
}

// Settings groups what every receiver exposes at its top level for its devices, embedded with
// `mapstructure:",squash"`. The `metrics` key is not here: it is each receiver's generated
// metadata.MetricsConfig (from its metadata.yaml), which the receiver turns into HealthMetrics.
type Settings struct {
	Poll    PollConfig         `mapstructure:"poll"`
	Breaker poll.BreakerConfig `mapstructure:"breaker"`
	Traces  TracesConfig       `mapstructure:"traces"`
}

// NewDefaultSettings returns the defaults of every part.
func NewDefaultSettings() Settings {
	return Settings{
		Poll:    NewDefaultPollConfig(),
		Breaker: poll.NewDefaultBreakerConfig(),
		Traces:  NewDefaultTracesConfig(),
	}
}

// Validate reports every problem of the settings, naming keys under prefix ("" at a receiver's top
// level). It takes a prefix, like the Validate of its parts, and so is not a confmap.Validator on
// purpose: Settings is embedded with squash, and confmap.Validate calls every Validator it finds
// in a config, so the receiver's own Validate (which calls this one) and the embedded Settings
// would each report the same problems, the latter under a "settings" key no config has.
func (s Settings) Validate(prefix string) error {
	return errors.Join(
		s.Poll.Validate(prefix+"poll."),
		s.Breaker.Validate(prefix+"breaker"),
		s.Traces.Validate(prefix+"traces."),
	)
}

// IDs checks the device ids of one receiver's config: each is given and unique, since it becomes
// the device.id resource attribute. The map holds the config path that first used each id.
type IDs map[string]string

// Validate registers the id of the device at path (e.g. `buses[0].meters[2]`) and returns the prefix
// that names the device in its config errors (`buses[0].meters[2] "meter-3": `), with the id's own
// error if it is missing or taken.
func (ids IDs) Validate(path, id string) (prefix string, err error) {
	prefix = path
	if id != "" {
		prefix += fmt.Sprintf(" %q", id)
	}
	prefix += ": "
	switch prev, taken := ids[id]; {
	case id == "":
		err = fmt.Errorf("%sid: required (it becomes the device.id resource attribute)", prefix)
	case taken:
		err = fmt.Errorf("%sid: %q is already used by %s", prefix, id, prev)
	default:
		ids[id] = path
	}
	return prefix, err
}

// MetricKind is how a reading is exported: the `kind` key of a modbus field, an OPC UA node and a
// DL/T 645 identifier. Empty means not set at this level (inherited, else gauge).
type MetricKind string

const (
	// KindGauge is an instantaneous value.
	KindGauge MetricKind = "gauge"
	// KindSum is a monotonic cumulative counter (energy registers, operating hours …).
	KindSum MetricKind = "sum"
)

// Validate reports a kind other than gauge, sum or unset, naming the key under prefix. It takes a
// prefix (so confmap.Validate does not call it a second time under a path of its own).
func (k MetricKind) Validate(prefix string) error {
	switch k {
	case "", KindGauge, KindSum:
		return nil
	}
	return fmt.Errorf("%skind: unknown %q (want gauge or sum)", prefix, string(k))
}
