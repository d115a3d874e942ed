package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// diskBudget keeps a tenant's persistent queue under max_queue_bytes by dropping its OLDEST
// requests: the collector's own limit (sending_queue::queue_size) refuses the newest data
// instead, which after a long outage is the data that matters. The queue's size is the one it
// records with every write (bytes_size of its state record, seen by the storage client).
//
// The request being sent is the oldest; while the queue is over budget, each send attempt drops
// it unsent instead, and the next one follows at once, until the queue fits.
type diskBudget struct {
	limit  int64
	queued *atomic.Int64 // the queue's bytes, as last written to its record
	logger *zap.Logger
	count  func(ctx context.Context, n int64)

	mu       sync.Mutex
	dropping bool // an episode was logged and has not ended with a delivery
}

// over drops md (counted) when the queue holds more than the budget; true when dropped.
func (d *diskBudget) over(ctx context.Context, md pmetric.Metrics) bool {
	queued := d.queued.Load()
	if queued <= d.limit {
		return false
	}
	d.count(ctx, int64(md.DataPointCount()))
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dropping {
		d.dropping = true
		d.logger.Warn("Persistent queue over max_queue_bytes: dropping its oldest requests until it fits; counted in otelcol_exporter_tenantremotewrite_dropped_data_points{reason=\"disk_budget\"}",
			zap.Int64("queued_bytes", queued), zap.Int64("max_queue_bytes", d.limit))
	}
	return true
}

// delivered ends an episode: the next drop is logged again.
func (d *diskBudget) delivered() {
	d.mu.Lock()
	d.dropping = false
	d.mu.Unlock()
}

// queueBytes returns the gauge of a pipeline's queue size in bytes, shared by its storage client
// (which sets it) and its push function (which reads it).
func (e *tenantExporter) queueBytes(id component.ID) *atomic.Int64 {
	e.gaugesMu.Lock()
	defer e.gaugesMu.Unlock()
	g, ok := e.gauges[id]
	if !ok {
		g = new(atomic.Int64)
		e.gauges[id] = g
	}
	return g
}
