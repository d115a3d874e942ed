package device

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// refusalLogEvery bounds the refusal warnings: a full queue or the memory limiter refuses every poll
// for as long as it lasts, and one line per poll would flood the log of a small gateway.
const refusalLogEvery = time.Minute

// Consumers holds the pipelines one device receiver feeds. The receiver's metrics and traces
// pipelines share one poller (sharedcomponent) and each sets its consumer here; Emit, the receiver's
// Emitter, hands every poll to whichever are set.
//
// Every hand-over goes through the receiver helper's obsreport, so the collector's standard
// otelcol_receiver_accepted_* / refused_* counters exist for device receivers as for any other.
type Consumers struct {
	logger *zap.Logger
	obs    *receiverhelper.ObsReport // nil if it could not be made: the data still flows

	mu      sync.RWMutex
	metrics consumer.Metrics
	traces  consumer.Traces

	refusedMu     sync.Mutex
	refusedLogged time.Time // last refusal warning
	refusedSince  int       // refusals not logged since then

	gather gathering
}

// gathering hands the polls of one tick to the pipelines in one call (SetGather). The devices of a
// receiver fall due on one tick, each delayed by its jitter: handed over one by one, each poll was a
// pipeline call of its own and, with a disk queue, a storage transaction (and fsync) of its own, tens
// per second for 50 devices (issue 17).
type gathering struct {
	window   time.Duration // 0: no gathering, every poll is handed over at once
	expected int           // polls that complete a batch at once: the scheduled devices

	mu     sync.Mutex
	open   bool // a batch is gathering
	gen    uint64
	md     pmetric.Metrics
	td     ptrace.Traces
	n      int         // polls in the batch
	timer  *time.Timer // the batch's window (wall time, whatever clock the devices run on)
	queued int         // batches waiting to be handed over
}

// NewConsumers returns an empty set for the receiver of set. Its type (modbus, opcua, dlt645) names
// the protocol, which is the obsreport "transport".
func NewConsumers(set receiver.Settings) *Consumers {
	c := &Consumers{logger: set.Logger}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              set.ID.Type().String(),
		ReceiverCreateSettings: set,
	})
	if err != nil {
		set.Logger.Warn("Receiver self-telemetry unavailable", zap.Error(err))
	} else {
		c.obs = obs
	}
	return c
}

// SetMetrics sets the metrics pipeline.
func (c *Consumers) SetMetrics(next consumer.Metrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.metrics = next
}

// SetTraces sets the traces pipeline.
func (c *Consumers) SetTraces(next consumer.Traces) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.traces = next
}

// dataFormat is the obsreport "format" of what device receivers hand over: pdata built in process.
const dataFormat = "pdata"

// SetGather makes Emit gather polls into one pipeline call: a batch is handed over once expected
// polls are in it, or window after its first poll (devices that answer late, or polled at other
// intervals), whichever comes first; expected < 2 or window <= 0 turns gathering off. Call it before
// the first Emit.
func (c *Consumers) SetGather(expected int, window time.Duration) {
	g := &c.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expected, g.window = expected, window
	if expected < 2 {
		g.window = 0
	}
}

// maxQueued bounds the batches waiting for a slow pipeline: beyond it each poll is handed over by its
// own goroutine, which waits for the pipeline as it did without gathering (back-pressure).
const maxQueued = 2

// Emit hands one poll's data to the pipelines (with gathering, in a batch: see SetGather); empty data
// is not sent. A refusal is the pipeline's business (its queue or memory limiter): counted as refused
// by obsreport, warned about at most once a minute, never retried here (the next poll brings fresh
// readings).
func (c *Consumers) Emit(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
	g := &c.gather
	g.mu.Lock()
	if g.window <= 0 {
		g.mu.Unlock()
		c.send(ctx, md, td)
		return
	}
	if !g.open {
		if g.queued >= maxQueued {
			g.mu.Unlock()
			c.send(ctx, md, td)
			return
		}
		g.open, g.n, g.md, g.td = true, 0, pmetric.NewMetrics(), ptrace.NewTraces()
		g.gen++
		gen := g.gen
		g.timer = time.AfterFunc(g.window, func() { c.flushAfter(gen) })
	}
	moveMetrics(md, g.md)
	moveTraces(td, g.td)
	g.n++
	if g.n < g.expected {
		g.mu.Unlock()
		return
	}
	bmd, btd := c.take()
	g.mu.Unlock()
	// The batch carries the other devices' polls: this one's cancellation must not drop them.
	c.sendQueued(context.WithoutCancel(ctx), bmd, btd)
}

// flushAfter hands batch gen over when its window has passed, unless it was handed over already.
func (c *Consumers) flushAfter(gen uint64) {
	g := &c.gather
	g.mu.Lock()
	if !g.open || g.gen != gen {
		g.mu.Unlock()
		return
	}
	md, td := c.take()
	g.mu.Unlock()
	c.sendQueued(context.Background(), md, td)
}

// take closes the open batch and counts it as queued; call with gather.mu held.
func (c *Consumers) take() (pmetric.Metrics, ptrace.Traces) {
	g := &c.gather
	g.open = false
	g.timer.Stop()
	g.queued++
	md, td := g.md, g.td
	g.md, g.td = pmetric.Metrics{}, ptrace.Traces{}
	return md, td
}

func (c *Consumers) sendQueued(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
	c.send(ctx, md, td)
	c.gather.mu.Lock()
	c.gather.queued--
	c.gather.mu.Unlock()
}

// Flush hands over the batch being gathered, and stops gathering: the receiver's polls have stopped.
func (c *Consumers) Flush(ctx context.Context) {
	g := &c.gather
	g.mu.Lock()
	if g.window <= 0 {
		g.mu.Unlock()
		return
	}
	g.window = 0
	if !g.open {
		g.mu.Unlock()
		return
	}
	md, td := c.take()
	g.mu.Unlock()
	c.sendQueued(ctx, md, td)
}

func moveMetrics(from, to pmetric.Metrics) {
	if from.IsReadOnly() {
		for i := range from.ResourceMetrics().Len() {
			from.ResourceMetrics().At(i).CopyTo(to.ResourceMetrics().AppendEmpty())
		}
		return
	}
	from.ResourceMetrics().MoveAndAppendTo(to.ResourceMetrics())
}

func moveTraces(from, to ptrace.Traces) {
	if from.IsReadOnly() {
		for i := range from.ResourceSpans().Len() {
			from.ResourceSpans().At(i).CopyTo(to.ResourceSpans().AppendEmpty())
		}
		return
	}
	from.ResourceSpans().MoveAndAppendTo(to.ResourceSpans())
}

// send hands data to the pipelines that are set.
func (c *Consumers) send(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
	c.mu.RLock()
	metrics, traces := c.metrics, c.traces
	c.mu.RUnlock()
	if metrics != nil && md.ResourceMetrics().Len() > 0 {
		n := md.DataPointCount()
		opCtx := ctx
		if c.obs != nil {
			opCtx = c.obs.StartMetricsOp(ctx)
		}
		err := metrics.ConsumeMetrics(opCtx, md)
		if c.obs != nil {
			c.obs.EndMetricsOp(opCtx, dataFormat, n, err)
		}
		if err != nil {
			c.refused("metric points", n, err)
		}
	}
	if traces != nil && td.ResourceSpans().Len() > 0 {
		n := td.SpanCount()
		opCtx := ctx
		if c.obs != nil {
			opCtx = c.obs.StartTracesOp(ctx)
		}
		err := traces.ConsumeTraces(opCtx, td)
		if c.obs != nil {
			c.obs.EndTracesOp(opCtx, dataFormat, n, err)
		}
		if err != nil {
			c.refused("spans", n, err)
		}
	}
}

// refused warns of a refusal by the pipeline, at most once per refusalLogEvery, with the number of
// refusals that were not logged in between.
func (c *Consumers) refused(what string, n int, err error) {
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	now := time.Now()
	if !c.refusedLogged.IsZero() && now.Sub(c.refusedLogged) < refusalLogEvery {
		c.refusedSince++
		return
	}
	c.logger.Warn("The pipeline refused a poll's data; it is lost (see otelcol_receiver_refused_*)",
		zap.String("data", what), zap.Int("count", n), zap.Int("refusals_not_logged", c.refusedSince), zap.Error(err))
	c.refusedLogged, c.refusedSince = now, 0
}

// StopWithin runs stop (cancel schedules, wait for polls in flight, close connections) and waits for
// it until ctx ends: a receiver's Shutdown honours its deadline even while a request still waits for
// its timeout.
func StopWithin(ctx context.Context, stop func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
