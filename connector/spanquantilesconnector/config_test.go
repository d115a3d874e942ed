package spanquantilesconnector

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/quantile"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	none := "none"
	tests := []struct {
		id      string
		want    *Config
		errs    []string
		unmarsh string
	}{
		{id: "spanquantiles", want: createDefaultConfig().(*Config)},
		{id: "spanquantiles/full", want: &Config{
			WindowConfig: quantile.WindowConfig{
				Window: 5 * time.Minute, Slide: 30 * time.Second, Compression: 150, ExactLimit: 64,
				MaxSeries: 2000, Quantiles: []float64{0.5, 0.99},
			},
			Name: "iiot.poll.duration", Unit: "ms",
			Outputs:            quantile.OutputsConfig{Summary: true, Gauges: true},
			Dimensions:         []Dimension{{Name: "device.id"}, {Name: "error.type", Default: &none}},
			ResourceAttributes: []string{"tenant.id", "site"},
			SpanNameRegex:      `\.poll$`,
		}},
		{id: "spanquantiles/bad_everything", errs: []string{
			"window 10s must be a multiple of slide 20s",
			"quantiles must not be empty",
			`name "bad name": must be a non-empty metric name without spaces`,
			`unit "us": want s or ms`,
			"outputs: enable summary, gauges or both",
			"dimensions[0]: name is required",
			`dimensions[1]: "span.name" is always a dimension (built in: service.name, span.name, span.kind, status.code)`,
			`dimensions[3]: "device.id" listed twice`,
			"resource_attributes[0]: empty name",
			`resource_attributes[1]: "service.name" is always kept`,
			`resource_attributes[3]: "site" listed twice`,
			`resource_attributes[4]: "device.id" is also a dimension; keep it in one place`,
			`span_name_regex "([": error parsing regexp`,
		}},
		{id: "spanquantiles/misspelt", unmarsh: "dimension"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			var id component.ID
			require.NoError(t, id.UnmarshalText([]byte(tt.id)))
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if tt.unmarsh != "" {
				require.ErrorContains(t, err, tt.unmarsh)
				return
			}
			require.NoError(t, err)
			verr := confmap.Validate(cfg)
			if tt.want != nil {
				require.NoError(t, verr)
				assert.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, verr)
			for _, e := range tt.errs {
				assert.ErrorContains(t, verr, e)
			}
		})
	}
}
