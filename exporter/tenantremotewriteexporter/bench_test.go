package tenantremotewriteexporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// cpuTime is the process' user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDurableThroughput measures the durable path end to end, with and without fsync on
// file_storage: pipeline calls of one device poll (20 points) are written to the disk queue,
// read back in batches (as the edge default: batching inside the queue) and sent to a loopback
// remote-write endpoint; the clock stops when the endpoint has everything. It reports points/s
// and the process' CPU time per point (user + system: encoding, bbolt, the HTTP round trip).
func BenchmarkDurableThroughput(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			f := filestorage.NewFactory()
			scfg := f.CreateDefaultConfig().(*filestorage.Config)
			scfg.Directory = b.TempDir() // ext4 here; not tmpfs, where fsync costs nothing
			scfg.Compaction.Directory = scfg.Directory
			scfg.FSync = fsync
			ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
			require.NoError(b, err)
			require.NoError(b, ext.Start(context.Background(), componenttest.NewNopHost()))
			defer func() { require.NoError(b, ext.Shutdown(context.Background())) }()

			cfg := withTenants(testConfig(srv.URL), nil)
			q := cfg.QueueConfig.Get()
			q.StorageID = &storageID
			q.Sizer = exporterhelper.RequestSizerTypeBytes
			q.QueueSize = 1 << 30
			// The edge default's batch sizes; a short flush so the last partial batch does not
			// dominate the time.
			q.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: 100 * time.Millisecond, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 2048, MaxSize: 8192})
			tel := componenttest.NewTelemetry()
			defer func() { require.NoError(b, tel.Shutdown(context.Background())) }()
			set := exportertest.NewNopSettings(metadata.Type)
			set.ID = component.NewIDWithName(metadata.Type, "test")
			set.TelemetrySettings = tel.NewTelemetrySettings()
			exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
			require.NoError(b, err)
			require.NoError(b, exp.Start(context.Background(), &testHost{exts: map[component.ID]component.Component{storageID: ext}}))
			defer func() { require.NoError(b, exp.Shutdown(context.Background())) }()

			points := make([]point, 20)
			for i := range points {
				points[i] = point{res: res("a"), name: fmt.Sprintf("reading_%d", i), value: float64(i)}
			}
			var ms int64
			start, cpu0 := time.Now(), cpuTime(b)
			for b.Loop() {
				ms++
				for i := range points {
					points[i].ms = ms
				}
				if err := exp.ConsumeMetrics(context.Background(), metricsOf(points...)); err != nil {
					b.Fatal(err)
				}
			}
			total := ms * int64(len(points))
			require.Eventually(b, func() bool {
				return exporterPoints(b, tel, "otelcol_exporter_sent_metric_points")["tenantremotewrite/test[a]"] >= total
			}, 5*time.Minute, 5*time.Millisecond)
			elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
			b.ReportMetric(float64(total)/elapsed.Seconds(), "points/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/point")
		})
	}
}

// BenchmarkDurableTick is one poll tick of 50 devices on the durable path (fsync on): the 50 devices'
// pipeline calls (20 points each) arrive together, as the scheduler's shared phase has them, and the
// clock stops when the endpoint has every point. It reports the process' CPU time per device-poll:
// queue writes (group commit), reads, encoding and sending.
func BenchmarkDurableTick(b *testing.B) {
	for _, fsync := range []bool{true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			f := filestorage.NewFactory()
			scfg := f.CreateDefaultConfig().(*filestorage.Config)
			scfg.Directory = b.TempDir() // ext4 here; not tmpfs, where fsync costs nothing
			scfg.Compaction.Directory = scfg.Directory
			scfg.FSync = fsync
			ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
			require.NoError(b, err)
			require.NoError(b, ext.Start(context.Background(), componenttest.NewNopHost()))
			defer func() { require.NoError(b, ext.Shutdown(context.Background())) }()

			cfg := withTenants(testConfig(srv.URL), nil)
			q := cfg.QueueConfig.Get()
			q.StorageID = &storageID
			q.Sizer = exporterhelper.RequestSizerTypeBytes
			q.QueueSize = 1 << 30
			// The edge default's batch sizes; a short flush so the last partial batch does not
			// dominate the time.
			q.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: 100 * time.Millisecond, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 2048, MaxSize: 8192})
			tel := componenttest.NewTelemetry()
			defer func() { require.NoError(b, tel.Shutdown(context.Background())) }()
			set := exportertest.NewNopSettings(metadata.Type)
			set.ID = component.NewIDWithName(metadata.Type, "test")
			set.TelemetrySettings = tel.NewTelemetrySettings()
			exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
			require.NoError(b, err)
			require.NoError(b, exp.Start(context.Background(), &testHost{exts: map[component.ID]component.Component{storageID: ext}}))
			defer func() { require.NoError(b, exp.Shutdown(context.Background())) }()

			const devices = 50
			polls := make([]pmetric.Metrics, devices)
			var ticks int64
			cpu0 := cpuTime(b)
			for b.Loop() {
				ticks++
				for d := range polls {
					points := make([]point, 20)
					for i := range points {
						points[i] = point{res: res("a", "device.id", fmt.Sprintf("dev-%02d", d)), name: fmt.Sprintf("reading_%d", i), ms: ticks, value: float64(i)}
					}
					polls[d] = metricsOf(points...)
				}
				var wg sync.WaitGroup
				for d := range polls {
					wg.Go(func() {
						if err := exp.ConsumeMetrics(context.Background(), polls[d]); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			total := ticks * devices * 20
			require.Eventually(b, func() bool {
				return exporterPoints(b, tel, "otelcol_exporter_sent_metric_points")["tenantremotewrite/test[a]"] >= total
			}, 5*time.Minute, 5*time.Millisecond)
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(ticks*devices), "cpu-ns/device-poll")
		})
	}
}
