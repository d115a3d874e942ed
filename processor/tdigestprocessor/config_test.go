package tdigestprocessor

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
	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	def := quantile.NewDefaultWindowConfig()
	tests := []struct {
		id      string
		want    *Config
		errs    []string // each must appear in the joined error
		unmarsh string   // an unmarshal error
	}{
		{
			id: "tdigest",
			want: &Config{WindowConfig: def, Metrics: []MetricConfig{{
				Name: "iiot.device.poll.duration", Outputs: quantile.OutputsConfig{Summary: true},
				PassThrough: true, Sums: SumValue,
			}}},
		},
		{
			id: "tdigest/full",
			want: &Config{
				WindowConfig: quantile.WindowConfig{
					Window: 2 * time.Minute, Slide: 15 * time.Second, Compression: 200, ExactLimit: 256,
					MaxSeries: 500, Quantiles: []float64{0.5, 0.95, 0.99},
				},
				Metrics: []MetricConfig{
					{
						Name: "iiot.device.poll.duration", GroupBy: []string{"device.id", "device.protocol"},
						Outputs: quantile.OutputsConfig{Summary: true, Gauges: true}, PassThrough: false, Sums: SumValue,
					},
					{
						Regex: `^inverter\..*\.power$`, Attributes: map[string]string{"site": "plant-1"},
						GroupBy: []string{}, OutputName: "site.power",
						Outputs: quantile.OutputsConfig{Gauges: true}, PassThrough: true, Sums: SumValue,
					},
					{
						Name: "energy.active.import", Sums: SumDelta, GroupBy: []string{"device.id"},
						Outputs: quantile.OutputsConfig{Summary: true}, PassThrough: true,
					},
				},
			},
		},
		{id: "tdigest/bad_window", errs: []string{"window 25s must be a multiple of slide 10s"}},
		{id: "tdigest/bad_everything", errs: []string{
			"slide 0s must be positive",
			"window -1s must be positive",
			"compression 5 must be within [20, 1000]",
			"exact_limit 0 must be within [1, 65536]",
			"max_series 0 must be at least 1",
			"quantiles[1] 0.5 must be greater than quantiles[0] 0.9",
			"quantiles[2] 1.5 must be within (0, 1)",
			"metrics[0]: one of name or regex is required",
			"metrics[1]: name and regex are exclusive: set one",
			"metrics[2]: regex \"([\": error parsing regexp",
			"metrics[2]: attributes: empty attribute name",
			"metrics[2]: group_by[1]: empty attribute name",
			"metrics[2]: group_by[2]: \"x\" listed twice",
			"metrics[2]: outputs: enable summary, gauges or both",
			"metrics[2]: sums: unknown mode \"rate\" (want value or delta)",
		}},
		{id: "tdigest/no_metrics", errs: []string{"metrics: at least one selector is required"}},
		{id: "tdigest/misspelt", unmarsh: "group-by"},
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

func TestDefaultConfig(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	cfg := f.CreateDefaultConfig().(*Config)
	assert.Equal(t, quantile.NewDefaultWindowConfig(), cfg.WindowConfig)
	assert.Empty(t, cfg.Metrics)
	// the defaults alone are invalid: a selector is required
	assert.ErrorContains(t, confmap.Validate(cfg), "metrics: at least one selector is required")
	// a default round-trips through confmap
	conf := confmap.New()
	require.NoError(t, conf.Marshal(cfg))
	back := f.CreateDefaultConfig()
	require.NoError(t, conf.Unmarshal(back))
	assert.Equal(t, cfg, back)
}
