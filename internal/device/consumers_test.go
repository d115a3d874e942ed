package device

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

func TestConsumersEmitToWhatIsSet(t *testing.T) {
	c := NewConsumers(zap.NewNop())
	r := newTestRecorder(1)
	p := r.Begin(t0)
	md, td := p.End(t0, poll.BreakerClosed)
	c.Emit(context.Background(), md, td) // nothing set yet: dropped quietly

	metrics, traces := new(consumertest.MetricsSink), new(consumertest.TracesSink)
	c.SetMetrics(metrics)
	c.Emit(context.Background(), md, td)
	assert.Len(t, metrics.AllMetrics(), 1)
	c.SetTraces(traces)
	c.Emit(context.Background(), md, td)
	c.Emit(context.Background(), pmetric.NewMetrics(), ptrace.NewTraces()) // empty: not sent
	assert.Len(t, metrics.AllMetrics(), 2)
	assert.Len(t, traces.AllTraces(), 1)

	c.SetMetrics(consumertest.NewErr(errors.New("refused")))
	c.Emit(context.Background(), md, td) // a refusal is logged, never a panic
}

func TestStopWithinHonoursDeadline(t *testing.T) {
	require.NoError(t, StopWithin(context.Background(), func() {}))
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, StopWithin(ctx, func() { <-release }), context.Canceled)
}
