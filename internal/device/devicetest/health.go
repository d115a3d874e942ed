package devicetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// HealthMetricNames are the health metrics every device receiver declares in its metadata.yaml.
var HealthMetricNames = []string{device.MetricUp, device.MetricPollDuration, device.MetricPollErrors, device.MetricRequests, device.MetricBreakerState}

// HealthPoll returns the metrics of one poll written by the hand-written recorder with health h, for a
// device with every identity field set, one request and one error of every device.ErrorType: every
// health metric the recorder can write, with every attribute value.
func HealthPoll(scope string, protocol device.Protocol, h device.HealthMetrics) pmetric.Metrics {
	start := time.Unix(1_700_000_000, 0)
	rec := device.NewRecorder(device.Identity{
		ID: "health-test", Protocol: protocol, Address: "tcp://127.0.0.1:1", Manufacturer: "ACME", Model: "M1",
	}, device.RecorderSettings{Scope: device.Scope{Name: scope}, Health: h, Start: start})
	p := rec.Begin(start)
	p.StartRequestAt("health-test.read", start).EndAt(nil, start.Add(time.Millisecond))
	for _, et := range device.ErrorTypes {
		p.Error(et)
	}
	md, _ := p.End(start.Add(2*time.Millisecond), poll.BreakerClosed)
	return md
}

// AssertHealthMatchesMetadata checks that the health metrics the recorder writes (written, from
// HealthPoll) are the ones a receiver's metadata.yaml declares (declared: one point of each health
// metric and a full resource, through the receiver's generated MetricsBuilder and ResourceBuilder), so
// that the two cannot drift: names, units, descriptions, types, monotonicity, temporality, value types,
// attribute keys, scope and resource attribute keys; errorTypes is the error.type enum of metadata.yaml.
func AssertHealthMatchesMetadata(t testing.TB, declared, written pmetric.Metrics, errorTypes []string) {
	t.Helper()
	dsm, dres := onlyScope(t, "declared", declared)
	wsm, wres := onlyScope(t, "written", written)
	assert.Equal(t, dsm.Scope().Name(), wsm.Scope().Name(), "scope name")
	assert.ElementsMatch(t, slices.Collect(maps.Keys(dres.Attributes().AsRaw())), slices.Collect(maps.Keys(wres.Attributes().AsRaw())),
		"resource attribute keys: metadata.yaml resource_attributes against device.Identity")
	dp, _ := dres.Attributes().Get(device.AttrDeviceProtocol)
	wp, _ := wres.Attributes().Get(device.AttrDeviceProtocol)
	assert.Equal(t, dp.Str(), wp.Str(), "device.protocol: the enum of metadata.yaml")

	want := metricsByName(dsm.Metrics())
	got := metricsByName(wsm.Metrics())
	assert.ElementsMatch(t, HealthMetricNames, slices.Collect(maps.Keys(want)), "metadata.yaml declares exactly the health metrics")
	assert.ElementsMatch(t, HealthMetricNames, slices.Collect(maps.Keys(got)), "the recorder writes exactly the health metrics")
	for name, d := range want {
		w, ok := got[name]
		if !ok {
			continue
		}
		assert.Equal(t, d.Unit(), w.Unit(), "%s: unit", name)
		assert.Equal(t, d.Description(), w.Description(), "%s: description", name)
		if !assert.Equal(t, d.Type(), w.Type(), "%s: type", name) {
			continue
		}
		var dpts, wpts pmetric.NumberDataPointSlice
		switch d.Type() {
		case pmetric.MetricTypeGauge:
			dpts, wpts = d.Gauge().DataPoints(), w.Gauge().DataPoints()
		case pmetric.MetricTypeSum:
			assert.Equal(t, d.Sum().IsMonotonic(), w.Sum().IsMonotonic(), "%s: monotonic", name)
			assert.Equal(t, d.Sum().AggregationTemporality(), w.Sum().AggregationTemporality(), "%s: temporality", name)
			dpts, wpts = d.Sum().DataPoints(), w.Sum().DataPoints()
		default:
			t.Errorf("%s: a health metric is a gauge or a sum, metadata.yaml says %s", name, d.Type())
			continue
		}
		require.Positive(t, dpts.Len(), "%s: declared point", name)
		require.Positive(t, wpts.Len(), "%s: written points", name)
		keys := slices.Sorted(maps.Keys(dpts.At(0).Attributes().AsRaw()))
		for i := 0; i < wpts.Len(); i++ {
			pt := wpts.At(i)
			assert.Equal(t, dpts.At(0).ValueType(), pt.ValueType(), "%s: value type", name)
			assert.Equal(t, keys, slices.Sorted(maps.Keys(pt.Attributes().AsRaw())), "%s: attribute keys", name)
			if d.Type() == pmetric.MetricTypeSum {
				assert.NotZero(t, pt.StartTimestamp(), "%s: a cumulative sum has a start time", name)
			}
			if v, ok := pt.Attributes().Get(device.AttrErrorType); ok {
				assert.Contains(t, errorTypes, v.Str(), "%s: error.type %q is not in the enum of metadata.yaml", name, v.Str())
			}
		}
	}
	for _, et := range device.ErrorTypes {
		assert.Contains(t, errorTypes, string(et), "device.ErrorTypes: %q is not in the error.type enum of metadata.yaml", et)
	}
}

// AssertHealthSwitches checks that a receiver's `metrics` key turns each health metric off on its own
// (`metrics: {iiot.device.requests: {enabled: false}}`), that all are on by default, and that an
// unknown metric is refused. health unmarshals a `metrics` value into the receiver's default config and
// returns the health metrics its recorders get.
func AssertHealthSwitches(t *testing.T, scope string, protocol device.Protocol, health func(metrics map[string]any) (device.HealthMetrics, error)) {
	t.Helper()
	h, err := health(map[string]any{})
	require.NoError(t, err)
	assert.ElementsMatch(t, HealthMetricNames, slices.Collect(maps.Keys(writtenNames(scope, protocol, h))), "all on by default")
	for _, off := range HealthMetricNames {
		h, err := health(map[string]any{off: map[string]any{"enabled": false}})
		require.NoError(t, err, off)
		names := writtenNames(scope, protocol, h)
		for _, name := range HealthMetricNames {
			_, written := names[name]
			assert.Equal(t, name != off, written, "metrics: {%s: {enabled: false}}: %s written", off, name)
		}
	}
	_, err = health(map[string]any{"iiot.device.nope": map[string]any{"enabled": false}})
	require.Error(t, err, "an unknown metric is refused")
	assert.Contains(t, err.Error(), "iiot.device.nope")
}

func writtenNames(scope string, protocol device.Protocol, h device.HealthMetrics) map[string]pmetric.Metric {
	md := HealthPoll(scope, protocol, h)
	return metricsByName(md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics())
}

func onlyScope(t testing.TB, what string, md pmetric.Metrics) (pmetric.ScopeMetrics, pcommon.Resource) {
	t.Helper()
	require.Equal(t, 1, md.ResourceMetrics().Len(), "%s: one resource", what)
	rm := md.ResourceMetrics().At(0)
	require.Equal(t, 1, rm.ScopeMetrics().Len(), "%s: one scope", what)
	return rm.ScopeMetrics().At(0), rm.Resource()
}

func metricsByName(ms pmetric.MetricSlice) map[string]pmetric.Metric {
	out := make(map[string]pmetric.Metric, ms.Len())
	for i := 0; i < ms.Len(); i++ {
		out[ms.At(i).Name()] = ms.At(i)
	}
	return out
}
