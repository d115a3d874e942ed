package device

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
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

// onePoll is one emitted poll of a fresh recorder (sampled: it carries a trace).
func onePoll(t *testing.T) (pmetric.Metrics, ptrace.Traces) {
	t.Helper()
	p := newTestRecorder(1).Begin(t0)
	return p.End(t0, poll.BreakerClosed)
}

// The polls of a tick reach the pipelines in one call once every scheduled device's poll is in.
func TestConsumersGatherATickIntoOneCall(t *testing.T) {
	c := NewConsumers(receivertest.NewNopSettings(component.MustNewType("test")))
	metrics, traces := new(consumertest.MetricsSink), new(consumertest.TracesSink)
	c.SetMetrics(metrics)
	c.SetTraces(traces)
	c.SetGather(3, time.Hour)
	md, td := onePoll(t)
	points, spans := md.DataPointCount(), td.SpanCount()
	for range 2 {
		md, td := onePoll(t)
		c.Emit(context.Background(), md, td)
	}
	assert.Empty(t, metrics.AllMetrics(), "two of three polls: still gathering")
	c.Emit(context.Background(), md, td)
	require.Len(t, metrics.AllMetrics(), 1)
	assert.Equal(t, 3, metrics.AllMetrics()[0].ResourceMetrics().Len())
	assert.Equal(t, 3*points, metrics.DataPointCount())
	require.Len(t, traces.AllTraces(), 1)
	assert.Equal(t, 3*spans, traces.SpanCount())

	// the next tick gathers anew
	for range 3 {
		md, td := onePoll(t)
		c.Emit(context.Background(), md, td)
	}
	assert.Len(t, metrics.AllMetrics(), 2)
}

// A batch whose tick does not complete (a device late or polled at another interval) is handed over
// when its window has passed; Flush hands over what is gathering, and turns gathering off.
func TestConsumersGatherWindowAndFlush(t *testing.T) {
	c := NewConsumers(receivertest.NewNopSettings(component.MustNewType("test")))
	metrics := new(consumertest.MetricsSink)
	c.SetMetrics(metrics)
	c.SetGather(3, time.Millisecond)
	md, td := onePoll(t)
	c.Emit(context.Background(), md, td)
	require.Eventually(t, func() bool { return len(metrics.AllMetrics()) == 1 }, 5*time.Second, time.Millisecond)

	c.SetGather(3, time.Hour)
	md, td = onePoll(t)
	c.Emit(context.Background(), md, td)
	assert.Len(t, metrics.AllMetrics(), 1)
	c.Flush(context.Background())
	require.Len(t, metrics.AllMetrics(), 2)
	md, td = onePoll(t)
	c.Emit(context.Background(), md, td)
	assert.Len(t, metrics.AllMetrics(), 3, "after Flush every poll is handed over at once")
}

// blockingSink holds every call until released, counting the calls inside it.
type blockingSink struct {
	inside  atomic.Int32
	release chan struct{}
}

func (b *blockingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (b *blockingSink) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	b.inside.Add(1)
	<-b.release
	return nil
}

// A pipeline that does not take the batches: beyond maxQueued of them, each poll waits for the
// pipeline on its own goroutine, as without gathering, instead of piling up in batches.
func TestConsumersGatherBackPressure(t *testing.T) {
	c := NewConsumers(receivertest.NewNopSettings(component.MustNewType("test")))
	sink := &blockingSink{release: make(chan struct{})}
	c.SetMetrics(sink)
	c.SetGather(2, time.Hour)
	var wg sync.WaitGroup
	emit := func() {
		md, td := onePoll(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Emit(context.Background(), md, td)
		}()
	}
	for range 2 * maxQueued {
		emit() // maxQueued full batches: their last polls wait in the pipeline
	}
	require.Eventually(t, func() bool { return sink.inside.Load() == maxQueued }, 5*time.Second, time.Millisecond)
	emit()
	require.Eventually(t, func() bool { return sink.inside.Load() == maxQueued+1 }, 5*time.Second, time.Millisecond,
		"the next poll is handed over by itself, and waits")
	close(sink.release)
	wg.Wait()
}
