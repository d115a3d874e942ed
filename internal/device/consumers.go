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

// Emit hands one poll's data to the pipelines; empty data is not sent. A refusal is the pipeline's
// business (its queue or memory limiter): counted as refused by obsreport, warned about at most once
// a minute, never retried here (the next poll brings fresh readings).
func (c *Consumers) Emit(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
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
