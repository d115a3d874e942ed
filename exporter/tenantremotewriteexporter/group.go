package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// groupCommit writes pipeline calls that arrive while the tenant's queue is busy writing another
// as one queue request (group commit). Every write to a persistent queue is a storage transaction
// (with file_storage's fsync, a disk flush), and the queue's consumer spends two more per request
// when it reads and deletes it. Devices polled on the same tick finish together: 50 of them made
// 50 transactions per second, each carrying one device's points, and those transactions were the
// largest part of the collector's CPU per device-poll (issue 17). Nothing waits in memory longer
// than one write: a call returns when its own points are in the queue (or with the error of the
// write that carried them), as before, so a kill loses nothing a pipeline call was told is accepted.
type groupCommit struct {
	exporter.Metrics // the tenant's pipeline (Start, Shutdown, Capabilities)

	mu      sync.Mutex
	busy    bool         // a write is in progress
	pending *groupWrites // calls waiting for the next write; nil: none
}

// groupWrites is the calls gathered for one write: the first of them (the leader) writes them all.
type groupWrites struct {
	md   pmetric.Metrics
	turn chan struct{} // closed when the previous write is done: the leader's turn
	done chan struct{} // closed when this write is done
	err  error
}

func newGroupCommit(p exporter.Metrics) *groupCommit {
	return &groupCommit{Metrics: p}
}

func (g *groupCommit) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		err := g.Metrics.ConsumeMetrics(ctx, md)
		g.next()
		return err
	}
	w := g.pending
	lead := w == nil
	if lead {
		w = &groupWrites{md: pmetric.NewMetrics(), turn: make(chan struct{}), done: make(chan struct{})}
		g.pending = w
	}
	if src := md.ResourceMetrics(); md.IsReadOnly() {
		// Shared with other consumers (the exporter then declares that it does not mutate data).
		for i := range src.Len() {
			src.At(i).CopyTo(w.md.ResourceMetrics().AppendEmpty())
		}
	} else {
		src.MoveAndAppendTo(w.md.ResourceMetrics())
	}
	g.mu.Unlock()
	if !lead {
		<-w.done
		return w.err
	}
	<-w.turn
	// The write carries the others' points too: the leader's cancellation must not fail theirs.
	w.err = g.Metrics.ConsumeMetrics(context.WithoutCancel(ctx), w.md)
	close(w.done)
	g.next()
	return w.err
}

// next hands the queue to the calls gathered meanwhile, or marks it idle.
func (g *groupCommit) next() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.pending; w != nil {
		g.pending = nil
		close(w.turn) // busy stays set: the leader writes next
		return
	}
	g.busy = false
}
