package tenantremotewriteexporter

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// After an outage, in order: the fresh reading waits behind the whole backlog. fresh_first: it
// is sent at once and the backlog drains behind it (paced to its share); nothing is lost or
// sent twice either way. The test logs the time from the backend's return to the fresh sample
// (each request takes 10 ms on the simulated link).
func TestFreshFirstAfterOutage(t *testing.T) {
	const backlog = 50
	for _, mode := range []string{DeliveryInOrder, DeliveryFreshFirst} {
		t.Run(mode, func(t *testing.T) {
			srv := newRWServer(t)
			srv.outOfOrder = true
			srv.link = 10 * time.Millisecond
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
			cfg.Delivery.Mode = mode
			cfg.Delivery.BacklogShare = 0.5
			cfg.QueueConfig.Get().StorageID = &storageID
			require.NoError(t, cfg.Validate())
			ext := startFileStorage(t, dir)
			t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			exp, _ := startObserved(t, cfg, tel, &testHost{exts: map[component.ID]component.Component{storageID: ext}})

			for i := 1; i <= backlog; i++ {
				require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)})))
			}
			if mode == DeliveryFreshFirst {
				// Every live request was tried once and handed to the backlog.
				require.Eventually(t, func() bool {
					return queueSize(t, tel, "tenantremotewrite/test[a].backlog") == backlog && queueSize(t, tel, "tenantremotewrite/test[a]") == 0
				}, waitFor, tick)
			}
			back := time.Now()
			down.Store(false)
			require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: 1_000_000, value: 1000})))
			require.Eventually(t, func() bool { return slices.Contains(values(srv.samples("a", "v")), 1000) }, waitFor, tick)
			fresh := time.Since(back)
			require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == backlog+1 }, waitFor, tick)
			all := time.Since(back)
			got := values(srv.samples("a", "v"))
			pos := slices.Index(got, 1000)
			t.Logf("%s: backlog of %d requests; from the backend's return: fresh sample after %v (position %d), backlog complete after %v", mode, backlog, fresh, pos, all)
			slices.Sort(got)
			want := make([]float64, 0, backlog+1)
			for i := 1; i <= backlog; i++ {
				want = append(want, float64(i))
			}
			assert.Equal(t, append(want, 1000), got, "everything arrives once")
			assert.Zero(t, srv.duplicates())
			if mode == DeliveryInOrder {
				assert.Equal(t, backlog, pos, "in order: the fresh sample comes last")
				assert.Zero(t, counterSum(t, tel, "otelcol_exporter_tenantremotewrite_backlog_data_points"))
				return
			}
			assert.Equal(t, int64(backlog), counterSum(t, tel, "otelcol_exporter_tenantremotewrite_backlog_data_points"), "every outage request moved once")
			assert.Less(t, pos, backlog/2, "fresh first: the fresh sample does not wait for the backlog")
		})
	}
}

// queueSize reads otelcol_exporter_queue_size of one exporter (-1 before it is recorded).
func queueSize(t *testing.T, tel *componenttest.Telemetry, exporter string) int64 {
	t.Helper()
	m, err := tel.GetMetric("otelcol_exporter_queue_size")
	if err != nil {
		return -1
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "%T", m.Data)
	for _, dp := range g.DataPoints {
		if v, _ := dp.Attributes.Value("exporter"); v.AsString() == exporter {
			return dp.Value
		}
	}
	return -1
}

// A restart during the outage keeps the backlog: the tenant is restored from its backlog queue
// alone and delivers it without new data.
func TestFreshFirstBacklogSurvivesRestart(t *testing.T) {
	srv := newRWServer(t)
	srv.outOfOrder = true
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
	cfg.Delivery.Mode = DeliveryFreshFirst
	cfg.QueueConfig.Get().StorageID = &storageID
	host := func(ext component.Component) component.Host {
		return &testHost{exts: map[component.ID]component.Component{storageID: ext}}
	}
	ext := startFileStorage(t, dir)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp, _ := startObserved(t, cfg, tel, host(ext))
	for i := 1; i <= 5; i++ {
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)})))
	}
	require.Eventually(t, func() bool { return queueSize(t, tel, "tenantremotewrite/test[a].backlog") == 5 }, waitFor, tick)
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))

	down.Store(false)
	ext = startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	_, logs := startObserved(t, cfg, componenttest.NewTelemetry(), host(ext))
	require.Eventually(t, func() bool { return len(srv.samples("a", "v")) == 5 }, waitFor, tick)
	assert.Equal(t, []float64{1, 2, 3, 4, 5}, values(srv.samples("a", "v")), "the backlog itself drains oldest first")
	assert.Equal(t, 1, logs.FilterMessage("Restoring queue of tenant").Len())
}
