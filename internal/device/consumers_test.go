package device

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

func TestConsumersEmitToWhatIsSet(t *testing.T) {
	c := NewConsumers(receivertest.NewNopSettings(component.MustNewType("test")))
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

// The hand-over is counted by the collector's standard receiver metrics; a refusal is counted as such
// and warned about once per minute, not once per poll.
func TestConsumersReportAcceptedAndRefused(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := receivertest.NewNopSettings(component.MustNewType("modbus"))
	set.TelemetrySettings = tel.NewTelemetrySettings()
	core, logs := observer.New(zap.WarnLevel)
	set.Logger = zap.New(core)
	c := NewConsumers(set)

	r := newTestRecorder(1)
	p := r.Begin(t0)
	md, td := p.End(t0, poll.BreakerClosed)
	points, spans := md.DataPointCount(), td.SpanCount()
	require.Positive(t, points)
	require.Positive(t, spans)

	c.SetMetrics(new(consumertest.MetricsSink))
	c.SetTraces(new(consumertest.TracesSink))
	c.Emit(context.Background(), md, td)
	c.Emit(context.Background(), md, td)
	assert.Equal(t, int64(2*points), sumOf(t, tel, "otelcol_receiver_accepted_metric_points"))
	assert.Equal(t, int64(2*spans), sumOf(t, tel, "otelcol_receiver_accepted_spans"))

	c.SetMetrics(consumertest.NewErr(errors.New("memory limiter: data refused")))
	for range 5 {
		c.Emit(context.Background(), md, td)
	}
	assert.Equal(t, int64(5*points), sumOf(t, tel, "otelcol_receiver_refused_metric_points"))
	assert.Equal(t, int64(7*spans), sumOf(t, tel, "otelcol_receiver_accepted_spans"))
	assert.Equal(t, 1, logs.FilterMessageSnippet("refused").Len(), "one warning per minute, not per poll")
}

func sumOf(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	require.NoError(t, err, name)
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		total += dp.Value
	}
	return total
}

func TestStopWithinHonoursDeadline(t *testing.T) {
	require.NoError(t, StopWithin(context.Background(), func() {}))
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, StopWithin(ctx, func() { <-release }), context.Canceled)
}
