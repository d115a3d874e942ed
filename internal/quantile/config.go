package quantile

import (
	"fmt"
	"time"
)

// WindowConfig is the part of a component's configuration that sizes its
// engine; components embed it with `mapstructure:",squash"`.
type WindowConfig struct {
	// Window is the span of time the quantiles cover.
	Window time.Duration `mapstructure:"window"`
	// Slide is how often quantiles are emitted and how finely values age out;
	// Window must be a multiple of it.
	Slide time.Duration `mapstructure:"slide"`
	// Compression of the t-digests of busy slides (more is more accurate and larger).
	Compression float64 `mapstructure:"compression"`
	// ExactLimit is how many values a slide keeps exactly before it becomes a digest.
	ExactLimit int `mapstructure:"exact_limit"`
	// MaxSeries bounds the number of series; new series beyond it are refused and counted.
	MaxSeries int `mapstructure:"max_series"`
	// Quantiles to compute, ascending, each within (0, 1).
	Quantiles []float64 `mapstructure:"quantiles"`
}

// NewDefaultWindowConfig returns the defaults: a 60 s window sliding by 10 s,
// compression 100, 128 exact values per slide, 10000 series, P50/P90/P99/P99.9.
func NewDefaultWindowConfig() WindowConfig {
	return WindowConfig{
		Window:      DefaultWindow,
		Slide:       DefaultSlide,
		Compression: DefaultCompression,
		ExactLimit:  DefaultExactLimit,
		MaxSeries:   DefaultMaxSeries,
		Quantiles:   DefaultQuantiles(),
	}
}

// Settings converts the configuration for New.
func (c WindowConfig) Settings() Settings {
	return Settings(c)
}

// Validate reports every problem, each naming its key after prefix. It takes a prefix, like the
// receivers' schema validators, so confmap does not call it on its own: the embedding component's
// Validate reports it, once.
func (c WindowConfig) Validate(prefix string) error {
	if err := c.Settings().Validate(); err != nil {
		if prefix == "" {
			return err
		}
		return fmt.Errorf("%s%w", prefix, err)
	}
	return nil
}

// OutputsConfig chooses the metrics written for each series.
type OutputsConfig struct {
	// Summary writes a Summary <name>.quantiles: the window's quantiles plus the
	// count and sum of all values since the series started (the Prometheus
	// client-library summary semantics).
	Summary bool `mapstructure:"summary"`
	// Gauges writes gauges <name>.p50, <name>.p99, ... plus <name>.min,
	// <name>.max and <name>.count over the window.
	Gauges bool `mapstructure:"gauges"`
}

// Validate requires at least one output (called by the component's Validate, with the key prefix).
func (o OutputsConfig) Validate(prefix string) error {
	if !o.Summary && !o.Gauges {
		return fmt.Errorf("%soutputs: enable summary, gauges or both", prefix)
	}
	return nil
}
