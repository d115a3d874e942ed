package tenantremotewriteexporter

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// droppedPoints sums otelcol_exporter_tenantremotewrite_dropped_data_points by tenant and reason.
func droppedPoints(t *testing.T, tel *componenttest.Telemetry) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, err := tel.GetMetric("otelcol_exporter_tenantremotewrite_dropped_data_points")
	if err != nil {
		return out
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	for _, dp := range sum.DataPoints {
		tenant, _ := dp.Attributes.Value("tenant")
		reason, _ := dp.Attributes.Value("reason")
		out[tenant.AsString()+"/"+reason.AsString()] += dp.Value
	}
	return out
}

// startAged starts the exporter with a manual clock that both it and the backend read.
func startAged(t *testing.T, cfg *Config, clk *clock.Manual, tel *componenttest.Telemetry, host component.Host) (*tenantExporter, *observer.ObservedLogs) {
	t.Helper()
	return startObservedWith(t, cfg, tel, host, func(e *tenantExporter) { e.clock = clk })
}

// An outage longer than the backend's window: what aged past max_sample_age while queued is
// dropped before sending (counted, one summary line), never replayed to be refused; the rest
// arrives. With max_sample_age: 0 (the old behaviour) the old request is sent and refused.
func TestMaxSampleAgeOutage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
	}{{"dropped_before_sending", 55 * time.Minute}, {"disabled_sent_and_refused", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1_800_000_000, 0)
			clk := clock.NewManual(t0)
			srv := newRWServer(t)
			srv.maxAge, srv.now = time.Hour, clk.Now
			var down atomic.Bool
			down.Store(true)
			srv.setStatus(func(*http.Request) int {
				if down.Load() {
					return http.StatusServiceUnavailable
				}
				return 0
			})
			cfg := withTenants(testConfig(srv.URL), nil)
			cfg.MaxSampleAge = tc.maxAge
			cfg.QueueConfig.Get().StorageID = &storageID
			ext := startFileStorage(t, t.TempDir())
			t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			exp, logs := startAged(t, cfg, clk, tel, &testHost{exts: map[component.ID]component.Component{storageID: ext}})

			// The link is down for 70 minutes; a reading every 30 minutes.
			for i := range 3 {
				ms := clk.Now().UnixMilli()
				require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: ms, value: float64(i + 1)})))
				require.Eventually(t, func() bool { return len(srv.requestsCopy()) > 0 }, waitFor, tick)
				if i < 2 {
					clk.Advance(30 * time.Minute)
				}
			}
			clk.Advance(10 * time.Minute)
			// An attempt filtered before the clock jumped may still be on its way: the backend
			// comes back only after two more refused attempts, the second one filtered after it.
			seen := len(srv.requestsCopy())
			require.Eventually(t, func() bool { return len(srv.requestsCopy()) >= seen+2 }, waitFor, tick)
			down.Store(false)

			require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 2 }, waitFor, tick)
			assert.Equal(t, []float64{2, 3}, values(srv.samples("a", "v")))
			refused := 0
			for _, r := range srv.requestsCopy() {
				if r.Status == http.StatusBadRequest {
					refused++
				}
			}
			if tc.maxAge == 0 {
				assert.Equal(t, 1, refused, "the 70-minute-old reading was replayed and refused")
				assert.Empty(t, droppedPoints(t, tel))
				return
			}
			assert.Zero(t, refused, "nothing older than the backend accepts was sent")
			for _, r := range srv.requestsCopy() {
				if r.Status == http.StatusServiceUnavailable {
					continue // attempts during the outage, while the reading was young enough
				}
				for _, ts := range r.Series {
					for _, s := range ts.Samples {
						assert.GreaterOrEqual(t, s.Timestamp, t0.Add(15*time.Minute).UnixMilli(), "a sample older than max_sample_age was sent")
					}
				}
			}
			assert.Equal(t, map[string]int64{"a/max_sample_age": 1}, droppedPoints(t, tel))
			require.Eventually(t, func() bool { return logs.FilterMessageSnippet("older than max_sample_age").Len() == 1 }, waitFor, tick)
			entry := logs.FilterMessageSnippet("older than max_sample_age").AllUntimed()[0]
			assert.Equal(t, zapcore.WarnLevel, entry.Level)
			assert.Equal(t, int64(1), entry.ContextMap()["dropped_data_points"])
			assert.Equal(t, "a", entry.ContextMap()["tenant"])
			age, _ := entry.ContextMap()["oldest_age"].(time.Duration)
			assert.True(t, age > 55*time.Minute && age <= 70*time.Minute, "oldest_age %s", age)
		})
	}
}

// One request holding an expired and a fresh point: the fresh one arrives. Without
// max_sample_age the backend refuses the whole request, fresh point included.
func TestMaxSampleAgeMixedRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
		want   []float64
	}{{"fresh_point_delivered", 55 * time.Minute, []float64{2}}, {"disabled_whole_request_refused", 0, []float64{}}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewManual(time.Unix(1_800_000_000, 0))
			srv := newRWServer(t)
			srv.maxAge, srv.now = time.Hour, clk.Now
			cfg := withTenants(testConfig(srv.URL), nil)
			cfg.MaxSampleAge = tc.maxAge
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			exp, _ := startAged(t, cfg, clk, tel, componenttest.NewNopHost())
			now := clk.Now().UnixMilli()
			require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
				point{res: res("a"), name: "v", ms: now - 2*time.Hour.Milliseconds(), value: 1},
				point{res: res("a"), name: "v", ms: now, value: 2},
			)))
			require.Eventually(t, func() bool { return len(srv.requestsCopy()) == 1 }, waitFor, tick)
			assert.Equal(t, tc.want, values(srv.samples("a", "v")))
		})
	}
}

// Every metric type loses exactly its expired points; emptied metrics, scopes and resources go.
func TestExpiryDropAllTypes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old := pcommon.NewTimestampFromTime(now.Add(-2 * time.Hour))
	fresh := pcommon.NewTimestampFromTime(now.Add(-time.Minute))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty().SetEmptyGauge()
	g.DataPoints().AppendEmpty().SetTimestamp(old)
	g.DataPoints().AppendEmpty().SetTimestamp(fresh)
	g.DataPoints().AppendEmpty() // no timestamp: sent as now, kept
	ms.AppendEmpty().SetEmptySum().DataPoints().AppendEmpty().SetTimestamp(old)
	ms.AppendEmpty().SetEmptyHistogram().DataPoints().AppendEmpty().SetTimestamp(fresh)
	ms.AppendEmpty().SetEmptyExponentialHistogram().DataPoints().AppendEmpty().SetTimestamp(old)
	ms.AppendEmpty().SetEmptySummary().DataPoints().AppendEmpty().SetTimestamp(old)
	// A second resource with only expired data disappears.
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(old)

	var counted int64
	x := &expiry{maxAge: time.Hour, now: func() time.Time { return now }, logger: zap.NewNop(), count: func(_ context.Context, n int64) { counted += n }}
	assert.Equal(t, 5, x.drop(context.Background(), md))
	assert.Equal(t, int64(5), counted)
	assert.Equal(t, 1, md.ResourceMetrics().Len())
	assert.Equal(t, 2, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().Len(), "gauge and histogram remain")
	assert.Equal(t, 3, md.DataPointCount())
	assert.Equal(t, 2*time.Hour, x.oldest)
	assert.Zero(t, x.drop(context.Background(), md), "nothing left to drop")
}
