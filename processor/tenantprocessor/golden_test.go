package tenantprocessor

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
)

// -update rewrites expected.yaml of every golden case from what the processor produces now;
// review the diff before committing. Missing input.yaml files are always generated.
var update = flag.Bool("update", false, "rewrite testdata/golden/*/expected.yaml")

var baseTime = pcommon.Timestamp(1_700_000_000_000_000_000)

// res describes one resource of a test input.
type res struct {
	attrs   map[string]any
	metrics []met
}

type met struct {
	name   string
	sum    bool // monotonic cumulative sum, else gauge
	points []pt
}

type pt struct {
	attrs map[string]any
	value float64
	ms    int64 // offset from baseTime
}

func build(resources ...res) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, r := range resources {
		rm := md.ResourceMetrics().AppendEmpty()
		_ = rm.Resource().Attributes().FromRaw(r.attrs)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("otelcol-iiot/test")
		for _, m := range r.metrics {
			metric := sm.Metrics().AppendEmpty()
			metric.SetName(m.name)
			var dps pmetric.NumberDataPointSlice
			if m.sum {
				s := metric.SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				dps = s.DataPoints()
				metric.SetUnit("kWh")
			} else {
				dps = metric.SetEmptyGauge().DataPoints()
				metric.SetUnit("kW")
			}
			for _, p := range m.points {
				dp := dps.AppendEmpty()
				if p.attrs != nil {
					_ = dp.Attributes().FromRaw(p.attrs)
				}
				dp.SetStartTimestamp(baseTime - pcommon.Timestamp(time.Hour))
				dp.SetTimestamp(baseTime + pcommon.Timestamp(p.ms*int64(time.Millisecond)))
				dp.SetDoubleValue(p.value)
			}
		}
	}
	return md
}

// gatewayInput: five devices of a substation gateway, each with a power gauge (two phases)
// and an energy counter.
func gatewayInput() pmetric.Metrics {
	device := func(attrs map[string]any, base float64) res {
		return res{attrs: attrs, metrics: []met{
			{name: "iiot.power", points: []pt{{attrs: map[string]any{"phase": "L1"}, value: base}, {attrs: map[string]any{"phase": "L2"}, value: base + 1}}},
			{name: "iiot.energy", sum: true, points: []pt{{value: base * 100}}},
		}}
	}
	return build(
		device(map[string]any{"device.id": "inv-01", "device.protocol": "modbus", "site": "sz-01"}, 5),
		device(map[string]any{"device.id": "inv-02", "device.protocol": "modbus", "site": "gz-03"}, 6),
		device(map[string]any{"device.id": "meter-7", "device.protocol": "dlt645", "site": "sz-01"}, 7),
		device(map[string]any{"device.id": "meter-8", "device.protocol": "dlt645", "tenant.id": "preassigned"}, 8),
		device(map[string]any{"device.id": "plc-1", "device.protocol": "opcua"}, 9),
	)
}

// schemaInput carries attributes that break the schema of the schema cases.
func schemaInput() pmetric.Metrics {
	return build(
		res{attrs: map[string]any{"device.id": "inv-01", "tenant.id": "pv-owner", "user.id": "u-17"}, metrics: []met{
			{name: "iiot.power", points: []pt{
				{attrs: map[string]any{"phase": "L1"}, value: 1},
				{attrs: map[string]any{"phase": "L2", "http.session.id": "s-9"}, value: 2},
				{attrs: map[string]any{"phase": "L3", "Operator-Name": "li"}, value: 3},
				{attrs: map[string]any{"phase": "L3", "note": "a value much longer than sixteen bytes"}, value: 4},
			}},
		}},
		res{attrs: map[string]any{"device.id": "meter-7", "tenant.id": "grid-operator"}, metrics: []met{
			{name: "iiot.power", points: []pt{{attrs: map[string]any{"phase": "L1"}, value: 5}}},
		}},
	)
}

// budgetInput: tenant a has 8 series (5 power phases, 3 energy lines), tenant b has 2.
func budgetInput() pmetric.Metrics {
	var power, energy []pt
	for i, ph := range []string{"p1", "p2", "p3", "p4", "p5"} {
		power = append(power, pt{attrs: map[string]any{"phase": ph}, value: float64(10 + i), ms: int64(i)})
	}
	for i, line := range []string{"1", "2", "3"} {
		energy = append(energy, pt{attrs: map[string]any{"line": line}, value: float64(100 * (i + 1)), ms: int64(i)})
	}
	return build(
		res{attrs: map[string]any{"device.id": "inv-01", "tenant.id": "a"}, metrics: []met{
			{name: "iiot.power", points: power},
			{name: "iiot.energy", sum: true, points: energy},
		}},
		res{attrs: map[string]any{"device.id": "meter-7", "tenant.id": "b"}, metrics: []met{
			{name: "iiot.power", points: []pt{{attrs: map[string]any{"phase": "p1"}, value: 1}, {attrs: map[string]any{"phase": "p2"}, value: 2}}},
		}},
	)
}

// inputs name the generators of input.yaml (referenced by a case's input.txt).
var inputs = map[string]func() pmetric.Metrics{
	"gateway": gatewayInput,
	"schema":  schemaInput,
	"budget":  budgetInput,
}

// loadProcessorConfig reads a processor config file (as the processor receives it).
func loadProcessorConfig(t *testing.T, path string) *Config {
	cm, err := confmaptest.LoadConf(path)
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cm.Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	return cfg
}

// newMetricsProcessor creates and starts the processor; it is shut down at cleanup.
func newMetricsProcessor(t *testing.T, cfg *Config, tel *componenttest.Telemetry, sink *consumertest.MetricsSink) processor.Metrics {
	t.Helper()
	set := processortest.NewNopSettings(metadata.Type)
	if tel != nil {
		set.TelemetrySettings = tel.NewTelemetrySettings()
	}
	p, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func compareOpts() []pmetrictest.CompareMetricsOption {
	return []pmetrictest.CompareMetricsOption{
		pmetrictest.IgnoreResourceMetricsOrder(),
		pmetrictest.IgnoreMetricsOrder(),
		pmetrictest.IgnoreMetricDataPointsOrder(),
	}
}

// TestGolden runs every case in testdata/golden: config.yaml applied to input.yaml must give
// expected.yaml.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "config.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, cfgPath := range dirs {
		dir := filepath.Dir(cfgPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			inputPath := filepath.Join(dir, "input.yaml")
			if _, err := os.Stat(inputPath); os.IsNotExist(err) {
				name, err := os.ReadFile(filepath.Join(dir, "input.txt"))
				require.NoError(t, err, "a case needs input.yaml or input.txt naming a generator")
				gen, ok := inputs[string(trimNL(name))]
				require.True(t, ok, "unknown input generator %q", name)
				require.NoError(t, golden.WriteMetricsToFile(inputPath, gen(), golden.SkipMetricTimestampNormalization()))
			}
			input, err := golden.ReadMetrics(inputPath)
			require.NoError(t, err)

			sink := &consumertest.MetricsSink{}
			p := newMetricsProcessor(t, loadProcessorConfig(t, cfgPath), nil, sink)
			require.NoError(t, p.ConsumeMetrics(context.Background(), input))

			got := pmetric.NewMetrics()
			for _, md := range sink.AllMetrics() {
				md.ResourceMetrics().MoveAndAppendTo(got.ResourceMetrics())
			}
			expectedPath := filepath.Join(dir, "expected.yaml")
			if *update {
				require.NoError(t, golden.WriteMetricsToFile(expectedPath, got, golden.SkipMetricTimestampNormalization()))
			}
			expected, err := golden.ReadMetrics(expectedPath)
			require.NoError(t, err)
			require.NoError(t, pmetrictest.CompareMetrics(expected, got, compareOpts()...))
		})
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
