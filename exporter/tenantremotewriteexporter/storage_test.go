package tenantremotewriteexporter

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pipeline"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// encodeMeta writes queue metadata the way the collector's queue does (proto3: zero fields omitted).
func encodeMeta(items, bytes int64, read, write uint64, dispatched ...uint64) []byte {
	var b []byte
	fixed := func(num protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, v)
		}
	}
	fixed(1, uint64(items))
	fixed(2, uint64(bytes))
	fixed(fieldReadIndex, read)
	fixed(fieldWriteIndex, write)
	if len(dispatched) > 0 {
		var packed []byte
		for _, d := range dispatched {
			packed = protowire.AppendFixed64(packed, d)
		}
		b = protowire.AppendTag(b, fieldDispatchedIndexes, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	return b
}

func withField6(b []byte) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, 6, protowire.VarintType), 1)
}

func TestRewindDispatched(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"nothing dispatched", encodeMeta(3, 300, 4, 7), encodeMeta(3, 300, 4, 7)},
		{"one dispatched", encodeMeta(3, 300, 5, 7, 4), encodeMeta(3, 300, 4, 7)},
		{"two contiguous", encodeMeta(4, 400, 6, 8, 5, 4), encodeMeta(4, 400, 4, 8)},
		{"first item", encodeMeta(1, 100, 1, 1, 0), encodeMeta(1, 100, 0, 1)},
		{"gap: left to the queue", encodeMeta(2, 200, 6, 8, 3), encodeMeta(2, 200, 6, 8, 3)},
		{"not just before read index", encodeMeta(2, 200, 6, 8, 4), encodeMeta(2, 200, 6, 8, 4)},
		{"garbage", []byte{0xff, 0xff}, []byte{0xff, 0xff}},
		{"unknown field: left to the queue", withField6(encodeMeta(3, 300, 5, 7, 4)), withField6(encodeMeta(3, 300, 5, 7, 4))},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rewindDispatched(tt.in)
			wantMeta, ok1 := parseQueueMeta(tt.want)
			gotMeta, ok2 := parseQueueMeta(got)
			assert.Equal(t, ok1, ok2)
			assert.Equal(t, wantMeta, gotMeta)
			if ok1 {
				assert.Equal(t, wantMeta.pending(), gotMeta.pending())
			}
		})
	}
	m, ok := parseQueueMeta(encodeMeta(3, 300, 5, 7, 4))
	assert.True(t, ok)
	assert.Equal(t, uint64(3), m.pending())
}

// The restart-order fix reads the collector's private queue record. This fails loudly when a
// collector upgrade changes it: the key, or the fields of PersistentMetadata in meta.proto.
// (Update parseQueueMeta and rewindDispatched to the new layout, then this test.)
func TestQueueRecordLayoutPinned(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "go.opentelemetry.io/collector/exporter/exporterhelper").Output()
	require.NoError(t, err, "go list: %s", out)
	dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	proto, err := os.ReadFile(filepath.Join(dir, "internal", "queue", "meta.proto"))
	require.NoError(t, err, "exporterhelper %s moved its queue record; re-check the restart-order fix", version)
	msg := regexp.MustCompile(`(?s)message PersistentMetadata\s*\{(.*?)\n\}`).FindSubmatch(proto)
	require.NotNil(t, msg, "exporterhelper %s: no PersistentMetadata in meta.proto", version)
	var fields []string
	for _, m := range regexp.MustCompile(`(?m)^\s*((?:repeated\s+)?\w+)\s+(\w+)\s*=\s*(\d+)\s*;`).FindAllSubmatch(msg[1], -1) {
		fields = append(fields, fmt.Sprintf("%s %s = %s", m[1], m[2], m[3]))
	}
	assert.Equal(t, []string{
		"sfixed64 items_size = 1",
		"sfixed64 bytes_size = 2",
		"fixed64 read_index = 3",
		"fixed64 write_index = 4",
		"repeated fixed64 currently_dispatched_items = 5",
	}, fields, "exporterhelper %s changed the queue record the restart-order fix reads", version)
	src, err := os.ReadFile(filepath.Join(dir, "internal", "queue", "persistent_queue.go"))
	require.NoError(t, err)
	assert.Contains(t, string(src), `metadataKey = "`+queueMetadataKey+`"`, "exporterhelper %s renamed the queue record key", version)
	assert.Contains(t, string(src), "pq.enqueueNotDispatchedReqs(ctx, pq.metadata.CurrentlyDispatchedItems)",
		"exporterhelper %s changed how it restarts dispatched requests; check whether the fix is still needed", version)
}

// The record a real persistent queue writes is one the fix understands completely.
func TestQueueRecordOfRealQueue(t *testing.T) {
	srv := newRWServer(t)
	srv.setStatus(func(*http.Request) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	cfg := testConfig(srv.URL)
	cfg.QueueConfig.Get().StorageID = &storageID
	ext := startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp, logs := startObserved(t, cfg, tel, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
	for i := 1; i <= 3; i++ {
		require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res(""), name: "v", ms: int64(i) * 1000, value: float64(i)})))
	}
	require.Eventually(t, func() bool { return len(srv.requestsCopy()) >= 1 }, waitFor, tick)
	require.NoError(t, exp.Shutdown(context.Background()))

	c, err := ext.(storage.Extension).GetClient(context.Background(), component.KindExporter, exp.set.ID, pipeline.SignalMetrics.String())
	require.NoError(t, err)
	buf, err := c.Get(context.Background(), queueMetadataKey)
	require.NoError(t, err)
	require.NoError(t, c.Close(context.Background()))
	m, ok := parseQueueMeta(buf)
	require.True(t, ok)
	assert.False(t, m.unknown)
	assert.Equal(t, queueMeta{itemsSize: 3, bytesSize: m.bytesSize, readIndex: 1, writeIndex: 3, dispatched: []uint64{0}}, m)
	assert.Positive(t, m.bytesSize)
	assert.Zero(t, logs.FilterMessageSnippet("not the layout").Len())
	assert.Zero(t, counterSum(t, tel, "otelcol_exporter_tenantremotewrite_queue_record_unrecognised"))
}

// At run time a record the fix does not know is a warning and a counter, and left to the queue
// as it is (no rewind), never a silent fallback.
func TestQueueRecordUnrecognisedAtStart(t *testing.T) {
	srv := newRWServer(t)
	dir := t.TempDir()
	cfg := testConfig(srv.URL)
	cfg.QueueConfig.Get().StorageID = &storageID
	ext := startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })

	// A record as a future collector might write it: a field 6 this layout does not know.
	id := component.NewIDWithName(metadata.Type, "test")
	c, err := ext.(storage.Extension).GetClient(context.Background(), component.KindExporter, id, pipeline.SignalMetrics.String())
	require.NoError(t, err)
	rec := withField6(encodeMeta(0, 0, 0, 0))
	require.NoError(t, c.Set(context.Background(), queueMetadataKey, rec))
	require.NoError(t, c.Close(context.Background()))

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp, logs := startObserved(t, cfg, tel, &testHost{exts: map[component.ID]component.Component{storageID: ext}})
	warn := logs.FilterMessageSnippet("not the layout the restart-order fix knows").AllUntimed()
	require.Len(t, warn, 1)
	assert.Equal(t, zapcore.WarnLevel, warn[0].Level)
	assert.Equal(t, int64(1), counterSum(t, tel, "otelcol_exporter_tenantremotewrite_queue_record_unrecognised"))
	// The queue itself still works.
	require.NoError(t, exp.ConsumeMetrics(context.Background(), metricsOf(point{res: res(""), name: "v", ms: 1000, value: 1})))
	require.Eventually(t, func() bool { return len(srv.samples("", "v")) == 1 }, waitFor, tick)
}
