package modbusreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
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

	*device.Consumers // the metrics and traces pipelines sharing this receiver

	mu      sync.Mutex
	conns   []*conn
	sched   *poll.Scheduler
	pollers []*devicePoller
	runners []*device.Runner
	cancel  context.CancelFunc
	stopped bool
}

func newReceiver(cfg *Config, set receiver.Settings) (*modbusReceiver, error) {
	return &modbusReceiver{
		cfg: cfg, set: set, clock: poll.RealClock{}, seed: uint64(time.Now().UnixNano()), logger: set.Logger,
		Consumers: device.NewConsumers(set.Logger),
	}, nil
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
			runner := device.NewRunner(rec, p, r.cfg.Breaker, r.clock, r.logger, r.Emit)
			r.pollers = append(r.pollers, p)
			r.runners = append(r.runners, runner)
			r.sched.Add(runner.Job(ds.poll, c.link))
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
	return device.StopWithin(ctx, func() {
		if sched != nil {
			sched.Stop() // a request in flight ends within its timeout
		}
		for _, c := range r.conns {
			c.close()
		}
	})
}

// rebuildRunners returns runners of the built pollers with another emitter (benchmarks).
func (r *modbusReceiver) rebuildRunners(emit device.Emitter) []*device.Runner {
	out := make([]*device.Runner, len(r.pollers))
	for i, p := range r.pollers {
		out[i] = device.NewRunner(p.rec, p, r.cfg.Breaker, r.clock, r.logger, emit)
	}
	return out
}
