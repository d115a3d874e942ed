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
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadatatest"
)

const waitFor, tick = 10 * time.Second, 10 * time.Millisecond

func res(tenant string, extra ...string) map[string]string {
	m := map[string]string{"service.name": "meter", "service.instance.id": "m1"}
	if tenant != "" {
		m["tenant.id"] = tenant
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func values(samples []sample) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = s.Value
	}
	return out
}

func TestHeaderMode(t *testing.T) {
	srv := newRWServer(t)
	exp := startExporter(t, withTenants(testConfig(srv.URL+"/api/v1/push"), nil), nil, nil)

	md := metricsOf(
		point{res: res("pv-owner"), name: "power", ms: 1000, value: 1},
		point{res: res("grid-operator"), name: "power", ms: 1000, value: 2},
		point{res: res("pv-owner", "device.id", "inv-2"), name: "power", ms: 1000, value: 3},
	)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	require.Eventually(t, func() bool {
		return len(srv.samples("pv-owner", "power")) == 2 && len(srv.samples("grid-operator", "power")) == 1
	}, waitFor, tick)
	assert.ElementsMatch(t, []float64{1, 3}, values(srv.samples("pv-owner", "power")))
	assert.Equal(t, []float64{2}, values(srv.samples("grid-operator", "power")))
	for _, r := range srv.requestsCopy() {
		assert.Equal(t, "/api/v1/push", r.Path)
		assert.Equal(t, "snappy", r.Header.Get("Content-Encoding"))
		assert.Equal(t, "0.1.0", r.Header.Get("X-Prometheus-Remote-Write-Version"))
		// The series of a request carry their own tenant only.
		for _, ts := range r.Series {
			for _, l := range ts.Labels {
				if l.Name == "tenant_id" {
					assert.Equal(t, r.Header.Get("X-Scope-OrgID"), l.Value)
				}
			}
		}
	}
	// job/instance come from service.name/service.instance.id.
	assert.Contains(t, srv.samples("grid-operator", "power")[0].Series, "instance=m1")
	assert.Contains(t, srv.samples("grid-operator", "power")[0].Series, "job=meter")
}

func TestCustomHeaderAndStaticHeaders(t *testing.T) {
	srv := newRWServer(t)
	srv.tenantOf = func(r *http.Request) string { return r.Header.Get("THANOS-TENANT") }
	cfg := withTenants(testConfig(srv.URL+"/api/v1/receive"), func(tc *TenantConfig) { tc.Header = "THANOS-TENANT" })
	cfg.HTTP.Headers.Set("X-Source", "edge-7")
	exp := startExporter(t, cfg, nil, nil)

	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
		point{res: res("a"), name: "v", ms: 1000, value: 1},
		point{res: res("b"), name: "v", ms: 1000, value: 2},
	)))
	require.Eventually(t, func() bool { return len(srv.requestsCopy()) == 2 }, waitFor, tick)
	seen := map[string]bool{}
	for _, r := range srv.requestsCopy() {
		seen[r.Header.Get("THANOS-TENANT")] = true
		assert.Empty(t, r.Header.Get("X-Scope-OrgID"))
		assert.Equal(t, "edge-7", r.Header.Get("X-Source"))
	}
	assert.Equal(t, map[string]bool{"a": true, "b": true}, seen)
}

func TestTemplateMode(t *testing.T) {
	srv := newRWServer(t)
	srv.tenantOf = func(r *http.Request) string { return strings.Split(r.URL.Path, "/")[2] }
	cfg := withTenants(testConfig(srv.URL+"/insert/{tenant}/prometheus/api/v1/write"), func(tc *TenantConfig) { tc.Header = "" })
	exp := startExporter(t, cfg, nil, nil)

	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
		point{res: res("1:0"), name: "v", ms: 1000, value: 10},
		point{res: res("2:0"), name: "v", ms: 1000, value: 20},
		point{res: res("2:0"), name: "v", ms: 2000, value: 21},
	)))
	require.Eventually(t, func() bool {
		return len(srv.samples("1:0", "v")) == 1 && len(srv.samples("2:0", "v")) == 2
	}, waitFor, tick)
	paths := map[string]bool{}
	for _, r := range srv.requestsCopy() {
		paths[r.Path] = true
		assert.Empty(t, r.Header.Get("X-Scope-OrgID"))
	}
	assert.Equal(t, map[string]bool{"/insert/1:0/prometheus/api/v1/write": true, "/insert/2:0/prometheus/api/v1/write": true}, paths)
	assert.Equal(t, []float64{20, 21}, values(srv.samples("2:0", "v")))
}

func TestDefaultTenantAndDrop(t *testing.T) {
	input := func() []point {
		return []point{
			{res: res("a"), name: "v", ms: 1000, value: 1},
			{res: res(""), name: "v", ms: 1000, value: 2},                                        // no tenant
			{res: res("", "tenant.id", "bad tenant"), name: "v", ms: 1000, value: 3},             // invalid id
			{res: res("", "tenant.id", strings.Repeat("x", 151)), name: "v", ms: 1000, value: 4}, // too long
		}
	}

	t.Run("default", func(t *testing.T) {
		srv := newRWServer(t)
		tel := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
		exp := startExporter(t, withTenants(testConfig(srv.URL), func(tc *TenantConfig) { tc.DefaultTenant = "site" }), tel, nil)
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(input()...)))
		require.Eventually(t, func() bool { return len(srv.samples("site", "v")) == 3 && len(srv.samples("a", "v")) == 1 }, waitFor, tick)
		metadatatest.AssertEqualExporterTenantremotewriteUntenantedDataPoints(t, tel, []metricdata.DataPoint[int64]{
			{Attributes: attribute.NewSet(attribute.String("action", "default")), Value: 3},
		}, metricdatatest.IgnoreTimestamp())
		metadatatest.AssertEqualExporterTenantremotewriteTenants(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	})

	t.Run("drop", func(t *testing.T) {
		srv := newRWServer(t)
		tel := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
		exp := startExporter(t, withTenants(testConfig(srv.URL), nil), tel, nil)
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(input()...)))
		require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 1 }, waitFor, tick)
		metadatatest.AssertEqualExporterTenantremotewriteUntenantedDataPoints(t, tel, []metricdata.DataPoint[int64]{
			{Attributes: attribute.NewSet(attribute.String("action", "drop")), Value: 3},
		}, metricdatatest.IgnoreTimestamp())
		assert.Equal(t, []string{"a"}, srv.tenants())
	})
}

func TestMaxTenants(t *testing.T) {
	srv := newRWServer(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp := startExporter(t, withTenants(testConfig(srv.URL), func(tc *TenantConfig) { tc.MaxTenants = 2 }), tel, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
		point{res: res("a"), name: "v", ms: 1000, value: 1},
		point{res: res("b"), name: "v", ms: 1000, value: 2},
		point{res: res("c"), name: "v", ms: 1000, value: 3},
		point{res: res("c"), name: "w", ms: 1000, value: 4},
	)))
	require.Eventually(t, func() bool { return len(srv.tenants()) == 2 }, waitFor, tick)
	assert.Equal(t, []string{"a", "b"}, srv.tenants())
	metadatatest.AssertEqualExporterTenantremotewriteRefusedDataPoints(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("reason", "max_tenants")), Value: 2},
	}, metricdatatest.IgnoreTimestamp())
}

func TestWithoutTenantConfig(t *testing.T) {
	srv := newRWServer(t)
	srv.tenantOf = func(*http.Request) string { return "all" }
	cfg := testConfig(srv.URL + "/api/v1/write")
	cfg.PromoteResourceAttributes = nil // promoting adds attributes to the points (tested in promote_test.go)
	exp := startExporter(t, cfg, nil, nil)
	assert.False(t, exp.Capabilities().MutatesData)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
		point{res: res("a"), name: "v", ms: 1000, value: 1},
		point{res: res(""), name: "v", ms: 1000, value: 2},
	)))
	require.Eventually(t, func() bool { return len(srv.samples("all", "v")) == 2 }, waitFor, tick)
	for _, r := range srv.requestsCopy() {
		assert.Empty(t, r.Header.Get("X-Scope-OrgID"))
	}
}

// A tenant whose backend fails keeps its data queued and retried, in order, without delaying
// the other tenant; when the backend recovers everything arrives exactly once.
func TestFailingTenantDoesNotBlockOthers(t *testing.T) {
	srv := newRWServer(t)
	var bDown atomic.Bool
	bDown.Store(true)
	srv.setStatus(func(r *http.Request) int {
		if r.Header.Get("X-Scope-OrgID") == "b" && bDown.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	exp := startExporter(t, withTenants(testConfig(srv.URL), nil), nil, nil)

	const n = 20
	for i := 1; i <= n; i++ {
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
			point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)},
			point{res: res("b"), name: "v", ms: int64(i) * 1000, value: float64(100 + i)},
		)))
		// a's data arrives while b's backend is down.
		require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == i }, waitFor, tick)
	}
	assert.Empty(t, srv.samples("b", "v"))
	var bAttempts int
	for _, r := range srv.requestsCopy() {
		if r.Header.Get("X-Scope-OrgID") == "b" {
			bAttempts++
		}
	}
	assert.Positive(t, bAttempts, "b was retried")

	bDown.Store(false)
	require.Eventually(t, func() bool { return len(srv.samples("b", "v")) == n }, waitFor, tick)
	want := make([]float64, n)
	for i := range want {
		want[i] = float64(101 + i)
	}
	assert.Equal(t, want, values(srv.samples("b", "v")), "in order, exactly once")
	assert.Zero(t, srv.duplicates())
}

// 4xx answers are permanent (the data is wrong for the backend); retrying cannot help.
func TestPermanentErrorIsNotRetried(t *testing.T) {
	srv := newRWServer(t)
	srv.setStatus(func(*http.Request) int { return http.StatusBadRequest })
	exp := startExporter(t, testConfig(srv.URL), nil, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res(""), name: "v", ms: 1000, value: 1})))
	require.Eventually(t, func() bool { return len(srv.requestsCopy()) == 1 }, waitFor, tick)
	require.Never(t, func() bool { return len(srv.requestsCopy()) > 1 }, 300*time.Millisecond, tick)
}

// The persistent queue survives a restart while the backend is down, and delivers every
// request in its original order afterwards, exactly once.
func TestPersistentQueueRestartKeepsOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ordered bool
	}{{"ordered", true}, {"upstream_order", false}} {
		t.Run(tc.name, func(t *testing.T) {
			prev := orderedRestart
			orderedRestart = tc.ordered
			t.Cleanup(func() { orderedRestart = prev })

			srv := newRWServer(t)
			srv.tenantOf = func(*http.Request) string { return "all" }
			var down atomic.Bool
			down.Store(true)
			srv.setStatus(func(*http.Request) int {
				if down.Load() {
					return http.StatusServiceUnavailable
				}
				return 0
			})
			dir := t.TempDir()
			cfg := testConfig(srv.URL)
			cfg.QueueConfig.Get().StorageID = &storageID

			// First run: the backend is down; 3 batches are queued, the first one is being retried.
			ext := startFileStorage(t, dir)
			exp := startExporter(t, cfg, nil, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
			for i := 1; i <= 3; i++ {
				require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res(""), name: "v", ms: int64(i) * 1000, value: float64(i)})))
			}
			require.Eventually(t, func() bool { return len(srv.requestsCopy()) >= 2 }, waitFor, tick)
			require.NoError(t, exp.Shutdown(context.Background()))
			require.NoError(t, ext.Shutdown(context.Background()))
			assert.Empty(t, srv.samples("all", "v"))

			// Second run: the backend is back; no new data, the queue drains by itself.
			down.Store(false)
			ext = startFileStorage(t, dir)
			t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
			startExporter(t, cfg, nil, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
			if tc.ordered {
				require.Eventually(t, func() bool { return len(srv.samples("all", "v")) == 3 }, waitFor, tick)
				assert.Equal(t, []float64{1, 2, 3}, values(srv.samples("all", "v")))
				require.Never(t, func() bool { return len(srv.samples("all", "v")) > 3 }, 200*time.Millisecond, tick)
				assert.Zero(t, srv.duplicates())
				return
			}
			// Without the rewind, the interrupted first batch is re-queued last, arrives after
			// newer samples of its series and is refused as out of order: lost.
			require.Eventually(t, func() bool {
				for _, r := range srv.requestsCopy() {
					if r.Status == http.StatusBadRequest {
						return true
					}
				}
				return false
			}, waitFor, tick)
			assert.Equal(t, []float64{2, 3}, values(srv.samples("all", "v")))
		})
	}
}

// Tenants whose persistent queue holds data at shutdown are restored at start and drained
// without new data; tenants with an empty queue are not.
func TestTenantQueuesRestoredAfterRestart(t *testing.T) {
	srv := newRWServer(t)
	var bDown atomic.Bool
	bDown.Store(true)
	srv.setStatus(func(r *http.Request) int {
		if r.Header.Get("X-Scope-OrgID") == "b" && bDown.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	dir := t.TempDir()
	cfg := withTenants(testConfig(srv.URL), nil)
	cfg.QueueConfig.Get().StorageID = &storageID

	ext := startFileStorage(t, dir)
	exp := startExporter(t, cfg, nil, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
	for i := 1; i <= 5; i++ {
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(
			point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)},
			point{res: res("b"), name: "v", ms: int64(i) * 1000, value: float64(10 + i)},
		)))
	}
	require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 5 }, waitFor, tick)
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))

	bDown.Store(false)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	ext = startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	startExporter(t, cfg, tel, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
	require.Eventually(t, func() bool { return len(srv.samples("b", "v")) == 5 }, waitFor, tick)
	assert.Equal(t, []float64{11, 12, 13, 14, 15}, values(srv.samples("b", "v")))
	assert.Len(t, srv.samples("a", "v"), 5, "a was not sent again")
	assert.Zero(t, srv.duplicates())
	// Only b (queue not empty) was restored.
	metadatatest.AssertEqualExporterTenantremotewriteTenants(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

func TestStorageExtensionMissing(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:9/w")
	cfg.QueueConfig.Get().StorageID = &storageID
	exp, err := NewFactory().CreateMetrics(context.Background(), exportertestSettings(), cfg)
	require.NoError(t, err)
	err = exp.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `sending_queue::storage: extension "file_storage" is not enabled: add it to service::extensions (and define it under extensions: if it is not; enabled storage extensions: none)`)
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestLifecycleEdges(t *testing.T) {
	cfg := withTenants(testConfig("http://127.0.0.1:9/w"), nil)
	exp, err := NewFactory().CreateMetrics(context.Background(), exportertestSettings(), cfg)
	require.NoError(t, err)
	assert.True(t, exp.Capabilities().MutatesData)
	// Data before Start is refused, not a crash.
	require.ErrorIs(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: 1, value: 1})), errNotStarted)
	// Shutdown without Start, twice.
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, exp.Shutdown(context.Background()))
	require.ErrorIs(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: 1, value: 1})), errShutdown)
	require.ErrorIs(t, exp.Start(context.Background(), componenttest.NewNopHost()), errShutdown)
}

func exportertestSettings() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }

func TestQuietCore(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(quietCore{Core: core})
	logger.Error(msgRejecting + " Try enabling sending_queue")
	logger.Error(msgSendFailed, zap.Int("status_code", 503))
	logger.Error(msgSendFailed, zap.Int("status_code", 400))
	logger.With(zap.String("tenant", "a")).Info("other")
	entries := logs.AllUntimed()
	require.Len(t, entries, 3)
	assert.Equal(t, zapcore.DebugLevel, entries[0].Level, "5xx: retried by us")
	assert.Equal(t, zapcore.ErrorLevel, entries[1].Level, "4xx: data is dropped, stays an error")
	assert.Equal(t, "other", entries[2].Message)

	core, logs = observer.New(zapcore.InfoLevel)
	logger = zap.New(quietCore{Core: core})
	logger.Error(msgSendFailed, zap.Int("status_code", 502))
	assert.Zero(t, logs.Len())
}
