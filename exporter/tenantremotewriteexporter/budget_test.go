package tenantremotewriteexporter

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.uber.org/zap/zapcore"
)

// A long outage against a disk budget: with max_queue_bytes the queue stays near the budget by
// dropping its oldest requests (counted), and the newest data is delivered when the backend
// returns. Without it, the full queue refuses the newest data and delivers the oldest.
func TestDiskBudgetDropsOldest(t *testing.T) {
	const calls, budget = 100, 4096
	for _, tc := range []struct {
		name      string
		budget    int64
		queueSize int
	}{{"budget_keeps_newest", budget, 64 << 10}, {"no_budget_refuses_newest", 0, budget}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRWServer(t)
			var down atomic.Bool
			down.Store(true)
			srv.setStatus(func(*http.Request) int {
				if down.Load() {
					return http.StatusServiceUnavailable
				}
				return 0
			})
			cfg := withTenants(testConfig(srv.URL), nil)
			cfg.MaxQueueBytes = tc.budget
			q := cfg.QueueConfig.Get()
			q.StorageID = &storageID
			q.Sizer = exporterhelper.RequestSizerTypeBytes
			q.QueueSize = int64(tc.queueSize)
			require.NoError(t, cfg.Validate())
			ext := startFileStorage(t, t.TempDir())
			t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			exp, logs := startObserved(t, cfg, tel, &testHost{exts: map[component.ID]component.Component{storageID: ext}})

			refused := 0
			for i := 1; i <= calls; i++ {
				if exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res("a"), name: "v", ms: int64(i) * 1000, value: float64(i)})) != nil {
					refused++
				}
			}
			queued := exp.queueBytes(pipelineID(exp.set.ID, "a"))
			if tc.budget > 0 {
				require.Eventually(t, func() bool { return queued.Load() > 0 && queued.Load() <= budget }, waitFor, tick, "the queue shrinks to the budget while the backend is down")
			}
			down.Store(false)

			require.Eventually(t, func() bool {
				got := len(srv.samples("a", "v"))
				return int64(got+refused)+droppedPoints(t, tel)["a/disk_budget"] == calls
			}, waitFor, tick)
			got := values(srv.samples("a", "v"))
			require.NotEmpty(t, got)
			if tc.budget == 0 {
				assert.Positive(t, refused, "the full queue refused data")
				assert.Equal(t, 1.0, got[0], "the oldest is delivered")
				assert.Less(t, got[len(got)-1], float64(calls), "the newest was refused")
				return
			}
			assert.Zero(t, refused, "nothing refused to the pipeline")
			assert.Equal(t, float64(calls), got[len(got)-1], "the newest is delivered")
			assert.Greater(t, got[0], 1.0, "the oldest were dropped")
			for i := 1; i < len(got); i++ {
				assert.Equal(t, got[i-1]+1, got[i], "what is kept is the newest, without gaps")
			}
			assert.Equal(t, int64(got[0]-1), droppedPoints(t, tel)["a/disk_budget"], "every dropped point counted")
			warn := logs.FilterMessageSnippet("over max_queue_bytes").AllUntimed()
			require.Len(t, warn, 1, "logged once per episode")
			assert.Equal(t, zapcore.WarnLevel, warn[0].Level)
		})
	}
}
