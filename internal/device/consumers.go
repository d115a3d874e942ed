package device

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// Consumers holds the pipelines one device receiver feeds. The receiver's metrics and traces
// pipelines share one poller (sharedcomponent) and each sets its consumer here; Emit, the receiver's
// Emitter, hands every poll to whichever are set.
type Consumers struct {
	logger  *zap.Logger
	mu      sync.RWMutex
	metrics consumer.Metrics
	traces  consumer.Traces
}

// NewConsumers returns an empty set; refusals by the pipelines are logged at debug level on logger.
func NewConsumers(logger *zap.Logger) *Consumers { return &Consumers{logger: logger} }

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

// Emit hands one poll's data to the pipelines; empty data is not sent. A refusal is the pipeline's
// business (its queue or memory limiter): logged at debug, never retried here.
func (c *Consumers) Emit(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
	c.mu.RLock()
	metrics, traces := c.metrics, c.traces
	c.mu.RUnlock()
	if metrics != nil && md.ResourceMetrics().Len() > 0 {
		if err := metrics.ConsumeMetrics(ctx, md); err != nil {
			c.logger.Debug("Metrics of a poll were refused", zap.Error(err))
		}
	}
	if traces != nil && td.ResourceSpans().Len() > 0 {
		if err := traces.ConsumeTraces(ctx, td); err != nil {
			c.logger.Debug("Trace of a poll was refused", zap.Error(err))
		}
	}
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
