package device

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// phased reads in Poll and records in Finish; Finish checks that the link is free by taking it.
type phased struct {
	link    *poll.Link
	series  *Series
	value   float64
	freeInF atomic.Bool
	order   []string
}

func (t *phased) Poll(_ context.Context, p *Poll) {
	t.order = append(t.order, "poll")
	p.StartRequest("read").End(nil)
	t.value++
}

func (t *phased) Finish(p *Poll) {
	t.order = append(t.order, "finish")
	if t.link != nil {
		if err := t.link.Acquire(context.Background()); err == nil {
			t.freeInF.Store(true)
			t.link.Release()
		}
	}
	p.Record(t.series, time.Time{}, t.value)
}

// The runner's job polls on the link and records after releasing it: the target's Finish can take
// the link, and what it records is in the emitted poll.
func TestRunnerJobRecordsWithTheLinkReleased(t *testing.T) {
	rec := newTestRecorder(0)
	link := poll.NewLink(clock.Real{}, 1, 0)
	tg := &phased{link: link, series: rec.Series("v", "1", "", KindGauge, nil)}
	var emitted []pmetric.Metrics
	run := NewRunner(rec, tg, poll.BreakerConfig{}, clock.NewManual(t0), zap.NewNop(),
		func(_ context.Context, md pmetric.Metrics, _ ptrace.Traces) { emitted = append(emitted, md) })
	job := run.Job(PollConfig{Interval: time.Second}, link)
	// One poll the way the scheduler runs it: Run on the link, then Finish.
	require.NoError(t, link.Acquire(context.Background()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		job.Run(context.Background())
		link.Release()
		job.Finish(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Finish could not take the link")
	}
	assert.True(t, tg.freeInF.Load())
	assert.Equal(t, []string{"poll", "finish"}, tg.order)
	require.Len(t, emitted, 1)
	_, _, ms, _ := metricsByName(t, emitted[0])
	assert.Equal(t, 1.0, ms["v"].Gauge().DataPoints().At(0).DoubleValue(), "Finish's readings are emitted")
	assert.Equal(t, int64(1), ms[MetricUp].Gauge().DataPoints().At(0).IntValue())
}

// A poll the breaker skips is emitted in the record phase, with the link released.
func TestRunnerSkippedPollIsEmittedAfterTheIOPhase(t *testing.T) {
	rec := newTestRecorder(0)
	var emitted int
	run := NewRunner(rec, failing{NewError(ErrTimeout, context.DeadlineExceeded)},
		poll.BreakerConfig{FailureThreshold: 1, InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		clock.NewManual(t0), zap.NewNop(), func(context.Context, pmetric.Metrics, ptrace.Traces) { emitted++ })
	job := run.Job(PollConfig{Interval: time.Second}, nil)
	job.Run(context.Background())
	job.Finish(context.Background())
	require.Equal(t, 1, emitted)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())
	job.Run(context.Background())
	assert.Equal(t, 1, emitted, "nothing is emitted in the I/O phase")
	job.Finish(context.Background())
	assert.Equal(t, 2, emitted, "the skipped poll")
}
