package device

import (
	"errors"
	"fmt"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// PollConfig is how a device is polled. Receivers put one at the top level (the defaults) and let each
// device override any field; a zero field inherits.
type PollConfig struct {
	// Interval between two polls of the device.
	Interval time.Duration `mapstructure:"interval"`
	// Jitter is the largest random delay added to each poll, as a fraction of Interval (0 to 0.5).
	Jitter float64 `mapstructure:"jitter"`
	// Timeout of one request.
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries of a request that timed out or failed on the wire (not of protocol exceptions).
	Retries int `mapstructure:"retries"`
}

// NewDefaultPollConfig polls every 10s with a 2s timeout and one retry.
func NewDefaultPollConfig() PollConfig {
	return PollConfig{Interval: 10 * time.Second, Jitter: 0.05, Timeout: 2 * time.Second, Retries: 1}
}

// Merge returns c with the non-zero fields of override applied.
func (c PollConfig) Merge(override PollConfig) PollConfig {
	if override.Interval != 0 {
		c.Interval = override.Interval
	}
	if override.Jitter != 0 {
		c.Jitter = override.Jitter
	}
	if override.Timeout != 0 {
		c.Timeout = override.Timeout
	}
	if override.Retries != 0 {
		c.Retries = override.Retries
	}
	return c
}

// Validate reports every problem, naming keys under prefix. Zero values are allowed when
// inheriting (a device's overrides); call ValidateEffective on the merged result.
func (c PollConfig) Validate(prefix string) error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("%sinterval: must be > 0, got %s", prefix, c.Interval))
	}
	if c.Jitter < 0 || c.Jitter > 0.5 {
		errs = append(errs, fmt.Errorf("%sjitter: must be between 0 and 0.5 (a fraction of interval), got %g", prefix, c.Jitter))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%stimeout: must be > 0, got %s", prefix, c.Timeout))
	}
	if c.Retries < 0 || c.Retries > 10 {
		errs = append(errs, fmt.Errorf("%sretries: must be between 0 and 10, got %d", prefix, c.Retries))
	}
	return errors.Join(errs...)
}

// ValidateEffective checks a merged config: interval and timeout must be set, and a request must
// fit in the interval.
func (c PollConfig) ValidateEffective(prefix string) error {
	var errs []error
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%sinterval: must be > 0", prefix))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("%stimeout: must be > 0", prefix))
	}
	if c.Interval > 0 && c.Timeout > c.Interval {
		errs = append(errs, fmt.Errorf("%stimeout: %s is longer than the poll interval %s", prefix, c.Timeout, c.Interval))
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

// MetricConfig turns one health metric on or off.
type MetricConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

// HealthMetricsConfig turns each health metric on or off (all on by default).
type HealthMetricsConfig struct {
	Up           MetricConfig `mapstructure:"iiot.device.up"`
	PollDuration MetricConfig `mapstructure:"iiot.device.poll.duration"`
	PollErrors   MetricConfig `mapstructure:"iiot.device.poll.errors"`
	Requests     MetricConfig `mapstructure:"iiot.device.requests"`
	BreakerState MetricConfig `mapstructure:"iiot.device.breaker.state"`
}

// NewDefaultHealthMetricsConfig enables every health metric.
func NewDefaultHealthMetricsConfig() HealthMetricsConfig {
	on := MetricConfig{Enabled: true}
	return HealthMetricsConfig{Up: on, PollDuration: on, PollErrors: on, Requests: on, BreakerState: on}
}

// Settings groups what every receiver exposes at its top level for its devices, embedded with
// `mapstructure:",squash"`.
type Settings struct {
	Poll    PollConfig          `mapstructure:"poll"`
	Breaker poll.BreakerConfig  `mapstructure:"breaker"`
	Traces  TracesConfig        `mapstructure:"traces"`
	Metrics HealthMetricsConfig `mapstructure:"metrics"`
}

// NewDefaultSettings returns the defaults of every part.
func NewDefaultSettings() Settings {
	return Settings{
		Poll:    NewDefaultPollConfig(),
		Breaker: poll.NewDefaultBreakerConfig(),
		Traces:  NewDefaultTracesConfig(),
		Metrics: NewDefaultHealthMetricsConfig(),
	}
}

// Validate reports every problem of the top-level settings.
func (s Settings) Validate() error {
	return errors.Join(
		s.Poll.Validate("poll."),
		s.Poll.ValidateEffective("poll."),
		s.Breaker.Validate("breaker"),
		s.Traces.Validate("traces."),
	)
}

// IDs checks the device ids of one receiver's config: each is given and unique, since it becomes
// the device.id resource attribute. The map holds the config path that first used each id.
type IDs map[string]string

// Check registers the id of the device at path (e.g. `buses[0].meters[2]`) and returns the prefix
// that names the device in its config errors (`buses[0].meters[2] "meter-3": `), with the id's own
// error if it is missing or taken.
func (ids IDs) Check(path, id string) (prefix string, err error) {
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
