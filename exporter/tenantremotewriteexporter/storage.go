package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"encoding/json"
	"slices"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
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
	fieldReadIndex         = 3
	fieldWriteIndex        = 4
	fieldDispatchedIndexes = 5
)

// queueMeta is the part of the queue metadata we need.
type queueMeta struct {
	readIndex, writeIndex uint64
	dispatched            []uint64
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
		case (num == fieldReadIndex || num == fieldWriteIndex) && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(buf)
			if n < 0 {
				return m, false
			}
			if num == fieldReadIndex {
				m.readIndex = v
			} else {
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
	if !ok || len(m.dispatched) == 0 {
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

// orderedStorage hands the sending queues clients that restart in order.
type orderedStorage struct {
	storage.Extension
}

func (s *orderedStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	c, err := s.Extension.GetClient(ctx, kind, id, name)
	if err != nil {
		return nil, err
	}
	return &orderedClient{Client: c}, nil
}

// orderedClient rewrites the queue metadata the first time the queue reads it (at start).
type orderedClient struct {
	storage.Client
	loaded bool
}

func (c *orderedClient) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.Client.Get(ctx, key)
	if err != nil || key != queueMetadataKey || c.loaded {
		return v, err
	}
	c.loaded = true
	return rewindDispatched(v), nil
}

// queueHost is the host given to the tenants' sending queues: the collector's host with the
// storage extension wrapped by orderedStorage.
type queueHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h *queueHost) GetExtensions() map[component.ID]component.Component { return h.exts }

func newQueueHost(host component.Host, storageID component.ID, ext storage.Extension) *queueHost {
	exts := make(map[component.ID]component.Component, len(host.GetExtensions()))
	for id, e := range host.GetExtensions() {
		exts[id] = e
	}
	exts[storageID] = &orderedStorage{Extension: ext}
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
