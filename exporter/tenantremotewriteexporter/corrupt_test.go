package tenantremotewriteexporter

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap/zapcore"
)

// The file_storage internals we rely on: its directory (cfg.Directory) and its file names.
// When a collector upgrade changes them, this fails, and corrupt queue files are no longer
// checked at start.
func TestStorageDirectory(t *testing.T) {
	dir := t.TempDir()
	ext := startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	require.Equal(t, dir, storageDirectory(ext), "file_storage's cfg.Directory moved: update storageDirectory")
	assert.Empty(t, storageDirectory(componenttest.NewNopHost().GetExtensions()[storageID]), "no extension")

	id := pipelineID(component.NewIDWithName(storageID.Type(), "edge"), "acme/1 ü")
	se, ok := ext.(storage.Extension)
	require.True(t, ok)
	qs := &queueStorage{Extension: se, checked: map[string]bool{}, e: &tenantExporter{cfg: testConfig("http://127.0.0.1:9/w")}}
	client, gerr := qs.GetClient(context.Background(), component.KindExporter, id, pipeline.SignalMetrics.String())
	require.NoError(t, gerr)
	require.NoError(t, client.Close(context.Background()))
	_, serr := os.Stat(queueFilePath(dir, component.KindExporter, id, pipeline.SignalMetrics.String()))
	require.NoError(t, serr, "file_storage names its files differently: update storageFileName")
}

// corruptions of a bbolt queue file: power cuts tear files, disks flip bytes.
var corruptions = map[string]func(b []byte) []byte{
	"truncated_to_half":      func(b []byte) []byte { return b[:len(b)/2] },
	"truncated_to_3_pages":   func(b []byte) []byte { return b[:3*4096] },
	"truncated_to_100_bytes": func(b []byte) []byte { return b[:100] },
	"meta_pages_zeroed": func(b []byte) []byte {
		clear(b[:2*4096])
		return b
	},
	"page_headers_flipped": func(b []byte) []byte {
		for off := 2 * 4096; off+8 <= len(b); off += 4096 {
			binary.LittleEndian.PutUint64(b[off:], binary.LittleEndian.Uint64(b[off:])^0x5a5a5a5a)
		}
		return b
	},
	"random_bytes": func(b []byte) []byte {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	},
}

// A torn or damaged queue file at start never stops the collector: the file is moved aside, the
// error logged once, what was lost counted, and the exporter runs on with a new queue. (Without
// the check, bbolt panics in a goroutine of its own while opening the file and the process dies.)
func TestCorruptQueueFileAtStart(t *testing.T) {
	for name, corrupt := range corruptions {
		t.Run(name, func(t *testing.T) {
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
			host := func(ext component.Component) component.Host {
				return &testHost{exts: map[component.ID]component.Component{storageID: ext}}
			}

			// First run: the backend is down, 200 requests of tenant a queue up on disk.
			ext := startFileStorage(t, dir)
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			exp, _ := startObserved(t, cfg, tel, host(ext))
			for i := 1; i <= 200; i++ {
				require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)})))
			}
			require.NoError(t, exp.Shutdown(context.Background()))
			require.NoError(t, ext.Shutdown(context.Background()))

			path := queueFilePath(dir, component.KindExporter, pipelineID(exp.set.ID, "a"), pipeline.SignalMetrics.String())
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, corrupt(b), 0o600))

			// Second run: starts, moves the file aside, delivers new data.
			down.Store(false)
			ext = startFileStorage(t, dir)
			t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
			tel2 := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel2.Shutdown(context.Background())) })
			exp, logs := startObserved(t, cfg, tel2, host(ext))
			require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: 500_000, value: 500})))
			require.Eventually(t, func() bool { return len(srv.samples("a", "v")) > 0 }, waitFor, tick)
			assert.Equal(t, 500.0, srv.samples("a", "v")[len(srv.samples("a", "v"))-1].Value)

			errs := logs.FilterLevelExact(zapcore.ErrorLevel).AllUntimed()
			require.Len(t, errs, 1, "logged once")
			ctx := errs[0].ContextMap()
			assert.Contains(t, errs[0].Message, "corrupt")
			assert.Equal(t, path, ctx["file"])
			assert.Equal(t, "a", ctx["tenant"])
			aside, _ := ctx["moved_to"].(string)
			_, err = os.Stat(aside)
			require.NoError(t, err, "the corrupt file is kept aside for inspection")
			matches, _ := filepath.Glob(path + ".corrupt-*")
			assert.Len(t, matches, 1)
			assert.Equal(t, int64(1), counterSum(t, tel2, "otelcol_exporter_tenantremotewrite_corrupt_queue_files"))
			if lost, known := ctx["lost_data_points"].(int64); known {
				assert.Equal(t, map[string]int64{"a/corrupt_queue": lost}, droppedPoints(t, tel2))
			} else {
				assert.Empty(t, droppedPoints(t, tel2), "unknown loss is not counted as zero points")
			}
			require.NoError(t, exp.Shutdown(context.Background()))
			require.NoError(t, ext.Shutdown(context.Background()))

			// Third run: the new queue file is sound.
			ext = startFileStorage(t, dir)
			t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
			_, logs = startObserved(t, cfg, componenttest.NewTelemetry(), host(ext))
			assert.Zero(t, logs.FilterLevelExact(zapcore.ErrorLevel).Len())
		})
	}
}

// A file the extension merely has not written yet, or a sound one, is left alone.
func TestVerifyQueueFileSound(t *testing.T) {
	dir := t.TempDir()
	lost, err := verifyQueueFile(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	assert.Equal(t, int64(-1), lost)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	_, err = verifyQueueFile(filepath.Join(dir, "empty"))
	require.NoError(t, err)
}

func counterSum(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	var n int64
	for _, dp := range sum.DataPoints {
		n += dp.Value
	}
	return n
}
