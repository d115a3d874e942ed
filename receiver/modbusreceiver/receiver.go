package modbusreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

// modbusReceiver polls every configured device; the metrics and traces pipelines share it.
type modbusReceiver struct {
	cfg    *Config
	set    receiver.Settings
	clock  poll.Clock
	seed   uint64
	logger *zap.Logger

	mu      sync.Mutex
	metrics consumer.Metrics
	traces  consumer.Traces

	conns   []*conn
	sched   *poll.Scheduler
	pollers []*devicePoller
	runners []*device.Runner
	cancel  context.CancelFunc
	stopped bool
}

func newReceiver(cfg *Config, set receiver.Settings) (*modbusReceiver, error) {
	return &modbusReceiver{cfg: cfg, set: set, clock: poll.RealClock{}, seed: uint64(time.Now().UnixNano()), logger: set.Logger}, nil
}

func (r *modbusReceiver) setMetrics(next consumer.Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics = next
}

func (r *modbusReceiver) setTraces(next consumer.Traces) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.traces = next
}

// Start builds the connections and device pollers and starts their schedules. It never touches the
// network: connections open on the first poll, and unreachable devices are retried on their schedule.
func (r *modbusReceiver) Start(ctx context.Context, _ component.Host) error {
	conns, err := r.cfg.resolve()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.sched != nil {
		return nil
	}
	r.build(conns)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.sched.Start(runCtx)
	return nil
}

func (r *modbusReceiver) build(conns []connSpec) {
	r.sched = poll.NewScheduler(r.clock, r.seed)
	start := r.clock.Now()
	for ci := range conns {
		cs := &conns[ci]
		c := newConn(cs, r.clock, r.logger)
		r.conns = append(r.conns, c)
		for di := range cs.devices {
			ds := &cs.devices[di]
			rec := device.NewRecorder(ds.identity, device.RecorderSettings{
				Scope:   device.Scope{Name: metadata.ScopeName, Version: r.set.BuildInfo.Version},
				Health:  r.cfg.Metrics,
				Traces:  r.cfg.Traces,
				Service: r.set.ID.String(),
				Start:   start,
			})
			p := newDevicePoller(ds, c, rec, r.clock)
			runner := device.NewRunner(rec, p, r.cfg.Breaker, r.clock, r.logger, r.emit)
			r.pollers = append(r.pollers, p)
			r.runners = append(r.runners, runner)
			r.sched.Add(runner.Job(ds.poll, c.link))
		}
	}
}

// emit hands one poll's data to the pipelines.
func (r *modbusReceiver) emit(ctx context.Context, md pmetric.Metrics, td ptrace.Traces) {
	r.mu.Lock()
	metrics, traces := r.metrics, r.traces
	r.mu.Unlock()
	if metrics != nil && md.ResourceMetrics().Len() > 0 {
		if err := metrics.ConsumeMetrics(ctx, md); err != nil {
			r.logger.Debug("Metrics of a poll were refused", zap.Error(err))
		}
	}
	if traces != nil && td.ResourceSpans().Len() > 0 {
		if err := traces.ConsumeTraces(ctx, td); err != nil {
			r.logger.Debug("Trace of a poll was refused", zap.Error(err))
		}
	}
}

// Shutdown stops every schedule, waits for polls in progress and closes the connections. Safe
// without Start and more than once.
func (r *modbusReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	sched, cancel := r.sched, r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if sched != nil {
			sched.Stop() // a request in flight ends within its timeout
		}
		for _, c := range r.conns {
			c.close()
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rebuildRunners returns runners of the built pollers with another emitter (benchmarks).
func (r *modbusReceiver) rebuildRunners(emit device.Emitter) []*device.Runner {
	out := make([]*device.Runner, len(r.pollers))
	for i, p := range r.pollers {
		out[i] = device.NewRunner(p.rec, p, r.cfg.Breaker, r.clock, r.logger, emit)
	}
	return out
}
