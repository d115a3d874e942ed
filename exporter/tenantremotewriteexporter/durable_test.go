package tenantremotewriteexporter

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// exporterPoints sums an int64 sum metric of the exporterhelper by its "exporter" attribute.
func exporterPoints(t testing.TB, tel *componenttest.Telemetry, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, err := tel.GetMetric(name)
	if err != nil {
		return out // never recorded
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s: %T", name, m.Data)
	for _, dp := range sum.DataPoints {
		v, _ := dp.Attributes.Value("exporter")
		out[v.AsString()] += dp.Value
	}
	return out
}

// Retried 5xx attempts are not failures: the request stays queued and is delivered. Only the
// per-tenant exporterhelper publishes counters; the inner remote-write client publishes none
// (its send_failed counted every retried attempt).
func TestRetriesAreNotCountedAsFailed(t *testing.T) {
	srv := newRWServer(t)
	var attempts atomic.Int32
	srv.setStatus(func(*http.Request) int {
		if attempts.Add(1) <= 3 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp := startExporter(t, withTenants(testConfig(srv.URL), nil), tel, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
		point{res: res("a"), name: "v", ms: 1000, value: 1},
		point{res: res("a"), name: "w", ms: 1000, value: 2},
	)))
	require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 1 }, waitFor, tick)
	require.Eventually(t, func() bool {
		return exporterPoints(t, tel, "otelcol_exporter_sent_metric_points")["tenantremotewrite/test[a]"] == 2
	}, waitFor, tick)

	assert.GreaterOrEqual(t, attempts.Load(), int32(4))
	assert.Equal(t, map[string]int64{"tenantremotewrite/test[a]": 2}, exporterPoints(t, tel, "otelcol_exporter_sent_metric_points"),
		"only the tenant's pipeline counts; the inner client's counters are not published")
	assert.Empty(t, exporterPoints(t, tel, "otelcol_exporter_send_failed_metric_points"), "retried attempts are not failures")
}

// A permanent error (4xx) loses the data: the tenant pipeline's send_failed counts it once.
func TestPermanentErrorIsCountedOnce(t *testing.T) {
	srv := newRWServer(t)
	srv.setStatus(func(*http.Request) int { return http.StatusBadRequest })
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp := startExporter(t, withTenants(testConfig(srv.URL), nil), tel, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: 1000, value: 1})))
	require.Eventually(t, func() bool {
		return exporterPoints(t, tel, "otelcol_exporter_send_failed_metric_points")["tenantremotewrite/test[a]"] == 1
	}, waitFor, tick)
	assert.Len(t, exporterPoints(t, tel, "otelcol_exporter_send_failed_metric_points"), 1, "counted by the tenant pipeline only")
}

// At shutdown with the backend down, the request being retried is kept by the persistent queue:
// no ERROR "Dropping data", one Info line per tenant saying how many requests stay on disk, and
// the next start delivers them.
func TestShutdownKeepsInFlightRequest(t *testing.T) {
	srv := newRWServer(t)
	var down atomic.Bool
	down.Store(true)
	srv.setStatus(func(*http.Request) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	dir := t.TempDir()
	cfg := withTenants(testConfig(srv.URL), nil)
	cfg.QueueConfig.Get().StorageID = &storageID

	ext := startFileStorage(t, dir)
	core, logs := observer.New(zapcore.InfoLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "test")
	set.Logger = zap.New(core)
	exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), &testHost{exts: map[component.ID]component.Component{storageID: ext}}))
	for i := 1; i <= 3; i++ {
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)})))
	}
	require.Eventually(t, func() bool { return len(srv.requestsCopy()) >= 2 }, waitFor, tick)
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))

	for _, e := range logs.AllUntimed() {
		assert.Less(t, e.Level, zapcore.ErrorLevel, "%s %v", e.Message, e.Context)
		assert.NotContains(t, e.Message, "Dropping data")
	}
	kept := logs.FilterMessage(msgKept).AllUntimed()
	require.Len(t, kept, 1)
	assert.Equal(t, int64(1), kept[0].ContextMap()["kept_items"])
	summary := logs.FilterMessageSnippet("keeps unsent requests on disk").AllUntimed()
	require.Len(t, summary, 1)
	assert.Equal(t, "a", summary[0].ContextMap()["tenant"])
	assert.Equal(t, uint64(3), summary[0].ContextMap()["queued_requests"])

	down.Store(false)
	ext = startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	startExporter(t, cfg, nil, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
	require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 3 }, waitFor, tick)
	assert.Equal(t, []float64{1, 2, 3}, values(srv.samples("a", "v")))
}

// keptCore leaves every other message, and a "Dropping data" for another error, alone.
func TestKeptCore(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	logger := zap.New(keptCore{Core: core}).With(zap.String("tenant", "a"))
	logger.Error(msgDropping, zap.Error(assert.AnError), zap.Int("dropped_items", 5))
	logger.Error("other")
	logger.Debug(msgDropping, zap.Error(assert.AnError))
	entries := logs.AllUntimed()
	require.Len(t, entries, 2)
	assert.Equal(t, zapcore.ErrorLevel, entries[0].Level, "a permanent error drops data: stays an error")
	assert.Equal(t, int64(5), entries[0].ContextMap()["dropped_items"])
	assert.Equal(t, "a", entries[0].ContextMap()["tenant"])
	assert.Equal(t, "other", entries[1].Message)
}

// Batching inside the sending queue: every tenant's queue batches its own data (with a
// persistent queue the data is stored as it arrives and merged when read).
func TestQueueBatchPerTenant(t *testing.T) {
	srv := newRWServer(t)
	dir := t.TempDir()
	cfg := withTenants(testConfig(srv.URL), nil)
	q := cfg.QueueConfig.Get()
	q.StorageID = &storageID
	q.Sizer = exporterhelper.RequestSizerTypeBytes
	q.QueueSize = 1 << 20
	q.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: time.Minute, // only min_size flushes in this test
		Sizer:        exporterhelper.RequestSizerTypeItems,
		MinSize:      10,
	})
	require.NoError(t, cfg.Validate())
	require.NoError(t, q.Validate())
	ext := startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	exp := startExporter(t, cfg, nil, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
	for i := 1; i <= 10; i++ {
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
			point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)},
			point{res: res("b"), name: "v", ms: int64(i) * 1000, value: float64(10 + i)},
		)))
	}
	require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 10 && len(srv.samples("b", "v")) == 10 }, waitFor, tick)
	perTenant := map[string]int{}
	for _, r := range srv.requestsCopy() {
		perTenant[r.Header.Get("X-Scope-OrgID")]++
	}
	assert.Equal(t, map[string]int{"a": 1, "b": 1}, perTenant, "ten calls per tenant, one request each")
	assert.Equal(t, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, values(srv.samples("a", "v")))
}

func TestStorageExtensionNotEnabledMessage(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:9/w")
	other := component.MustNewIDWithName("file_storage", "other")
	cfg.QueueConfig.Get().StorageID = &storageID
	exp, err := NewFactory().CreateMetrics(context.Background(), exportertestSettings(), cfg)
	require.NoError(t, err)
	ext := startFileStorage(t, t.TempDir())
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	err = exp.Start(context.Background(), &testHost{exts: map[component.ID]component.Component{other: ext}})
	require.EqualError(t, err, `tenantremotewrite: sending_queue::storage: extension "file_storage" is not enabled: add it to service::extensions `+
		`(and define it under extensions: if it is not; enabled storage extensions: file_storage/other)`)
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.True(t, strings.Contains(err.Error(), "service::extensions"))
}
