package device

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Target is one device's protocol work: Poll performs the requests of one poll and records readings,
// requests and errors on p. It must honour ctx and its own timeouts; it is never called concurrently.
type Target interface {
	Poll(ctx context.Context, p *Poll)
}

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
	clock   poll.Clock
	logger  *zap.Logger
	emit    Emitter
	state   deviceState
	// onChange, if set, hears each change of the device between answering and not (nil err: answers).
	onChange func(id string, err error)
}

type deviceState int

const (
	stateUnknown deviceState = iota
	stateUp
	stateDown
)

// NewRunner returns the runner of one device.
func NewRunner(rec *Recorder, target Target, breaker poll.BreakerConfig, clock poll.Clock, logger *zap.Logger, emit Emitter) *Runner {
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

// Job returns the scheduler job of this device.
func (r *Runner) Job(cfg PollConfig, link *poll.Link) poll.Job {
	return poll.Job{Interval: cfg.Interval, Jitter: cfg.Jitter, Link: link, Run: r.RunOnce}
}

// RunOnce performs one scheduled poll: skipped while the breaker is open, otherwise the target polls
// and the outcome feeds the breaker. Logs only state changes. Calls must not overlap: the device's
// link is released as soon as the target returns (poll.ReleaseLink), before the poll is emitted, so
// a second caller of the same Runner needs its own lock.
func (r *Runner) RunOnce(ctx context.Context) {
	now := r.clock.Now()
	if !r.breaker.Allow(now) {
		r.emit(ctx, r.rec.Skipped(now, r.breaker.State()), ptrace.NewTraces())
		return
	}
	p := r.rec.Begin(now)
	r.target.Poll(ctx, p)
	poll.ReleaseLink(ctx) // the bus is free: building and emitting the data needs no link
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
		r.state = stateUp
	} else {
		if r.state != stateDown {
			r.logger.Warn("Device did not answer", zap.Error(p.Err()))
			if r.onChange != nil {
				r.onChange(r.rec.identity.ID, p.Err())
			}
		}
		r.state = stateDown
		if r.breaker.Failure(end) {
			r.logger.Warn("Circuit breaker opened: polls paused", zap.Duration("retry_in", r.breaker.Backoff()), zap.Time("retry_at", end.Add(r.breaker.Backoff()).Truncate(time.Millisecond)))
		}
	}
	md, td := p.End(end, r.breaker.State())
	r.emit(ctx, md, td)
}
