package device

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// failing fails every poll with err.
type failing struct{ err error }

func (f failing) Poll(_ context.Context, p *Poll) { p.StartRequest("x").End(f.err) }

// The warning of a failed poll says what happened, from the error's type and cause.
func TestRunnerLogsWhatHappened(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, refused := net.DialTimeout("tcp", closed, time.Second)
	require.Error(t, refused)
	_, dnsErr := net.ResolveTCPAddr("tcp", "no-such-host.invalid:502")
	require.Error(t, dnsErr)

	for _, tc := range []struct {
		err  error
		want string
	}{
		{NewError(ErrConnection, fmt.Errorf("dial: %w", refused)), "Device unavailable: connection refused"},
		{NewError(ErrTimeout, context.DeadlineExceeded), "Device unavailable: no answer within the timeout"},
		{NewError(ErrConnection, dnsErr), "Device unavailable: host name not found"},
		{WithReason(NewError(ErrConnection, errors.New("connect: BadUserAccessDenied")), "access denied (BadUserAccessDenied)"), "Device unavailable: access denied (BadUserAccessDenied)"},
		{NewError(ErrChecksum, errors.New("cs")), "Device unavailable: corrupted replies (checksum)"},
		{NewError(ErrConnection, fmt.Errorf("tls: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}})), "Device unavailable: certificate rejected"},
		{NewError(ErrConnection, fmt.Errorf("remote error: %w", tls.AlertError(42))), "Device unavailable: TLS handshake refused by the device (tls: bad certificate)"},
		{NewError(ErrConnection, io.EOF), "Device unavailable: connection closed by the device"},
	} {
		core, logs := observer.New(zap.WarnLevel)
		run := NewRunner(newTestRecorder(0), failing{tc.err}, poll.BreakerConfig{}, clock.NewManual(t0), zap.New(core),
			func(context.Context, pmetric.Metrics, ptrace.Traces) {})
		run.RunOnce(context.Background())
		run.RunOnce(context.Background())
		require.Equal(t, 1, logs.Len(), "logged once: %v", tc.err)
		e := logs.All()[0]
		assert.Equal(t, tc.want, e.Message)
		assert.Equal(t, string(Classify(tc.err)), e.ContextMap()[AttrErrorType])
	}
}

// dialTarget is a device behind a TCP endpoint: a poll is one connection, the probe a dial.
type dialTarget struct {
	addr    string
	timeout bool // the endpoint accepts but the device does not answer polls
	probes  int
}

func (d *dialTarget) Poll(_ context.Context, p *Poll) {
	q := p.StartRequest("connect")
	c, err := net.DialTimeout("tcp", d.addr, time.Second)
	if err != nil {
		q.End(NewError(ErrConnection, err))
		return
	}
	_ = c.Close()
	if d.timeout {
		q.End(NewError(ErrTimeout, errors.New("no reply")))
		return
	}
	q.End(nil)
}

func (d *dialTarget) Probe(context.Context) error {
	d.probes++
	c, err := net.DialTimeout("tcp", d.addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// A device whose server restarts: while its breaker is open, each scheduled poll probes with a dial;
// the first probe that succeeds after one failed lets the poll through at once, long before the
// backoff (here 1 h) would have. A device that accepts connections but does not answer keeps the backoff.
func TestRunnerProbeEndsBackoffWhenTheServerIsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // the server is down

	clock := clock.NewManual(t0)
	core, logs := observer.New(zap.InfoLevel)
	target := &dialTarget{addr: addr}
	var last pmetric.Metrics
	run := NewRunner(newTestRecorder(0), target,
		poll.BreakerConfig{FailureThreshold: 2, InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		clock, zap.New(core), func(_ context.Context, md pmetric.Metrics, _ ptrace.Traces) { last = md })
	state := func() (up, breaker int64, polled bool) {
		_, _, ms, _ := metricsByName(t, last)
		_, polled = ms[MetricPollDuration]
		return ms[MetricUp].Gauge().DataPoints().At(0).IntValue(), ms[MetricBreakerState].Gauge().DataPoints().At(0).IntValue(), polled
	}
	ctx := context.Background()
	run.RunOnce(ctx)
	run.RunOnce(ctx)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())

	clock.Advance(10 * time.Second) // still down: the probe fails, the poll is skipped
	run.RunOnce(ctx)
	_, b, polled := state()
	assert.False(t, polled)
	assert.EqualValues(t, poll.BreakerOpen, b)
	assert.Equal(t, 1, target.probes)

	// The server comes back on the same port.
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	clock.Advance(10 * time.Second) // one interval later, 59 min before the backoff ends
	run.RunOnce(ctx)
	up, b, polled := state()
	assert.True(t, polled, "the probe reached the server: polled at once")
	assert.EqualValues(t, 1, up)
	assert.EqualValues(t, poll.BreakerClosed, b)
	assert.Contains(t, logs.FilterMessageSnippet("reachable again").All()[0].Message, "Device reachable again")

	// Now the endpoint accepts connections but the device behind it does not answer: the breaker opens
	// on timeouts, and the probes (which succeed) do not cut its backoff short.
	target.timeout, target.probes = true, 0
	run.RunOnce(ctx)
	run.RunOnce(ctx)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())
	for range 3 {
		clock.Advance(10 * time.Second)
		run.RunOnce(ctx)
		_, _, polled = state()
		assert.False(t, polled, "a device that times out waits out its backoff")
	}
	assert.Zero(t, target.probes, "no probe after timeouts: reaching the endpoint says nothing")
}

// A probe that succeeds from the start (the endpoint accepts, the device closes the connection) never
// cuts the backoff short: only a probe that failed and then succeeds shows the device came back.
func TestRunnerProbeNeedsAFailedProbeFirst(t *testing.T) {
	clock := clock.NewManual(t0)
	target := &probeOnly{}
	run := NewRunner(newTestRecorder(0), WithProbe(failing{NewError(ErrConnection, errors.New("reset"))}, target.probe),
		poll.BreakerConfig{FailureThreshold: 1, InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		clock, zap.NewNop(), func(context.Context, pmetric.Metrics, ptrace.Traces) {})
	ctx := context.Background()
	run.RunOnce(ctx)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())
	for range 3 {
		clock.Advance(10 * time.Second)
		run.RunOnce(ctx)
		assert.Equal(t, poll.BreakerOpen, run.Breaker().State())
	}
	assert.Equal(t, 3, target.n)
	target.err = ErrNoProbe // a transport without a probe: a "failure" that shows nothing
	clock.Advance(10 * time.Second)
	run.RunOnce(ctx)
	target.err = nil
	clock.Advance(10 * time.Second)
	run.RunOnce(ctx)
	assert.Equal(t, poll.BreakerOpen, run.Breaker().State())
}

// A device whose DTU had not dialled in: the failed poll already showed it gone, so the first probe
// that finds the DTU connected lets a poll through, without waiting out the backoff.
func TestRunnerProbeAfterNotConnected(t *testing.T) {
	clock := clock.NewManual(t0)
	target := &probeOnly{}
	polls := 0
	poller := TargetFunc(func(_ context.Context, p *Poll) {
		polls++
		p.StartRequest("x").End(NewError(ErrNotConnected, errors.New("DTU x not connected")))
	})
	run := NewRunner(newTestRecorder(0), WithProbe(poller, target.probe),
		poll.BreakerConfig{FailureThreshold: 1, InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		clock, zap.NewNop(), func(context.Context, pmetric.Metrics, ptrace.Traces) {})
	ctx := context.Background()
	run.RunOnce(ctx)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())
	clock.Advance(10 * time.Second)
	run.RunOnce(ctx) // the DTU registered meanwhile: the probe succeeds at once
	assert.Equal(t, 1, target.n)
	assert.Equal(t, 2, polls, "polled without waiting the hour")
}

type probeOnly struct {
	n   int
	err error
}

func (p *probeOnly) probe(context.Context) error { p.n++; return p.err }

// A resource attribute read from the device (a serial number) that changes: the next poll ends every
// series under the old value with a stale marker, once; the first value set before any poll ends nothing.
func TestResourceAttributeChangeEndsOldSeries(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("power", "kW", "", KindGauge, map[string]string{"phase": "A"})
	r.SetResourceAttribute("device.serial_number", "A1")
	poll := func(at time.Time) pmetric.Metrics {
		p := r.Begin(at)
		p.StartRequest("read").End(nil)
		p.Record(s, time.Time{}, 1.5)
		md, _ := p.End(at.Add(time.Millisecond), 0)
		return md
	}
	md := poll(t0)
	require.Equal(t, 1, md.ResourceMetrics().Len(), "nothing to end before the first poll")

	r.SetResourceAttribute("device.serial_number", "A1") // unchanged: nothing
	md = poll(t0.Add(time.Second))
	require.Equal(t, 1, md.ResourceMetrics().Len())

	r.SetResourceAttribute("device.serial_number", "B2")
	md = poll(t0.Add(2 * time.Second))
	require.Equal(t, 2, md.ResourceMetrics().Len())
	cur, old := md.ResourceMetrics().At(0), md.ResourceMetrics().At(1)
	sn, _ := cur.Resource().Attributes().Get("device.serial_number")
	assert.Equal(t, "B2", sn.Str())
	sn, _ = old.Resource().Attributes().Get("device.serial_number")
	assert.Equal(t, "A1", sn.Str())
	curMs, oldMs := cur.ScopeMetrics().At(0).Metrics(), old.ScopeMetrics().At(0).Metrics()
	require.Equal(t, curMs.Len(), oldMs.Len(), "every series of the device is ended under the old value")
	for i := 0; i < oldMs.Len(); i++ {
		m := oldMs.At(i)
		assert.Equal(t, curMs.At(i).Name(), m.Name())
		var dps pmetric.NumberDataPointSlice
		if m.Type() == pmetric.MetricTypeSum {
			dps = m.Sum().DataPoints()
		} else {
			dps = m.Gauge().DataPoints()
		}
		require.Positive(t, dps.Len(), m.Name())
		for j := 0; j < dps.Len(); j++ {
			assert.True(t, dps.At(j).Flags().NoRecordedValue(), m.Name())
		}
		if m.Name() == "power" {
			ph, _ := dps.At(0).Attributes().Get("phase")
			assert.Equal(t, "A", ph.Str())
		}
	}

	md = poll(t0.Add(3 * time.Second))
	assert.Equal(t, 1, md.ResourceMetrics().Len(), "ended once")
}

// A server whose port opens before it serves sessions: the first poll the probe lets through fails
// to connect; the next intervals try again (up to maxShortcuts polls), without waiting out the backoff.
func TestRunnerProbeRetriesAServerStillStarting(t *testing.T) {
	clock := clock.NewManual(t0)
	target := &startingServer{}
	run := NewRunner(newTestRecorder(0), target,
		poll.BreakerConfig{FailureThreshold: 1, InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		clock, zap.NewNop(), func(context.Context, pmetric.Metrics, ptrace.Traces) {})
	ctx := context.Background()
	target.down = true
	run.RunOnce(ctx)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())
	clock.Advance(10 * time.Second)
	run.RunOnce(ctx) // probe fails: still down
	assert.Zero(t, target.polls-1)

	target.down, target.refuse = false, 2 // the port is open, sessions fail twice more
	for range 3 {
		clock.Advance(10 * time.Second)
		run.RunOnce(ctx)
	}
	assert.Equal(t, 4, target.polls, "three polls at three intervals")
	assert.Equal(t, poll.BreakerClosed, run.Breaker().State(), "the third one got through")

	// A login that is refused for good: after maxShortcuts polls, the backoff again.
	target.refuse = 1000
	run.RunOnce(ctx)
	require.Equal(t, poll.BreakerOpen, run.Breaker().State())
	target.down = true
	clock.Advance(10 * time.Second)
	run.RunOnce(ctx)
	target.down = false
	before := target.polls
	for range 10 {
		clock.Advance(10 * time.Second)
		run.RunOnce(ctx)
	}
	assert.Equal(t, maxShortcuts, target.polls-before, "bounded")
}

// startingServer fails to connect while down (probes fail) and while refuse > 0 (probes succeed).
type startingServer struct {
	down   bool
	refuse int
	polls  int
}

func (s *startingServer) Poll(_ context.Context, p *Poll) {
	s.polls++
	q := p.StartRequest("connect")
	if s.down || s.refuse > 0 {
		s.refuse--
		q.End(NewError(ErrConnection, errors.New("refused")))
		return
	}
	q.End(nil)
}

func (s *startingServer) Probe(context.Context) error {
	if s.down {
		return errors.New("connection refused")
	}
	return nil
}
