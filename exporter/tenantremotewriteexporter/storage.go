package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"
)

// Order-preserving restart of the persistent sending queue.
//
// The collector's persistent queue keeps a request that was being sent when the collector
// stopped ("currently dispatched") and, on the next start, appends it at the END of the queue.
// A remote-write backend that rejects out-of-order samples (Prometheus without an
// out-of-order window) then refuses that request with 400 once newer requests of the same
// series went first, and the data is lost. We hand the queue a storage client that, when the
// queue loads its metadata at start, rewinds the read index over the dispatched requests
// instead, so they are sent first, in their original order.
//
// The metadata is the queue's small protobuf message (key "qmv0", fields 1-4 fixed64 sizes and
// indexes, field 5 packed fixed64 dispatched indexes) of the pinned collector train; a test
// restarts a real persistent queue to prove both the upstream behaviour and this fix.

// orderedRestart enables the rewind (a variable so that a test can show the upstream order).
var orderedRestart = true

const (
	queueMetadataKey       = "qmv0"
	fieldItemsSize         = 1
	fieldBytesSize         = 2
	fieldReadIndex         = 3
	fieldWriteIndex        = 4
	fieldDispatchedIndexes = 5
)

// queueMeta is the queue metadata.
type queueMeta struct {
	itemsSize, bytesSize  int64
	readIndex, writeIndex uint64
	dispatched            []uint64
	// unknown: the record has fields this layout does not know (a collector upgrade changed it).
	unknown bool
}

// pending is the number of requests the queue still holds.
func (m queueMeta) pending() uint64 {
	return m.writeIndex - m.readIndex + uint64(len(m.dispatched))
}

// parseQueueMeta decodes the queue metadata; ok is false for anything it does not understand.
func parseQueueMeta(buf []byte) (queueMeta, bool) {
	var m queueMeta
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return m, false
		}
		buf = buf[n:]
		switch {
		case num >= fieldItemsSize && num <= fieldWriteIndex && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(buf)
			if n < 0 {
				return m, false
			}
			switch num {
			case fieldItemsSize:
				m.itemsSize = int64(v) // sfixed64
			case fieldBytesSize:
				m.bytesSize = int64(v) // sfixed64
			case fieldReadIndex:
				m.readIndex = v
			default:
				m.writeIndex = v
			}
			buf = buf[n:]
		case num == fieldDispatchedIndexes && typ == protowire.BytesType:
			packed, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return m, false
			}
			for len(packed) > 0 {
				v, k := protowire.ConsumeFixed64(packed)
				if k < 0 {
					return m, false
				}
				m.dispatched = append(m.dispatched, v)
				packed = packed[k:]
			}
			buf = buf[n:]
		case num == fieldDispatchedIndexes && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(buf)
			if n < 0 {
				return m, false
			}
			m.dispatched = append(m.dispatched, v)
			buf = buf[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, buf)
			if n < 0 {
				return m, false
			}
			m.unknown = true
			buf = buf[n:]
		}
	}
	return m, true
}

// rewindDispatched returns the metadata with the dispatched requests moved back in front of
// the read index, or buf unchanged when there is nothing to do or the layout is unexpected.
// It only rewinds when the dispatched requests are exactly the ones just before the read
// index (always the case with one consumer), so no request is skipped or repeated.
func rewindDispatched(buf []byte) []byte {
	m, ok := parseQueueMeta(buf)
	if !ok || m.unknown || len(m.dispatched) == 0 {
		return buf
	}
	d := slices.Clone(m.dispatched)
	slices.Sort(d)
	d = slices.Compact(d)
	if len(d) != len(m.dispatched) || d[len(d)-1] != m.readIndex-1 || d[len(d)-1]-d[0]+1 != uint64(len(d)) {
		return buf
	}
	newRead := d[0]
	out := make([]byte, 0, len(buf))
	rest := buf
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		k := protowire.ConsumeFieldValue(num, typ, rest[n:])
		field := rest[:n+k]
		rest = rest[n+k:]
		switch num {
		case fieldReadIndex:
			out = protowire.AppendTag(out, fieldReadIndex, protowire.Fixed64Type)
			out = protowire.AppendFixed64(out, newRead)
		case fieldDispatchedIndexes:
			// dropped: the requests are read again from the rewound read index
		default:
			out = append(out, field...)
		}
	}
	return out
}

// queueStorage is the storage extension as the exporter's queues and tenant index see it: it
// checks each file before the extension opens it (a corrupt one is moved aside, see corrupt.go)
// and hands the sending queues clients that restart in order.
type queueStorage struct {
	storage.Extension
	dir     string // of file_storage; "" for another extension (no file checks)
	ordered bool
	e       *tenantExporter

	mu      sync.Mutex
	checked map[string]bool // files checked in this run
}

func newQueueStorage(ext storage.Extension, e *tenantExporter) *queueStorage {
	return &queueStorage{Extension: ext, dir: storageDirectory(ext), ordered: orderedRestart, e: e, checked: map[string]bool{}}
}

func (s *queueStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	if err := s.check(ctx, kind, id, name); err != nil {
		return nil, err
	}
	c, err := s.Extension.GetClient(ctx, kind, id, name)
	if err != nil {
		return nil, err
	}
	if name == pipeline.SignalMetrics.String() {
		oc := &orderedClient{Client: c, s: s, id: id}
		if s.e.cfg.MaxQueueBytes > 0 {
			oc.queued = s.e.queueBytes(id)
		}
		return oc, nil
	}
	return c, nil
}

// check verifies a file once per run and moves it aside when it is corrupt, so that the
// extension creates a new one: the collector runs on with an empty queue instead of crashing at
// every start. It fails only when a corrupt file cannot be moved.
func (s *queueStorage) check(ctx context.Context, kind component.Kind, id component.ID, name string) error {
	if s.dir == "" {
		return nil
	}
	path := queueFilePath(s.dir, kind, id, name)
	s.mu.Lock()
	done := s.checked[path]
	s.checked[path] = true
	s.mu.Unlock()
	if done {
		return nil
	}
	lost, err := verifyQueueFile(path)
	if err == nil {
		return nil
	}
	aside, mvErr := moveAside(path, time.Now())
	if mvErr != nil {
		return fmt.Errorf("tenantremotewrite: %s is corrupt (%w) and cannot be moved aside: %w; move or delete it", path, err, mvErr)
	}
	tenant, tenanted := s.e.tenantOfID(id)
	fields := []zap.Field{zap.String("file", path), zap.String("moved_to", aside), zap.Error(err)}
	if tenanted {
		fields = append(fields, zap.String("tenant", tenant))
	}
	if lost >= 0 {
		fields = append(fields, zap.Int64("lost_data_points", lost))
	} else {
		fields = append(fields, zap.String("lost_data_points", "unknown (the queue's record is unreadable)"))
	}
	s.e.set.Logger.Error("Persistent queue file is corrupt (torn by a power cut or damaged): moved aside, the queue starts empty", fields...)
	s.e.telemetry.ExporterTenantremotewriteCorruptQueueFiles.Add(ctx, 1)
	if lost > 0 {
		attrs := []attribute.KeyValue{attribute.String("reason", "corrupt_queue")}
		if tenanted {
			attrs = append(attrs, attribute.String("tenant", tenant))
		}
		s.e.telemetry.ExporterTenantremotewriteDroppedDataPoints.Add(ctx, lost, metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
	return nil
}

// unrecognised reports a queue state record the restart-order fix does not know: loudly, since
// the fix is then off for that queue.
func (s *queueStorage) unrecognised(ctx context.Context, id component.ID, what string) {
	s.e.set.Logger.Warn("The persistent queue's state record is not the layout the restart-order fix knows (collector upgraded?): "+
		"this queue restarts in the collector's own order, and after a restart during an outage a backend without an out-of-order window may refuse the re-sent request",
		zap.String("queue", id.String()), zap.String("record", what))
	s.e.telemetry.ExporterTenantremotewriteQueueRecordUnrecognised.Add(ctx, 1)
}

// orderedClient rewrites the queue metadata the first time the queue reads it (at start),
// checks that the queue reads and writes the record it knows, and (with max_queue_bytes) tells
// the disk budget the queue's size from every record written.
type orderedClient struct {
	storage.Client
	s      *queueStorage
	id     component.ID
	queued *atomic.Int64 // nil without max_queue_bytes
	// The queue calls its client under its own lock: no further locking needed.
	loaded, wrote bool
}

func (c *orderedClient) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.Client.Get(ctx, key)
	if err != nil || c.loaded {
		return v, err
	}
	c.loaded = true
	if key != queueMetadataKey {
		c.s.unrecognised(ctx, c.id, fmt.Sprintf("first read is key %q, not %q", key, queueMetadataKey))
		return v, nil
	}
	if len(v) == 0 {
		return v, nil // a new queue
	}
	m, ok := parseQueueMeta(v)
	if !ok || m.unknown {
		c.s.unrecognised(ctx, c.id, fmt.Sprintf("%q holds fields or types the fix does not know (%d bytes)", key, len(v)))
		return v, nil
	}
	if c.queued != nil {
		c.queued.Store(m.bytesSize)
	}
	if !c.s.ordered {
		return v, nil
	}
	return rewindDispatched(v), nil
}

func (c *orderedClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	if !c.wrote {
		c.checkWrite(ctx, ops)
	}
	if c.queued != nil {
		for _, op := range ops {
			if op.Type == storage.Set && op.Key == queueMetadataKey {
				if m, ok := parseQueueMeta(op.Value); ok {
					c.queued.Store(m.bytesSize)
				}
			}
		}
	}
	return c.Client.Batch(ctx, ops...)
}

// checkWrite checks the first batch that writes anything: it must write the known record.
func (c *orderedClient) checkWrite(ctx context.Context, ops []*storage.Operation) {
	var meta *storage.Operation
	writes := false
	for _, op := range ops {
		if op.Type == storage.Set {
			writes = true
			if op.Key == queueMetadataKey {
				meta = op
			}
		}
	}
	if !writes {
		return
	}
	c.wrote = true
	if meta == nil {
		c.s.unrecognised(ctx, c.id, fmt.Sprintf("the queue writes without updating %q", queueMetadataKey))
		return
	}
	if m, ok := parseQueueMeta(meta.Value); !ok || m.unknown {
		c.s.unrecognised(ctx, c.id, fmt.Sprintf("the queue writes %q with fields or types the fix does not know", queueMetadataKey))
	}
}

// queueHost is the host given to the tenants' sending queues: the collector's host with the
// storage extension wrapped by queueStorage.
type queueHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h *queueHost) GetExtensions() map[component.ID]component.Component { return h.exts }

func newQueueHost(host component.Host, storageID component.ID, qs *queueStorage) *queueHost {
	exts := make(map[component.ID]component.Component, len(host.GetExtensions()))
	for id, e := range host.GetExtensions() {
		exts[id] = e
	}
	exts[storageID] = qs
	return &queueHost{Host: host, exts: exts}
}

// tenantIndexKey holds the JSON list of tenants that have a persistent queue, so their
// queues are drained after a restart even when no new data arrives for them.
const tenantIndexKey = "tenants"

func readTenantIndex(ctx context.Context, c storage.Client) ([]string, error) {
	buf, err := c.Get(ctx, tenantIndexKey)
	if err != nil || len(buf) == 0 {
		return nil, err
	}
	var tenants []string
	if err := json.Unmarshal(buf, &tenants); err != nil {
		return nil, err
	}
	return tenants, nil
}

func writeTenantIndex(ctx context.Context, c storage.Client, tenants []string) error {
	buf, err := json.Marshal(tenants)
	if err != nil {
		return err
	}
	return c.Set(ctx, tenantIndexKey, buf)
}
