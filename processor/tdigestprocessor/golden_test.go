package tdigestprocessor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/require"
)

// TestGolden runs testdata/golden/<case>/input.yaml through the processor
// (sent one second after t0) and compares the emission at t0+10s with
// expected.yaml. UPDATE_GOLDEN=1 rewrites the expected files.
func TestGolden(t *testing.T) {
	cases := map[string]*Config{
		"poll_duration_by_device": testConfig(nil, sel("iiot.device.poll.duration", func(m *MetricConfig) {
			m.GroupBy = []string{"device.id"}
			m.Outputs.Gauges = true
		})),
		"histogram_all_attributes": testConfig(func(c *Config) { c.Quantiles = []float64{0.5, 0.99} },
			sel("", func(m *MetricConfig) { m.Regex = `\.latency$` })),
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", name)
			in, err := golden.ReadMetrics(filepath.Join(dir, "input.yaml"))
			require.NoError(t, err)
			h := newHarness(t, cfg)
			h.at(time.Second)
			h.consume(in)
			out := h.emitAt(10 * time.Second)
			require.Len(t, out, 1)
			expectedFile := filepath.Join(dir, "expected.yaml")
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				require.NoError(t, golden.WriteMetrics(t, expectedFile, out[0]))
			}
			expected, err := golden.ReadMetrics(expectedFile)
			require.NoError(t, err)
			require.NoError(t, pmetrictest.CompareMetrics(expected, out[0],
				pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricsOrder(),
				pmetrictest.IgnoreTimestamp(), pmetrictest.IgnoreStartTimestamp())) // timestamps: see processor_test.go
		})
	}
}
