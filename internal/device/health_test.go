package device

import (
	"context"
	"errors"
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

// scriptedTarget makes two requests a poll; the test changes what the next poll does.
type scriptedTarget struct {
	retry     bool // the first request is retried once
	exception bool // the second request gets a protocol exception (an answer)
	timeout   bool // both requests time out
}

func (s *scriptedTarget) Poll(_ context.Context, p *Poll) {
	q := p.StartRequest("read-1")
	if s.retry {
		q.Retry()
	}
	switch {
	case s.timeout:
		q.End(NewError(ErrTimeout, errors.New("no answer")))
	default:
		q.End(nil)
	}
	q = p.StartRequest("read-2")
	switch {
	case s.timeout:
		q.End(NewError(ErrTimeout, errors.New("no answer")))
	case s.exception:
		q.End(NewError(ErrException, errors.New("illegal data address")))
	default:
		q.End(nil)
	}
}

// healthRun polls a device every second on a manual clock and notes, for each health metric, the
// seconds (since t0) of the polls that carried it.
type healthRun struct {
	t      *testing.T
	clock  *clock.Manual
	runner *Runner
	rec    *Recorder
	target *scriptedTarget
	at     map[string][]int
	last   pmetric.Metrics
	done   int // the last second polled
}

func newHealthRun(t *testing.T, interval time.Duration) *healthRun {
	h := &healthRun{t: t, clock: clock.NewManual(t0), target: &scriptedTarget{}, at: map[string][]int{}, done: -1}
	h.rec = NewRecorder(testIdentity(), RecorderSettings{Health: AllHealthMetrics(), Start: t0, HealthInterval: interval})
	emit := func(_ context.Context, md pmetric.Metrics, _ ptrace.Traces) {
		h.last = md
		sec := int(h.clock.Now().Sub(t0) / time.Second)
		ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics() // the device's resource
		for i := 0; i < ms.Len(); i++ {
			h.at[ms.At(i).Name()] = append(h.at[ms.At(i).Name()], sec)
		}
	}
	h.runner = NewRunner(h.rec, h.target,
		poll.BreakerConfig{FailureThreshold: 2, InitialBackoff: 10 * time.Second, MaxBackoff: time.Minute},
		h.clock, zap.NewNop(), emit)
	return h
}

// pollUntil polls at every second after the last polled, up to and including second end.
func (h *healthRun) pollUntil(end int) {
	for s := h.done + 1; s <= end; s++ {
		h.clock.Advance(t0.Add(time.Duration(s) * time.Second).Sub(h.clock.Now()))
		h.runner.RunOnce(context.Background())
		h.done = s
	}
}

func seconds(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// Over three minutes of 1 s polls, iiot.device.up and the duration go out at every poll; the breaker
// state, the requests and the errors once a minute, and at once at the poll where they leave their
// constant or straight line.
func TestHealthSeriesSentOnChangeElseEveryInterval(t *testing.T) {
	h := newHealthRun(t, time.Minute)
	h.pollUntil(29)
	h.target.retry = true // one retry: 3 requests at 30, back to 2 at 31
	h.pollUntil(30)
	h.target.retry = false
	h.pollUntil(44)
	h.target.exception = true // the first exception ever: a new poll.errors point
	h.pollUntil(45)
	h.target.exception = false
	h.pollUntil(88)
	h.target.timeout = true // 89 fails (errors), 90 fails and opens the breaker
	h.pollUntil(90)
	h.target.timeout = false
	h.pollUntil(180)

	// 91…99 are skipped by the open breaker (no requests, no duration); 100 is the half-open poll, which
	// succeeds and closes the breaker.
	polled := append(seconds(0, 90), seconds(100, 180)...)
	assert.Equal(t, seconds(0, 180), h.at[MetricUp], "up: every poll, skipped ones included")
	assert.Equal(t, polled, h.at[MetricPollDuration], "duration: every poll that ran")
	assert.Equal(t, []int{0, 60, 90, 100, 120, 180}, h.at[MetricBreakerState],
		"breaker: when it opens (90) and closes (100), else once a minute")
	assert.Equal(t, []int{0, 30, 31, 60, 91, 100, 120, 180}, h.at[MetricRequests],
		"requests: off the line of 2 a poll (the retry at 30, back at 31; none while skipped from 91, 2 again at 100), else once a minute")
	assert.Equal(t, []int{45, 60, 89, 90, 120, 180}, h.at[MetricPollErrors],
		"errors: none before 45; when they increase (45, the timeouts at 89 and 90), else once a minute")
}

// The points of iiot.device.poll.errors go out one by one: an increase of one error type does not
// resend the others, a due poll sends them all.
func TestHealthErrorPointsSentWhenTheyChange(t *testing.T) {
	h := newHealthRun(t, time.Minute)
	h.target.exception = true
	h.pollUntil(10)
	h.target.exception = false
	h.target.timeout = true
	h.pollUntil(11) // one timeout poll: the breaker stays closed (threshold 2)
	h.target.timeout = false
	h.pollUntil(12)
	_, _, ms, _ := metricsByName(t, h.last)
	assert.NotContains(t, ms, MetricPollErrors, "nothing increased at 12")
	h.target.timeout = true
	h.pollUntil(13) // timeouts increase, exceptions do not
	_, _, ms, _ = metricsByName(t, h.last)
	dps := ms[MetricPollErrors].Sum().DataPoints()
	require.Equal(t, 1, dps.Len())
	assert.Equal(t, "timeout", dps.At(0).Attributes().AsRaw()[AttrErrorType])
	assert.Equal(t, int64(4), dps.At(0).IntValue(), "2 timeouts at 11 and 2 at 13")
	h.target.timeout = false
	h.pollUntil(60)
	_, _, ms, _ = metricsByName(t, h.last)
	assert.Equal(t, 2, ms[MetricPollErrors].Sum().DataPoints().Len(), "a due poll sends every point")
}

// A health interval of 0 (poll.health_interval: 0) sends every health series at every poll, as does a
// poll interval at least as long as the health interval, jitter included.
func TestHealthIntervalZeroOrLongPollsSendEveryPoll(t *testing.T) {
	h := newHealthRun(t, 0)
	h.pollUntil(10)
	for _, name := range []string{MetricRequests, MetricBreakerState} {
		assert.Equal(t, seconds(0, 10), h.at[name], name)
	}

	r := NewRecorder(testIdentity(), RecorderSettings{Health: AllHealthMetrics(), Start: t0, HealthInterval: time.Minute})
	at := t0
	for i, gap := range []time.Duration{0, 60 * time.Second, 57 * time.Second, 63 * time.Second, 58 * time.Second} {
		at = at.Add(gap)
		p := r.Begin(at)
		p.StartRequestAt("read", at).EndAt(nil, at)
		md, _ := p.End(at.Add(time.Millisecond), poll.BreakerClosed)
		_, _, ms, _ := metricsByName(t, md)
		assert.Contains(t, ms, MetricRequests, "poll %d, %s after the previous", i, gap)
		assert.Contains(t, ms, MetricBreakerState, "poll %d", i)
	}
}

// After a resource attribute changed, the next poll sends every health series (under the new resource),
// and the stale markers under the old resource cover them all.
func TestHealthAfterResourceChangeSendsAll(t *testing.T) {
	h := newHealthRun(t, time.Minute)
	h.pollUntil(5)
	_, _, ms, _ := metricsByName(t, h.last)
	assert.NotContains(t, ms, MetricRequests)
	h.rec.SetResourceAttribute("device.serial_number", "SN-2")
	h.pollUntil(6)
	require.Equal(t, 2, h.last.ResourceMetrics().Len(), "the new resource and the old one's stale markers")
	for i := 0; i < 2; i++ {
		names := map[string]bool{}
		sm := h.last.ResourceMetrics().At(i).ScopeMetrics().At(0)
		for j := 0; j < sm.Metrics().Len(); j++ {
			names[sm.Metrics().At(j).Name()] = true
		}
		for _, name := range []string{MetricUp, MetricPollDuration, MetricRequests, MetricBreakerState} {
			assert.True(t, names[name], "resource %d: %s", i, name)
		}
	}
	h.pollUntil(7)
	_, _, ms, _ = metricsByName(t, h.last)
	assert.NotContains(t, ms, MetricRequests, "then back to once a minute")
	assert.Equal(t, []int{0, 6}, h.at[MetricBreakerState])
}

// A receiver with health series of its own (OPC UA) asks the poll whether they are due.
func TestPollHealthDue(t *testing.T) {
	r := NewRecorder(testIdentity(), RecorderSettings{Health: AllHealthMetrics(), Start: t0, HealthInterval: time.Minute})
	var due []int
	for s := 0; s <= 120; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		if s == 30 {
			r.SetResourceAttribute("fw", "2")
		}
		p := r.Begin(at)
		if p.HealthDue() {
			due = append(due, s)
		}
		p.End(at, poll.BreakerClosed)
	}
	assert.Equal(t, []int{0, 30, 90}, due, "first poll, resource change, then a minute after the last poll that sent all")
}
