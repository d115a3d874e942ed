package spanquantilesconnector

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

// Config of the spanquantiles connector.
type Config struct {
	// Window, slide, compression, exact_limit, max_series and quantiles.
	quantile.WindowConfig `mapstructure:",squash"`
	// Name is the base name of the generated metrics: a Summary <name>.quantiles
	// and/or gauges <name>.p99 ... (default traces.span.duration).
	Name string `mapstructure:"name"`
	// Unit of the durations: s (default) or ms.
	Unit string `mapstructure:"unit"`
	// Outputs selects the Summary and/or the gauges.
	Outputs quantile.OutputsConfig `mapstructure:"outputs"`
	// Dimensions are further attributes identifying a series, looked up on the
	// span, then on its resource.
	Dimensions []Dimension `mapstructure:"dimensions"`
	// ResourceAttributes are copied from the spans' resource onto the resource of the series they
	// feed, and keep apart the series of resources that differ in them (default [tenant.id], so
	// that each tenant's quantiles are its own and reach that tenant's backend).
	ResourceAttributes []string `mapstructure:"resource_attributes"`
	// SpanNameRegex restricts the connector to spans whose name matches (RE2,
	// unanchored), e.g. '\.poll$' for the device receivers' poll spans.
	SpanNameRegex string `mapstructure:"span_name_regex"`
}

// Dimension is an attribute that identifies a series.
type Dimension struct {
	// Name of the span or resource attribute.
	Name string `mapstructure:"name"`
	// Default is used when neither the span nor its resource has the attribute;
	// without it the attribute is left out.
	Default *string `mapstructure:"default"`
}

// Built-in series attributes.
const (
	attrServiceName = "service.name"
	attrSpanName    = "span.name"
	attrSpanKind    = "span.kind"
	attrStatusCode  = "status.code"
)

var (
	_ component.Config  = (*Config)(nil)
	_ confmap.Validator = (*Config)(nil)
)

func createDefaultConfig() component.Config {
	return &Config{
		WindowConfig: quantile.NewDefaultWindowConfig(),
		Name:         "traces.span.duration",
		Unit:         "s",
		Outputs:      quantile.OutputsConfig{Summary: true},

		ResourceAttributes: []string{"tenant.id"},
	}
}

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if err := c.WindowConfig.Validate(""); err != nil {
		errs = append(errs, err)
	}
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\n") {
		errs = append(errs, fmt.Errorf("name %q: must be a non-empty metric name without spaces", c.Name))
	}
	if c.Unit != "s" && c.Unit != "ms" {
		errs = append(errs, fmt.Errorf("unit %q: want s or ms", c.Unit))
	}
	if err := c.Outputs.Validate(""); err != nil {
		errs = append(errs, err)
	}
	builtin := []string{attrServiceName, attrSpanName, attrSpanKind, attrStatusCode}
	for i, d := range c.Dimensions {
		switch {
		case d.Name == "":
			errs = append(errs, fmt.Errorf("dimensions[%d]: name is required", i))
		case slices.Contains(builtin, d.Name):
			errs = append(errs, fmt.Errorf("dimensions[%d]: %q is always a dimension (built in: %s)", i, d.Name, strings.Join(builtin, ", ")))
		case slices.ContainsFunc(c.Dimensions[:i], func(o Dimension) bool { return o.Name == d.Name }):
			errs = append(errs, fmt.Errorf("dimensions[%d]: %q listed twice", i, d.Name))
		}
	}
	for i, a := range c.ResourceAttributes {
		switch {
		case a == "":
			errs = append(errs, fmt.Errorf("resource_attributes[%d]: empty name", i))
		case a == attrServiceName:
			errs = append(errs, fmt.Errorf("resource_attributes[%d]: %q is always kept", i, a))
		case slices.Contains(c.ResourceAttributes[:i], a):
			errs = append(errs, fmt.Errorf("resource_attributes[%d]: %q listed twice", i, a))
		case slices.ContainsFunc(c.Dimensions, func(d Dimension) bool { return d.Name == a }):
			errs = append(errs, fmt.Errorf("resource_attributes[%d]: %q is also a dimension; keep it in one place", i, a))
		}
	}
	if c.SpanNameRegex != "" {
		if _, err := regexp.Compile(c.SpanNameRegex); err != nil {
			errs = append(errs, fmt.Errorf("span_name_regex %q: %w", c.SpanNameRegex, err))
		}
	}
	return errors.Join(errs...)
}
