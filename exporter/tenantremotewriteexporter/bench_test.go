package tenantremotewriteexporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// BenchmarkConsumePersistent measures what a pipeline call costs when it returns only after its
// data is in the persistent queue (batching inside the queue, as in the edge default), with and
// without fsync. One op is one call with one device poll (20 points).
func BenchmarkConsumePersistent(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			defer srv.Close()
			f := filestorage.NewFactory()
			scfg := f.CreateDefaultConfig().(*filestorage.Config)
			scfg.Directory = b.TempDir()
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
			q.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: 5 * time.Second, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 2048, MaxSize: 8192})
			set := exportertest.NewNopSettings(metadata.Type)
			exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
			require.NoError(b, err)
			require.NoError(b, exp.Start(context.Background(), &testHost{exts: map[component.ID]component.Component{storageID: ext}}))
			defer func() { require.NoError(b, exp.Shutdown(context.Background())) }()

			points := make([]point, 20)
			for i := range points {
				points[i] = point{res: res("a"), name: fmt.Sprintf("reading_%d", i), value: float64(i)}
			}
			var ms int64
			for b.Loop() {
				ms++
				for i := range points {
					points[i].ms = ms
				}
				if err := exp.ConsumeMetrics(context.Background(), metricsOf(points...)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
