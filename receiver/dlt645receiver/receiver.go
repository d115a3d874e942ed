package dlt645receiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// dlt645Receiver polls every configured meter; the metrics and traces pipelines share it.
type dlt645Receiver struct {
	cfg    *Config
	set    receiver.Settings
	clock  poll.Clock
	seed   uint64
	logger *zap.Logger

	*device.Consumers // the metrics and traces pipelines sharing this receiver

	mu      sync.Mutex
	buses   []*bus
	meters  []*meterPoller
	runners []*device.Runner
	sched   *poll.Scheduler
	cancel  context.CancelFunc
	stopped bool
}

func newReceiver(cfg *Config, set receiver.Settings) *dlt645Receiver {
	return &dlt645Receiver{
		cfg: cfg, set: set, clock: poll.RealClock{}, seed: uint64(time.Now().UnixNano()), logger: set.Logger,
		Consumers: device.NewConsumers(set.Logger),
	}
}

// Start builds the buses and meter pollers and starts their schedules. It never touches a line:
// ports and connections open on the first poll, and unreachable meters are retried on their
// schedule.
func (r *dlt645Receiver) Start(ctx context.Context, _ component.Host) error {
	specs, err := r.cfg.resolve()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.sched != nil {
		return nil
	}
	r.build(specs)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.sched.Start(runCtx)
	return nil
}

func (r *dlt645Receiver) build(specs []busSpec) {
	r.sched = poll.NewScheduler(r.clock, r.seed)
	start := r.clock.Now()
	for bi := range specs {
		bs := &specs[bi]
		b := newBus(bs, r.clock, r.logger)
		r.buses = append(r.buses, b)
		for mi := range bs.meters {
			ms := &bs.meters[mi]
			rec := device.NewRecorder(ms.identity, device.RecorderSettings{
				Scope:   device.Scope{Name: metadata.ScopeName, Version: r.set.BuildInfo.Version},
				Health:  r.cfg.Metrics,
				Traces:  r.cfg.Traces,
				Service: r.set.ID.String(),
				Start:   start,
			})
			m := newMeterPoller(ms, b, rec, r.clock, r.logger)
			runner := device.NewRunner(rec, m, r.cfg.Breaker, r.clock, r.logger, r.Emit)
			r.meters = append(r.meters, m)
			r.runners = append(r.runners, runner)
			r.sched.Add(runner.Job(ms.poll, b.link))
		}
		if bs.timeSync > 0 {
			r.sched.Add(poll.Job{Interval: bs.timeSync, Link: b.link, Run: b.syncTime})
		}
	}
}

// Shutdown stops every schedule, waits for polls in progress and closes the lines. Safe without
// Start and more than once.
func (r *dlt645Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	sched, cancel := r.sched, r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return device.StopWithin(ctx, func() {
		if sched != nil {
			sched.Stop() // a request in flight ends within its timeout
		}
		for _, b := range r.buses {
			b.close()
		}
	})
}
