package device

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Target is one device's protocol work: Poll performs the requests of one poll and records readings,
// requests and errors on p. It runs holding the device's link (its connection or bus). It must honour
// ctx and its own timeouts; it is never called concurrently.
type Target interface {
	Poll(ctx context.Context, p *Poll)
}

// Finisher is a Target with a record phase: Finish runs after Poll once the link is released, and
// records on p the readings of what Poll fetched (decoding, scaling, staleness), so that work does not
// keep the bus idle. A Target that records while it reads needs none.
type Finisher interface {
	Finish(p *Poll)
}

// Prober is a Target that can tell cheaply whether its device can be reached (a TCP dial of the
// endpoint, no protocol request). While the breaker is open after connection failures the runner
// probes at every scheduled poll, and once a probe that had failed succeeds (the server restarted,
// the gateway came back) it lets the next poll through at once instead of waiting out the backoff.
// Probe honours ctx and its own timeout; it returns ErrNoProbe when the transport has none (a serial
// line).
type Prober interface {
	Probe(ctx context.Context) error
}

// WithProbe returns a Target that polls with t and probes with probe.
func WithProbe(t Target, probe func(ctx context.Context) error) Target {
	return probeTarget{Target: t, probe: probe}
}

type probeTarget struct {
	Target
	probe func(ctx context.Context) error
}

func (t probeTarget) Probe(ctx context.Context) error { return t.probe(ctx) }

// TargetFunc adapts a function to Target.
type TargetFunc func(ctx context.Context, p *Poll)

func (f TargetFunc) Poll(ctx context.Context, p *Poll) { f(ctx, p) }

// Emitter receives what a poll produced. td is empty when the poll's trace was not sampled.
type Emitter func(ctx context.Context, md pmetric.Metrics, td ptrace.Traces)

// Runner polls one device behind its circuit breaker and emits each poll.
type Runner struct {
	rec     *Recorder
	target  Target
	breaker *poll.Breaker
	clock   clock.Clock
	logger  *zap.Logger
	emit    Emitter
	state   deviceState
	// lastErr is the type of the last failed poll's error; probeFailed: a probe failed since the
	// breaker last opened (only then does a successful probe mean the device came back).
	lastErr     ErrorType
	probeFailed bool
	// shortcuts: polls let through by a probe since the device last answered. A server whose port
	// opens before it serves sessions fails the first of them; a few more follow at the next intervals.
	shortcuts int
	// onChange, if set, hears each change of the device between answering and not (nil err: answers).
	onChange func(id string, err error)

	// Between the I/O phase and the record phase of one poll: the poll and its target, or, when the
	// breaker skipped it, skipped (the time it was due).
	pending       *Poll
	pendingTarget Target
	skipped       time.Time
}

type deviceState int

const (
	stateUnknown deviceState = iota
	stateUp
	stateDown
)

// NewRunner returns the runner of one device.
func NewRunner(rec *Recorder, target Target, breaker poll.BreakerConfig, clock clock.Clock, logger *zap.Logger, emit Emitter) *Runner {
	return &Runner{
		rec:     rec,
		target:  target,
		breaker: poll.NewBreaker(breaker),
		clock:   clock,
		logger:  logger.With(zap.String(AttrDeviceID, rec.identity.ID), zap.String(AttrDeviceAddress, rec.identity.Address)),
		emit:    emit,
	}
}

// Breaker returns the device's breaker (read it only from the polling goroutine or after Stop).
func (r *Runner) Breaker() *poll.Breaker { return r.breaker }

// Job returns the scheduler job of this device: the I/O phase runs on link, the record phase after
// the scheduler has released it.
func (r *Runner) Job(cfg PollConfig, link *poll.Link) poll.Job {
	return poll.Job{Interval: cfg.Interval, Jitter: cfg.Jitter, Link: link, Run: r.io, Finish: r.finish}
}

// RunOnce performs one poll, both phases, with the device's target (callers that hold no link, or
// hold it around both phases: benchmarks, tests).
func (r *Runner) RunOnce(ctx context.Context) { r.Run(ctx, r.target) }

// Run performs one poll with t in place of the device's target (a source that polls for different
// reasons, e.g. a subscription's notification), behind the same breaker. Calls must not overlap.
func (r *Runner) Run(ctx context.Context, t Target) {
	r.start(ctx, t)
	r.finish(ctx)
}

func (r *Runner) io(ctx context.Context) { r.start(ctx, r.target) }

// start is the I/O phase of a scheduled poll: skipped while the breaker is open (unless a probe finds
// the device back), otherwise the target makes its requests.
func (r *Runner) start(ctx context.Context, t Target) {
	now := r.clock.Now()
	r.pending, r.pendingTarget, r.skipped = nil, nil, time.Time{}
	if !r.breaker.Allow(now) {
		if !r.probe(ctx) {
			r.skipped = now
			return
		}
		r.breaker.Reachable()
		r.logger.Info("Device reachable again: polling it now instead of waiting out the breaker's backoff")
	}
	p := r.rec.Begin(now)
	t.Poll(ctx, p)
	r.pending, r.pendingTarget = p, t
}

// finish is the record phase, with the link released: the target records its readings, the outcome
// feeds the breaker, and the poll is emitted. Logs only state changes.
func (r *Runner) finish(ctx context.Context) {
	p, t := r.pending, r.pendingTarget
	r.pending, r.pendingTarget = nil, nil
	if p == nil {
		if !r.skipped.IsZero() {
			r.emit(ctx, r.rec.Skipped(r.skipped, r.breaker.State()), ptrace.NewTraces())
			r.skipped = time.Time{}
		}
		return
	}
	if f, ok := t.(Finisher); ok {
		f.Finish(p)
	}
	if ctx.Err() != nil && !p.Answered() {
		return // shutting down: a poll cut short says nothing about the device
	}
	end := r.clock.Now()
	if p.Answered() {
		if r.breaker.Success() {
			r.logger.Info("Circuit breaker closed: device answers again")
		}
		if r.state == stateDown {
			r.logger.Info("Device is back")
		}
		if r.state != stateUp && r.onChange != nil {
			r.onChange(r.rec.identity.ID, nil)
		}
		r.state, r.lastErr, r.shortcuts = stateUp, "", 0
	} else {
		r.lastErr = Classify(p.Err())
		if r.state != stateDown {
			r.logger.Warn("Device unavailable: "+Reason(p.Err()), zap.String(AttrErrorType, string(r.lastErr)), zap.Error(p.Err()))
			if r.onChange != nil {
				r.onChange(r.rec.identity.ID, p.Err())
			}
		}
		r.state = stateDown
		if r.breaker.Failure(end) {
			r.probeFailed = false
			r.logger.Warn("Circuit breaker opened: polls paused", zap.Duration("retry_in", r.breaker.Backoff()), zap.Time("retry_at", end.Add(r.breaker.Backoff()).Truncate(time.Millisecond)))
		}
	}
	md, td := p.End(end, r.breaker.State())
	r.emit(ctx, md, td)
}

// maxShortcuts bounds the polls probes let through while the device keeps failing to connect (a port
// that accepts connections while the server behind it is still starting, or refuses our login).
const maxShortcuts = 3

// probe tells whether an open breaker may let a poll through before its backoff has passed: the
// target can probe, the device was failing to connect (or its DTU had not dialled in), a probe since
// the breaker opened failed (the device was really gone) — or a poll let through this way failed, up
// to maxShortcuts — and this probe succeeds. A device that accepts connections but does not answer polls keeps the normal
// backoff, since its probes never fail.
func (r *Runner) probe(ctx context.Context) bool {
	pr, ok := r.target.(Prober)
	if !ok || (r.lastErr != ErrConnection && r.lastErr != ErrNotConnected) || ctx.Err() != nil {
		return false
	}
	if err := pr.Probe(ctx); err != nil {
		r.probeFailed = r.probeFailed || !errors.Is(err, ErrNoProbe)
		return false
	}
	// A poll that failed with not_connected saw the device gone already (its DTU had not dialled in):
	// a probe that finds it connected is news enough.
	if !r.probeFailed && r.lastErr != ErrNotConnected && (r.shortcuts == 0 || r.shortcuts >= maxShortcuts) {
		return false
	}
	r.probeFailed = false
	r.shortcuts++
	return true
}

// ProbeTCP is the probe of a device behind a TCP endpoint (host:port): a dial, closed at once, with
// no protocol request.
func ProbeTCP(ctx context.Context, address string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return err
	}
	return c.Close()
}

// ProbePath is the probe of a device on a serial port: the port's device file exists (the port of an
// unplugged USB adapter is gone, and comes back when it is plugged in again).
func ProbePath(path string) error {
	_, err := os.Stat(path)
	return err
}
