package quantile

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestGaugeSuffix(t *testing.T) {
	for q, want := range map[float64]string{
		0.5: ".p50", 0.9: ".p90", 0.99: ".p99", 0.999: ".p999", 0.9999: ".p9999",
		0.05: ".p05", 0.95: ".p95", 0.25: ".p25", 0.001: ".p001", 0.1: ".p10",
	} {
		assert.Equal(t, want, GaugeSuffix(q), "q=%v", q)
	}
}

func TestBuilderGroupsByResourceAndMetric(t *testing.T) {
	b := NewBuilder("scope", "v1", []float64{0.5, 0.99})
	res := func(kv ...string) pcommon.Map {
		m := pcommon.NewMap()
		for i := 0; i < len(kv); i += 2 {
			m.PutStr(kv[i], kv[i+1])
		}
		return m
	}
	out := &Output{Name: "lat", Unit: "ms", Description: "d", Outputs: OutputsConfig{Summary: true, Gauges: true}}
	start := time.Unix(100, 0)
	r := &Result{WindowEnd: time.Unix(200, 0), Count: 3, Sum: 6, Min: 1, Max: 3, Quantiles: []float64{2, 3}, TotalCount: 7, TotalSum: 20}
	b.Append("a", res("dev", "a"), res("op", "read"), out, start, r)
	b.Append("a", res("dev", "a"), res("op", "write"), out, start, r)
	b.Append("b", res("dev", "b"), res(), out, start, r)
	assert.Equal(t, 3*6, b.Points())
	md := b.Take()
	assert.Equal(t, 0, b.Points())
	require.Equal(t, 2, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)
	v, _ := rm.Resource().Attributes().Get("dev")
	assert.Equal(t, "a", v.Str())
	sm := rm.ScopeMetrics().At(0)
	assert.Equal(t, "scope", sm.Scope().Name())
	assert.Equal(t, "v1", sm.Scope().Version())
	require.Equal(t, 6, sm.Metrics().Len(), "summary, 2 quantile gauges, min, max, count")
	s := sm.Metrics().At(0)
	assert.Equal(t, "lat.quantiles", s.Name())
	assert.Equal(t, pmetric.MetricTypeSummary, s.Type())
	require.Equal(t, 2, s.Summary().DataPoints().Len(), "both op series in one metric")
	dp := s.Summary().DataPoints().At(0)
	assert.Equal(t, uint64(7), dp.Count())
	assert.Equal(t, 20.0, dp.Sum())
	assert.Equal(t, pcommon.NewTimestampFromTime(start), dp.StartTimestamp())
	assert.Equal(t, pcommon.NewTimestampFromTime(time.Unix(200, 0)), dp.Timestamp())
	assert.Equal(t, 0.99, dp.QuantileValues().At(1).Quantile())
	assert.Equal(t, 3.0, dp.QuantileValues().At(1).Value())
	var names []string
	for i := 0; i < sm.Metrics().Len(); i++ {
		names = append(names, sm.Metrics().At(i).Name())
	}
	assert.Equal(t, []string{"lat.quantiles", "lat.p50", "lat.p99", "lat.min", "lat.max", "lat.count"}, names)
	assert.Equal(t, int64(3), sm.Metrics().At(5).Gauge().DataPoints().At(0).IntValue())
	assert.Equal(t, "{count}", sm.Metrics().At(5).Unit())
}

func TestOutputsCheck(t *testing.T) {
	assert.EqualError(t, OutputsConfig{}.Validate("metrics[0]: "), "metrics[0]: outputs: enable summary, gauges or both")
	assert.NoError(t, OutputsConfig{Gauges: true}.Validate(""))
	assert.NoError(t, NewDefaultWindowConfig().Validate(""))
	assert.Equal(t, Settings(NewDefaultWindowConfig()), NewDefaultWindowConfig().Settings())
}
