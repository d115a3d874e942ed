package tenantremotewriteexporter

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// vocabularyMetrics are readings of the electrical vocabulary, one per unit, as the receivers write them.
func vocabularyMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "dlt645")
	rm.Resource().Attributes().PutStr("service.instance.id", "meter-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for _, g := range []struct{ name, unit string }{
		{"electrical.voltage", "V"}, {"electrical.current", "A"}, {"electrical.power.active", "W"},
		{"electrical.power.reactive", "var"}, {"electrical.power.apparent", "VA"}, {"electrical.power_factor", "1"},
		{"electrical.frequency", "Hz"}, {"electrical.phase_angle", "deg"},
	} {
		m := ms.AppendEmpty()
		m.SetName(g.name)
		m.SetUnit(g.unit)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(1_000_000_000))
		dp.SetDoubleValue(1)
		dp.Attributes().PutStr("phase", "A")
	}
	for _, s := range []struct{ name, unit string }{{"electrical.energy.active", "Wh"}, {"electrical.energy.reactive", "varh"}} {
		m := ms.AppendEmpty()
		m.SetName(s.name)
		m.SetUnit(s.unit)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(1_000_000_000))
		dp.SetIntValue(12345670)
		dp.Attributes().PutStr("direction", "import")
	}
	return md
}

// Every unit of the vocabulary becomes a lower-case Prometheus suffix: the translator's own (volts …)
// or ours (volt_amperes …); none is passed through in mixed case.
func TestPrometheusNamesLowerCase(t *testing.T) {
	srv := newRWServer(t)
	cfg := testConfig(srv.URL + "/api/v1/write")
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	exp := startExporter(t, cfg, nil, nil)

	md := vocabularyMetrics()
	md.MarkReadOnly() // shared with another consumer: sent renamed, left as it is
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
	want := []string{
		"electrical_voltage_volts", "electrical_current_amperes", "electrical_power_active_watts",
		"electrical_power_reactive_volt_amperes_reactive", "electrical_power_apparent_volt_amperes",
		"electrical_power_factor_ratio", "electrical_frequency_hertz", "electrical_phase_angle_degrees",
		"electrical_energy_active_watt_hours_total", "electrical_energy_reactive_volt_ampere_reactive_hours_total",
	}
	require.Eventually(t, func() bool {
		for _, n := range want {
			if len(srv.samples("", n)) == 0 {
				return false
			}
		}
		return true
	}, waitFor, tick)
	assert.Equal(t, []float64{12345670}, []float64{srv.samples("", "electrical_energy_active_watt_hours_total")[0].Value})
	lower := regexp.MustCompile(`^[a-z_:]+\{`)
	for _, r := range srv.requestsCopy() {
		for _, ts := range r.Series {
			assert.Regexp(t, lower, seriesKey(ts.Labels), "Prometheus names are lower case")
		}
	}
	assert.Equal(t, "VA", md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(4).Unit(), "shared data keeps its UCUM unit")
}

func TestPromUnitsMap(t *testing.T) {
	word := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for ucum, prom := range promUnits {
		assert.Regexp(t, word, prom, ucum)
		assert.NotEqual(t, strings.ToLower(ucum), prom, "%s: spelt out, not just lower-cased", ucum)
	}
	for _, u := range []string{"V", "A", "W", "Hz", "1", "Cel", "s", "{event}"} {
		_, ok := promUnit(u)
		assert.False(t, ok, "%s: the translator's own, or not a unit word", u)
	}
}

// A retried request is renamed again: nothing changes the second time.
func TestRenameUnitsIdempotent(t *testing.T) {
	md := vocabularyMetrics()
	renameUnits(md)
	once := pmetric.NewMetrics()
	md.CopyTo(once)
	renameUnits(md)
	assert.Equal(t, once, md)
	assert.False(t, hasPromUnits(md))
}

// The demo scrapes the contrib prometheus exporter and spells the same units with a transform
// processor: its statements must be this map's, for every unit of the electrical vocabulary.
func TestDemoSpellsUnitsAsPromUnits(t *testing.T) {
	b, err := os.ReadFile("../../distributions/otelcol-iiot/demo.yaml")
	require.NoError(t, err)
	re := regexp.MustCompile(`set\(metric\.unit, "([a-z_]+)"\) where metric\.unit == "([^"]+)"`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		got[m[2]] = m[1]
	}
	for _, u := range []string{"VA", "var", "Wh", "varh", "deg"} {
		require.Contains(t, got, u)
		assert.Equal(t, promUnits[u], got[u], u)
	}
}
