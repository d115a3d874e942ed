package tenantprocessor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadatatest"
)

type reading struct {
	name, unit string
	attrs      map[string]string
}

// meterInput is one meter's readings, right and wrong.
func meterInput(rs ...reading) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("tenant.id", "grid")
	rm.Resource().Attributes().PutStr("device.id", "meter-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for _, r := range rs {
		m := ms.AppendEmpty()
		m.SetName(r.name)
		m.SetUnit(r.unit)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(1_000_000_000))
		dp.SetDoubleValue(1)
		for k, v := range r.attrs {
			dp.Attributes().PutStr(k, v)
		}
	}
	return md
}

// series lists name{attrs} of the points that came through.
func series(md pmetric.Metrics) []string {
	var out []string
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				dps := m.Gauge().DataPoints()
				for l := 0; l < dps.Len(); l++ {
					s := m.Name() + "{"
					for k, v := range dps.At(l).Attributes().All() {
						s += k + "=" + v.AsString() + ","
					}
					out = append(out, s+"}")
				}
			}
		}
	}
	return out
}

func TestSchemaElectricalVocabulary(t *testing.T) {
	in := meterInput(
		reading{"electrical.voltage", "V", map[string]string{"phase": "A"}},
		reading{"electrical.voltage", "V", map[string]string{"phase": "AB"}},
		reading{"electrical.power.active", "kW", map[string]string{"phase": "total"}},        // wrong unit
		reading{"electrical.voltage.line", "V", map[string]string{"phase": "AB"}},            // not a quantity
		reading{"electrical.current", "A", map[string]string{"phase": "L1"}},                 // phase of the old profiles
		reading{"electrical.energy.active", "Wh", map[string]string{"direction": "forward"}}, // DL/T 645's old value
		reading{"electrical.energy.active.settled", "Wh", map[string]string{"phase": "total"}},
		reading{"electrical.power.active", "W", nil},                    // no phase: summed with the phases, counted twice
		reading{"electrical.frequency", "Hz", nil},                      // a quantity without phases
		reading{"meter.voltage", "V", map[string]string{"phase": "L1"}}, // outside the vocabulary: untouched
	)
	for _, tc := range []struct {
		action SchemaAction
		want   []string
		counts []metricdata.DataPoint[int64]
	}{
		// drop_attribute: the current and the energy lose their wrong attribute, and with it (or without
		// it from the start) the phase they must carry, so they are dropped as well.
		{SchemaDropAttribute, []string{
			"electrical.voltage{phase=A,}", "electrical.voltage{phase=AB,}",
			"electrical.energy.active.settled{phase=total,}", "electrical.frequency{}", "meter.voltage{phase=L1,}",
		}, []metricdata.DataPoint[int64]{
			{Attributes: aset(str("tenant", "grid"), str("reason", "value_not_allowed"), str("action", "drop_attribute")), Value: 2},
			{Attributes: aset(str("tenant", "grid"), str("reason", "wrong_unit"), str("action", "drop_data")), Value: 1},
			{Attributes: aset(str("tenant", "grid"), str("reason", "unknown_metric"), str("action", "drop_data")), Value: 1},
			{Attributes: aset(str("tenant", "grid"), str("reason", "missing_attribute"), str("action", "drop_data")), Value: 3},
		}},
		{SchemaDropData, []string{
			"electrical.voltage{phase=A,}", "electrical.voltage{phase=AB,}",
			"electrical.energy.active.settled{phase=total,}", "electrical.frequency{}", "meter.voltage{phase=L1,}",
		}, []metricdata.DataPoint[int64]{
			{Attributes: aset(str("tenant", "grid"), str("reason", "value_not_allowed"), str("action", "drop_data")), Value: 2},
			{Attributes: aset(str("tenant", "grid"), str("reason", "wrong_unit"), str("action", "drop_data")), Value: 1},
			{Attributes: aset(str("tenant", "grid"), str("reason", "unknown_metric"), str("action", "drop_data")), Value: 1},
			{Attributes: aset(str("tenant", "grid"), str("reason", "missing_attribute"), str("action", "drop_data")), Value: 1},
		}},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Schema = SchemaConfig{Vocabulary: "electrical", Action: tc.action}
			tel := newTelemetry(t)
			sink := &consumertest.MetricsSink{}
			p := newMetricsProcessor(t, cfg, tel, sink)
			md := pmetric.NewMetrics()
			in.CopyTo(md)
			require.NoError(t, p.ConsumeMetrics(context.Background(), md))
			assert.ElementsMatch(t, tc.want, series(collected(sink)))
			metadatatest.AssertEqualProcessorTenantSchemaViolations(t, tel, tc.counts, metricdatatest.IgnoreTimestamp())
		})
	}
}

// attribute_values apply to every attribute; metric_units and metric_prefixes make an allow-list of
// one's own names.
func TestSchemaAttributeValuesAndMetricUnits(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Schema = SchemaConfig{
		AttributeValues: map[string][]string{"phase": {"A", "B", "C", "total"}},
		MetricUnits:     map[string]string{"acme.flow": "m3/h"},
		MetricPrefixes:  []string{"acme."},
		Action:          SchemaDropData,
	}
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, cfg, nil, sink)
	require.NoError(t, p.ConsumeMetrics(context.Background(), meterInput(
		reading{"acme.flow", "m3/h", nil},
		reading{"acme.flow2", "m3/h", nil}, // under the prefix, not listed
		reading{"other.flow", "l/s", nil},  // outside
		reading{"acme.flow", "l/s", nil},   // listed, wrong unit
		reading{"x.power", "W", map[string]string{"phase": "L2"}},
		reading{"x.power", "W", map[string]string{"phase": "B"}},
	)))
	assert.ElementsMatch(t, []string{"acme.flow{}", "other.flow{}", "x.power{phase=B,}"}, series(collected(sink)))
}

func TestSchemaVocabularyConfigErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Schema = SchemaConfig{
		Vocabulary: "electric", AttributeValues: map[string][]string{"phase": {}}, MetricPrefixes: []string{""},
		Action: SchemaDropAttribute,
	}
	err := cfg.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, `schema::vocabulary: "electric", want electrical (or empty: none)`)
	assert.ErrorContains(t, err, "schema::attribute_values::phase: empty list")
	assert.ErrorContains(t, err, "schema::metric_prefixes[0]: empty prefix")
}

// The README's example loads and enforces what it says.
func TestSchemaVocabularyReadmeExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	sec := string(b)[strings.Index(string(b), "### Electrical vocabulary"):]
	sec = sec[strings.Index(sec, "```yaml\n")+len("```yaml\n"):]
	sec = sec[:strings.Index(sec, "```")]
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(sec), 0o600))
	cm, err := confmaptest.LoadConf(path)
	require.NoError(t, err)
	sub, err := cm.Sub("processors::tenant")
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, cfg, nil, sink)
	require.NoError(t, p.ConsumeMetrics(context.Background(), meterInput(
		reading{"electrical.power.active", "kW", map[string]string{"phase": "total"}},
		reading{"electrical.power.active", "W", map[string]string{"phase": "total"}},
		reading{"acme.level", "m", nil},
	)))
	assert.Equal(t, []string{"electrical.power.active{phase=total,}"}, series(collected(sink)))
}

// BenchmarkSchemaVocabulary: the cost of schema::vocabulary on meter readings (compare with the
// same input and no schema: sub-benchmark none).
func BenchmarkSchemaVocabulary(b *testing.B) {
	rs := []reading{
		{"electrical.voltage", "V", map[string]string{"phase": "A"}},
		{"electrical.voltage", "V", map[string]string{"phase": "B"}},
		{"electrical.voltage", "V", map[string]string{"phase": "C"}},
		{"electrical.current", "A", map[string]string{"phase": "A"}},
		{"electrical.power.active", "W", map[string]string{"phase": "total"}},
		{"electrical.power_factor", "1", map[string]string{"phase": "total"}},
		{"electrical.frequency", "Hz", nil},
		{"electrical.energy.active", "Wh", map[string]string{"direction": "import", "phase": "total", "tariff": "total"}},
		{"iiot.device.up", "1", nil},
		{"dlt645.meter.clock.drift", "s", nil},
	}
	input := pmetric.NewMetrics()
	for range 100 {
		meterInput(rs...).ResourceMetrics().MoveAndAppendTo(input.ResourceMetrics())
	}
	for _, tc := range []struct{ name, conf string }{
		{"none", ""},
		{"vocabulary", "schema: {vocabulary: electrical}\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newTenantBench(b, tc.conf, consumertest.NewNop())
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				md := pmetric.NewMetrics()
				input.CopyTo(md)
				b.StartTimer()
				if err := p.ConsumeMetrics(context.Background(), md); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(input.DataPointCount()), "ns/point")
		})
	}
}
