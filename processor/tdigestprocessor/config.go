package tdigestprocessor

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

// Config of the tdigest processor.
type Config struct {
	// Window, slide, compression, exact_limit, max_series and quantiles,
	// shared by every selector.
	quantile.WindowConfig `mapstructure:",squash"`
	// Metrics selects the metrics to digest; a data point is handled by the
	// first selector that matches it.
	Metrics []MetricConfig `mapstructure:"metrics"`
}

// SumMode says what a Sum contributes.
type SumMode string

// Sum modes.
const (
	// SumValue digests each data point's value (levels, non-monotonic sums).
	SumValue SumMode = "value"
	// SumDelta digests the increase between successive points of a stream:
	// the point itself for delta temporality, the difference to the previous
	// point for cumulative temporality.
	SumDelta SumMode = "delta"
)

// MetricConfig selects metrics and says how their series are formed and written.
type MetricConfig struct {
	// Name selects the metric of exactly this name.
	Name string `mapstructure:"name"`
	// Regex selects the metrics whose name matches (RE2, unanchored: use ^...$).
	Regex string `mapstructure:"regex"`
	// Attributes restricts the selector to data points having these attribute
	// values (point attribute, else resource attribute; compared as strings).
	Attributes map[string]string `mapstructure:"attributes"`
	// GroupBy lists the attributes (point attribute, else resource attribute)
	// that identify a series; every other attribute is aggregated away. When
	// omitted every resource and point attribute is kept (one series per input
	// stream); an empty list aggregates all streams of a metric into one series.
	GroupBy []string `mapstructure:"group_by"`
	// OutputName is the base name of the generated metrics (default: the input
	// metric's name). Metrics mapped to the same output name and attributes
	// share one series.
	OutputName string `mapstructure:"output_name"`
	// Outputs selects a Summary <name>.quantiles and/or gauges <name>.p99 ...
	Outputs quantile.OutputsConfig `mapstructure:"outputs"`
	// PassThrough keeps the selected data points in the pipeline (default true).
	PassThrough bool `mapstructure:"pass_through"`
	// Sums is what a Sum contributes: value (default) or delta.
	Sums SumMode `mapstructure:"sums"`
}

var (
	_ component.Config    = (*Config)(nil)
	_ confmap.Validator   = (*Config)(nil)
	_ confmap.Unmarshaler = (*MetricConfig)(nil)
)

func defaultMetricConfig() MetricConfig {
	return MetricConfig{
		Outputs:     quantile.OutputsConfig{Summary: true},
		PassThrough: true,
		Sums:        SumValue,
	}
}

// Unmarshal applies the defaults of a selector before reading it, so that
// omitted keys of list items get the documented defaults.
func (m *MetricConfig) Unmarshal(conf *confmap.Conf) error {
	*m = defaultMetricConfig()
	// group_by: [] (aggregate everything) differs from an omitted group_by
	if conf.IsSet("group_by") {
		m.GroupBy = []string{}
	}
	return conf.Unmarshal(m)
}

func createDefaultConfig() component.Config {
	return &Config{WindowConfig: quantile.NewDefaultWindowConfig()}
}

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if err := c.WindowConfig.Validate(""); err != nil {
		errs = append(errs, err)
	}
	if len(c.Metrics) == 0 {
		errs = append(errs, errors.New("metrics: at least one selector is required"))
	}
	for i := range c.Metrics {
		for _, err := range c.Metrics[i].problems() {
			errs = append(errs, fmt.Errorf("metrics[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (m *MetricConfig) problems() []error {
	var errs []error
	switch {
	case m.Name == "" && m.Regex == "":
		errs = append(errs, errors.New("one of name or regex is required"))
	case m.Name != "" && m.Regex != "":
		errs = append(errs, errors.New("name and regex are exclusive: set one"))
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			errs = append(errs, fmt.Errorf("regex %q: %w", m.Regex, err))
		}
	}
	for k := range m.Attributes {
		if k == "" {
			errs = append(errs, errors.New("attributes: empty attribute name"))
		}
	}
	for i, k := range m.GroupBy {
		if k == "" {
			errs = append(errs, fmt.Errorf("group_by[%d]: empty attribute name", i))
		} else if slices.Contains(m.GroupBy[:i], k) {
			errs = append(errs, fmt.Errorf("group_by[%d]: %q listed twice", i, k))
		}
	}
	if err := m.Outputs.Validate(""); err != nil {
		errs = append(errs, err)
	}
	switch m.Sums {
	case SumValue, SumDelta:
	default:
		errs = append(errs, fmt.Errorf("sums: unknown mode %q (want value or delta)", m.Sums))
	}
	return errs
}
