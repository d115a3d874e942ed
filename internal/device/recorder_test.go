package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testIdentity() Identity {
	return Identity{
		ID: "meter-7", Protocol: ProtocolModbus, Address: "tcp://10.0.0.5:502/unit/3",
		Manufacturer: "Eastron", Model: "SDM630",
		Attributes: map[string]string{"site": "pv-north", "device_group": "meters"},
	}
}

func newTestRecorder(ratio float64) *Recorder {
	return NewRecorder(testIdentity(), RecorderSettings{
		Scope:   Scope{Name: "otelcol-iiot/modbus", Version: "1.2.3"},
		Health:  AllHealthMetrics(),
		Traces:  TracesConfig{SuccessSampleRatio: ratio},
		Service: "modbus/site",
		Start:   t0,
	})
}

// metricsByName flattens the single resource/scope of a device poll.
func metricsByName(t *testing.T, md pmetric.Metrics) (pcommon.Resource, pcommon.InstrumentationScope, map[string]pmetric.Metric, []string) {
	t.Helper()
	require.Equal(t, 1, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)
	require.Equal(t, 1, rm.ScopeMetrics().Len())
	sm := rm.ScopeMetrics().At(0)
	out := map[string]pmetric.Metric{}
	var order []string
	for i := 0; i < sm.Metrics().Len(); i++ {
		m := sm.Metrics().At(i)
		out[m.Name()] = m
		order = append(order, m.Name())
	}
	return rm.Resource(), sm.Scope(), out, order
}

func TestPollProducesHealthReadingsAndTrace(t *testing.T) {
	r := newTestRecorder(0)
	voltA := r.Series("grid.voltage", "V", "Phase voltage", KindGauge, map[string]string{"phase": "A"})
	energy := r.Series("energy.active.import", "kWh", "Imported energy", KindSum, nil)
	voltB := r.Series("grid.voltage", "V", "Phase voltage", KindGauge, map[string]string{"phase": "B"})

	p := r.Begin(t0)
	q := p.StartRequestAt("modbus.read_input_registers", t0).Attr("modbus.unit_id", 3).Attr("modbus.function_code", uint8(4))
	q.EndAt(nil, t0.Add(5*time.Millisecond))
	p.Record(energy, time.Time{}, 1234.5)
	p.Record(voltA, time.Time{}, 231.5)
	q2 := p.StartRequestAt("modbus.read_input_registers", t0.Add(5*time.Millisecond))
	q2.Retry()
	q2.EndAt(NewError(ErrException, errors.New("illegal data address")), t0.Add(9*time.Millisecond))
	p.RecordStale(voltB)
	md, td := p.End(t0.Add(10*time.Millisecond), poll.BreakerClosed)

	res, scope, ms, order := metricsByName(t, md)
	assert.Equal(t, map[string]any{
		"device.id": "meter-7", "device.protocol": "modbus", "device.address": "tcp://10.0.0.5:502/unit/3",
		"device.manufacturer": "Eastron", "device.model.name": "SDM630", "site": "pv-north", "device_group": "meters",
	}, res.Attributes().AsRaw())
	assert.Equal(t, "otelcol-iiot/modbus", scope.Name())
	assert.Equal(t, "1.2.3", scope.Version())
	assert.Equal(t, []string{MetricUp, MetricPollDuration, MetricPollErrors, MetricRequests, MetricBreakerState,
		"grid.voltage", "energy.active.import"}, order, "health first, then readings in registration order")

	assert.Equal(t, int64(1), ms[MetricUp].Gauge().DataPoints().At(0).IntValue(), "an exception is still an answer")
	assert.InDelta(t, 0.010, ms[MetricPollDuration].Gauge().DataPoints().At(0).DoubleValue(), 1e-9)
	errs := ms[MetricPollErrors].Sum()
	assert.True(t, errs.IsMonotonic())
	require.Equal(t, 1, errs.DataPoints().Len())
	assert.Equal(t, int64(1), errs.DataPoints().At(0).IntValue())
	assert.Equal(t, "exception", errs.DataPoints().At(0).Attributes().AsRaw()["error.type"])
	assert.Equal(t, int64(3), ms[MetricRequests].Sum().DataPoints().At(0).IntValue(), "two requests, one retried")
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), ms[MetricRequests].Sum().DataPoints().At(0).StartTimestamp())
	assert.Equal(t, int64(0), ms[MetricBreakerState].Gauge().DataPoints().At(0).IntValue())

	volts := ms["grid.voltage"]
	assert.Equal(t, "V", volts.Unit())
	require.Equal(t, 2, volts.Gauge().DataPoints().Len())
	a, b := volts.Gauge().DataPoints().At(0), volts.Gauge().DataPoints().At(1)
	assert.Equal(t, 231.5, a.DoubleValue())
	assert.Equal(t, map[string]any{"phase": "A"}, a.Attributes().AsRaw())
	assert.False(t, a.Flags().NoRecordedValue())
	assert.True(t, b.Flags().NoRecordedValue(), "a failed reading is marked, not dropped")
	assert.Equal(t, map[string]any{"phase": "B"}, b.Attributes().AsRaw())
	en := ms["energy.active.import"].Sum()
	assert.True(t, en.IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, en.AggregationTemporality())
	assert.Equal(t, 1234.5, en.DataPoints().At(0).DoubleValue())

	// The poll had an error, so its trace is kept even at ratio 0, and the duration links to it.
	require.Equal(t, 1, td.ResourceSpans().Len())
	rs := td.ResourceSpans().At(0)
	assert.Equal(t, "modbus/site", rs.Resource().Attributes().AsRaw()["service.name"])
	spans := rs.ScopeSpans().At(0).Spans()
	require.Equal(t, 3, spans.Len())
	root := spans.At(0)
	assert.Equal(t, "modbus.poll", root.Name())
	assert.Equal(t, ptrace.StatusCodeError, root.Status().Code())
	assert.Equal(t, int64(1), root.Attributes().AsRaw()["iiot.poll.failed_requests"])
	first, second := spans.At(1), spans.At(2)
	assert.Equal(t, root.SpanID(), first.ParentSpanID())
	assert.Equal(t, root.TraceID(), second.TraceID())
	assert.Equal(t, ptrace.SpanKindClient, first.Kind())
	assert.Equal(t, map[string]any{"iiot.request.attempts": int64(1), "modbus.unit_id": int64(3), "modbus.function_code": int64(4)}, first.Attributes().AsRaw())
	assert.Equal(t, ptrace.StatusCodeUnset, first.Status().Code())
	assert.Equal(t, ptrace.StatusCodeError, second.Status().Code())
	assert.Equal(t, "exception: illegal data address", second.Status().Message())
	assert.Equal(t, int64(2), second.Attributes().AsRaw()["iiot.request.attempts"])
	assert.Equal(t, "exception", second.Attributes().AsRaw()["error.type"])

	ex := ms[MetricPollDuration].Gauge().DataPoints().At(0).Exemplars()
	require.Equal(t, 1, ex.Len())
	assert.Equal(t, root.TraceID(), ex.At(0).TraceID())
	assert.Equal(t, root.SpanID(), ex.At(0).SpanID())

	// Counters are cumulative across polls.
	p = r.Begin(t0.Add(time.Minute))
	p.StartRequestAt("modbus.read_input_registers", t0.Add(time.Minute)).EndAt(nil, t0.Add(time.Minute))
	md, td = p.End(t0.Add(time.Minute), poll.BreakerClosed)
	_, _, ms, _ = metricsByName(t, md)
	assert.Equal(t, int64(4), ms[MetricRequests].Sum().DataPoints().At(0).IntValue())
	assert.Equal(t, int64(1), ms[MetricPollErrors].Sum().DataPoints().At(0).IntValue(), "errors seen once keep being reported")
	assert.Equal(t, 0, td.SpanCount(), "a good poll at ratio 0 is not sampled")
	assert.Equal(t, 0, ms[MetricPollDuration].Gauge().DataPoints().At(0).Exemplars().Len(), "no exemplar for a dropped trace")
}

func TestDeviceThatDoesNotAnswerIsDown(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("x", "1", "", KindGauge, nil)
	p := r.Begin(t0)
	q := p.StartRequestAt("dlt645.read", t0)
	q.Retry()
	q.EndAt(NewError(ErrTimeout, os.ErrDeadlineExceeded), t0.Add(2*time.Second))
	p.RecordStale(s)
	assert.False(t, p.Answered())
	md, td := p.End(t0.Add(2*time.Second), poll.BreakerClosed)
	_, _, ms, _ := metricsByName(t, md)
	assert.Equal(t, int64(0), ms[MetricUp].Gauge().DataPoints().At(0).IntValue())
	assert.Equal(t, "timeout", ms[MetricPollErrors].Sum().DataPoints().At(0).Attributes().AsRaw()["error.type"])
	assert.Equal(t, 2, td.SpanCount())
}

func TestPollLevelFailure(t *testing.T) {
	r := newTestRecorder(1)
	p := r.Begin(t0)
	p.Fail(fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}))
	assert.False(t, p.Answered())
	md, td := p.End(t0, poll.BreakerOpen)
	_, _, ms, _ := metricsByName(t, md)
	assert.Equal(t, "connection", ms[MetricPollErrors].Sum().DataPoints().At(0).Attributes().AsRaw()["error.type"])
	assert.Equal(t, int64(2), ms[MetricBreakerState].Gauge().DataPoints().At(0).IntValue())
	root := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, ptrace.StatusCodeError, root.Status().Code())
	assert.Contains(t, root.Status().Message(), "connection refused")
}

func TestSuccessSamplingRatio(t *testing.T) {
	for _, ratio := range []float64{0, 0.25, 1} {
		r := newTestRecorder(ratio)
		kept := 0
		const n = 4000
		for range n {
			p := r.Begin(t0)
			p.StartRequestAt("op", t0).EndAt(nil, t0)
			_, td := p.End(t0, poll.BreakerClosed)
			if td.SpanCount() > 0 {
				kept++
			}
		}
		switch ratio {
		case 0:
			assert.Equal(t, 0, kept)
		case 1:
			assert.Equal(t, n, kept)
		default:
			assert.InDelta(t, ratio*n, kept, 0.05*n, "kept %d of %d at ratio %v", kept, n, ratio)
		}
	}
}

func TestUncertainIsCountedButNotAnErrorTrace(t *testing.T) {
	r := newTestRecorder(0)
	p := r.Begin(t0)
	p.Error(ErrUncertain)
	_, td := p.End(t0, poll.BreakerClosed)
	assert.Equal(t, 0, td.SpanCount())
	p = r.Begin(t0)
	p.Error(ErrDecode)
	p.Error(ErrBadStatus)
	_, td = p.End(t0, poll.BreakerClosed)
	require.Equal(t, 1, td.SpanCount(), "a reading error keeps the trace")
	root := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, ptrace.StatusCodeError, root.Status().Code())
	assert.Equal(t, "2 readings failed (last: bad_status)", root.Status().Message())
	p = r.Begin(t0)
	_, td = p.End(t0, poll.BreakerClosed)
	assert.Equal(t, 0, td.SpanCount(), "reading errors do not carry over to the next poll")
}

func TestDisabledHealthMetrics(t *testing.T) {
	h := AllHealthMetrics()
	h.Requests = false
	h.BreakerState = false
	r := NewRecorder(testIdentity(), RecorderSettings{Health: h, Start: t0})
	p := r.Begin(t0)
	md, _ := p.End(t0, poll.BreakerClosed)
	_, _, _, order := metricsByName(t, md)
	assert.Equal(t, []string{MetricUp, MetricPollDuration}, order)
}

func TestSkippedPollReportsHealthOnly(t *testing.T) {
	r := newTestRecorder(1)
	md := r.Skipped(t0, poll.BreakerOpen)
	_, _, ms, order := metricsByName(t, md)
	assert.Equal(t, []string{MetricUp, MetricRequests, MetricBreakerState}, order)
	assert.Equal(t, int64(0), ms[MetricUp].Gauge().DataPoints().At(0).IntValue())
	assert.Equal(t, int64(2), ms[MetricBreakerState].Gauge().DataPoints().At(0).IntValue())
}

func TestClassify(t *testing.T) {
	assert.Equal(t, ErrChecksum, Classify(fmt.Errorf("wrapped: %w", Errorf(ErrChecksum, "cs %02x", 3))))
	assert.Equal(t, ErrTimeout, Classify(context.DeadlineExceeded))
	assert.Equal(t, ErrTimeout, Classify(fmt.Errorf("read: %w", os.ErrDeadlineExceeded)))
	assert.Equal(t, ErrConnection, Classify(errors.New("broken pipe")))
	assert.Equal(t, ErrorType(""), Classify(nil))
	assert.True(t, ErrException.Answered())
	assert.False(t, ErrTimeout.Answered())
	assert.False(t, ErrChecksum.Answered())
}

// flakyTarget answers or not, as the test says.
type flakyTarget struct{ answer bool }

func (f *flakyTarget) Poll(_ context.Context, p *Poll) {
	q := p.StartRequest("probe")
	if f.answer {
		q.End(nil)
		return
	}
	q.End(NewError(ErrTimeout, errors.New("no answer")))
}

func TestRunnerOpensBreakerAndRecovers(t *testing.T) {
	clock := clock.NewManual(t0)
	core, logs := observer.New(zap.InfoLevel)
	target := &flakyTarget{}
	var emitted []pmetric.Metrics
	emit := func(_ context.Context, md pmetric.Metrics, _ ptrace.Traces) { emitted = append(emitted, md) }
	run := NewRunner(newTestRecorder(0), target,
		poll.BreakerConfig{FailureThreshold: 2, InitialBackoff: 30 * time.Second, MaxBackoff: time.Minute},
		clock, zap.New(core), emit)

	upAndState := func() (int64, int64, bool) {
		_, _, ms, _ := metricsByName(t, emitted[len(emitted)-1])
		_, polled := ms[MetricPollDuration]
		return ms[MetricUp].Gauge().DataPoints().At(0).IntValue(), ms[MetricBreakerState].Gauge().DataPoints().At(0).IntValue(), polled
	}
	ctx := context.Background()
	run.RunOnce(ctx)
	up, state, polled := upAndState()
	assert.Equal(t, []int64{0, 0}, []int64{up, state})
	assert.True(t, polled)
	run.RunOnce(ctx)
	_, state, _ = upAndState()
	assert.Equal(t, int64(poll.BreakerOpen), state, "second failure opens the breaker")

	clock.Advance(10 * time.Second)
	run.RunOnce(ctx)
	up, state, polled = upAndState()
	assert.Equal(t, []int64{0, 2}, []int64{up, state})
	assert.False(t, polled, "an open breaker skips the poll")

	target.answer = true
	clock.Advance(20 * time.Second)
	run.RunOnce(ctx)
	up, state, polled = upAndState()
	assert.Equal(t, []int64{1, 0}, []int64{up, state}, "the probe succeeded: closed again")
	assert.True(t, polled)

	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	assert.Equal(t, []string{"Device unavailable: no answer within the timeout", "Circuit breaker opened: polls paused", "Circuit breaker closed: device answers again", "Device is back"}, msgs,
		"state changes are logged once each, never every poll")
}

// Request handles stay valid while more requests start (the span slots grow), attributes are kept by
// value with their types, and a reused slot starts without the previous poll's attributes.
func TestRequestSpansAndAttributes(t *testing.T) {
	r := newTestRecorder(1)
	type custom struct{}
	for round := 0; round < 2; round++ {
		p := r.Begin(t0)
		p.Attr("poll.str", "a")
		p.Attr("poll.n", uint16(7))
		first := p.StartRequestAt("op", t0)
		var reqs []*Request
		for i := 0; i < 20; i++ {
			reqs = append(reqs, p.StartRequestAt("op", t0).Attr("i", i))
		}
		if round == 0 {
			first.Attr("s", "x").Attr("b", true).Attr("i64", int64(-5)).Attr("u8", uint8(200)).Attr("u32", uint32(1<<31)).
				Attr("f", 2.5).Attr("other", custom{})
		}
		first.EndAt(nil, t0)
		reqs[3].Attr("late", "yes")
		_, td := p.End(t0, poll.BreakerClosed)
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		require.Equal(t, 22, spans.Len())
		assert.Equal(t, map[string]any{"device.id": "meter-7", "iiot.poll.requests": int64(21), "iiot.poll.failed_requests": int64(0),
			"poll.str": "a", "poll.n": int64(7)}, spans.At(0).Attributes().AsRaw())
		want := map[string]any{"iiot.request.attempts": int64(1)}
		if round == 0 {
			want = map[string]any{"iiot.request.attempts": int64(1), "s": "x", "b": true, "i64": int64(-5), "u8": int64(200),
				"u32": int64(1 << 31), "f": 2.5, "other": "?"}
		}
		assert.Equal(t, want, spans.At(1).Attributes().AsRaw(), "round %d", round)
		assert.Equal(t, map[string]any{"iiot.request.attempts": int64(1), "i": int64(3), "late": "yes"}, spans.At(5).Attributes().AsRaw())
		assert.Equal(t, map[string]any{"iiot.request.attempts": int64(1), "i": int64(19)}, spans.At(21).Attributes().AsRaw())
	}
}

// Readings keep their own timestamps and their attributes; a zero timestamp is the poll's end.
func TestReadingTimestampsAndAttributes(t *testing.T) {
	r := newTestRecorder(0)
	a := r.Series("v", "1", "", KindGauge, map[string]string{"z": "1", "a": "2"})
	b := r.Series("v", "1", "", KindGauge, nil)
	p := r.Begin(t0)
	p.Record(a, t0.Add(-time.Second), 1)
	p.Record(b, time.Time{}, 2)
	md, _ := p.End(t0.Add(time.Second), poll.BreakerClosed)
	_, _, ms, _ := metricsByName(t, md)
	dps := ms["v"].Gauge().DataPoints()
	require.Equal(t, 2, dps.Len())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(-time.Second)), dps.At(0).Timestamp())
	assert.Equal(t, map[string]any{"a": "2", "z": "1"}, dps.At(0).Attributes().AsRaw())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(time.Second)), dps.At(1).Timestamp())
	assert.Equal(t, 0, dps.At(1).Attributes().Len())
	// The data points own their attributes: changing one leaves the series and the next poll alone.
	dps.At(0).Attributes().PutStr("a", "changed")
	p = r.Begin(t0)
	p.Record(a, time.Time{}, 1)
	md, _ = p.End(t0, poll.BreakerClosed)
	_, _, ms, _ = metricsByName(t, md)
	assert.Equal(t, map[string]any{"a": "2", "z": "1"}, ms["v"].Gauge().DataPoints().At(0).Attributes().AsRaw())
}

// BenchmarkPoll is one poll of a device with 50 readings (one attribute each) read in one request, at
// the default sample ratio: what the recorder costs per poll on top of the protocol work.
func BenchmarkPoll(b *testing.B) {
	r := newTestRecorder(0.01)
	series := make([]*Series, 50)
	for i := range series {
		series[i] = r.Series("value", "W", "", KindGauge, map[string]string{"reg": fmt.Sprint(2 * i)})
	}
	benchmarkPoll(b, r, series, func(p *Poll, s *Series, v int) { p.Record(s, time.Time{}, float64(v)) })
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*50), "ns/reading")
}

// benchmarkPoll polls r in a loop: one request, then record(v) for each series.
func benchmarkPoll(b *testing.B, r *Recorder, series []*Series, record func(p *Poll, s *Series, v int)) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		p := r.Begin(now)
		p.Attr("modbus.endpoint", "tcp://127.0.0.1:502")
		p.Attr("modbus.unit_id", 7)
		q := p.StartRequestAt("modbus.read_holding_registers", now).Attr("modbus.function_code", 3).Attr("modbus.unit_id", 7).
			Attr("modbus.address", 1000).Attr("modbus.count", 100).Attr("modbus.fields", 50)
		q.EndAt(nil, now)
		for j, s := range series {
			record(p, s, i+j)
		}
		md, _ := p.End(now.Add(time.Millisecond), poll.BreakerClosed)
		if md.DataPointCount() != len(series)+4 {
			b.Fatal(md.DataPointCount())
		}
	}
}

// BenchmarkPdataFloor builds only the 50 data points of BenchmarkPoll (one metric, one attribute
// each, no resource, health metrics or trace decision): what any receiver emitting these readings as
// pdata pays at least. BenchmarkPoll over this is the recorder's own overhead.
func BenchmarkPdataFloor(b *testing.B) {
	attrs := make([]pcommon.Map, 50)
	for i := range attrs {
		attrs[i] = pcommon.NewMap()
		attrs[i].PutStr("reg", fmt.Sprint(2*i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("value")
		m.SetUnit("W")
		dps := m.SetEmptyGauge().DataPoints()
		dps.EnsureCapacity(len(attrs))
		for j := range attrs {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(pcommon.Timestamp(i))
			dp.SetDoubleValue(float64(i + j))
			attrs[j].CopyTo(dp.Attributes())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*50), "ns/reading")
}

func TestPollTimestampsStrictlyIncreaseAtMillisecondResolution(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("x", "1", "", KindGauge, nil)
	var last pcommon.Timestamp
	at := t0
	for i := range 5 {
		p := r.Begin(at)
		p.Record(s, time.Time{}, float64(i))
		md, _ := p.End(at.Add(200*time.Microsecond), poll.BreakerClosed) // five polls within one millisecond
		_, _, ms, _ := metricsByName(t, md)
		up := ms[MetricUp].Gauge().DataPoints().At(0).Timestamp()
		x := ms["x"].Gauge().DataPoints().At(0).Timestamp()
		assert.Equal(t, up, x, "readings without their own time share the poll's timestamp")
		if i > 0 {
			assert.GreaterOrEqual(t, up.AsTime().Truncate(time.Millisecond).Sub(last.AsTime().Truncate(time.Millisecond)), time.Millisecond,
				"poll %d lands on a later millisecond than poll %d", i, i-1)
		}
		last = up
		at = at.Add(100 * time.Microsecond)
	}
	md := r.Skipped(t0, poll.BreakerOpen)
	_, _, ms, _ := metricsByName(t, md)
	assert.Greater(t, ms[MetricUp].Gauge().DataPoints().At(0).Timestamp(), last, "a skipped poll too")
}

// BenchmarkPollDistinctMetrics is one poll in the shape of the footprint's 50-device workload (b): 50
// uint16 readings, each its own metric without attributes, read in one request, at the default sample
// ratio: pdata builds a metric, a gauge and a point for each (six objects).
func BenchmarkPollDistinctMetrics(b *testing.B) {
	r := newTestRecorder(0.01)
	series := make([]*Series, 50)
	for i := range series {
		series[i] = r.Series(fmt.Sprintf("bench.register%02d", i), "", "", KindGauge, nil)
	}
	benchmarkPoll(b, r, series, func(p *Poll, s *Series, v int) { p.RecordInt(s, time.Time{}, int64(v)) })
}
