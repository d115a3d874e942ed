package device

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Fleet is the lifecycle a polling receiver shares with the others: one recorder and runner per
// device, on a scheduler that Start starts and Shutdown stops (both safe in any order and more than
// once). It embeds the Consumers that the receiver's metrics and traces pipelines set.
type Fleet struct {
	*Consumers
	set      receiver.Settings
	scope    string
	settings Settings
	health   HealthMetrics
	clock    clock.Clock
	seed     uint64

	mu      sync.Mutex
	host    component.Host
	down    map[string]error // devices that did not answer their last poll, for the component status
	sched   *poll.Scheduler
	start   time.Time
	runners []*Runner
	closers []func()
	// the scheduled devices' polls, for gathering them (Consumers.SetGather)
	polls    int
	shortest time.Duration
	spread   time.Duration // the largest jitter of a scheduled device
	cancel   context.CancelFunc
	stopped  bool
}

// NewFleet returns the fleet of one receiver: scope is its instrumentation scope name, settings its
// top-level device settings (traces, breaker), health the health metrics its `metrics` key enables.
func NewFleet(set receiver.Settings, scope string, settings Settings, health HealthMetrics) *Fleet {
	return &Fleet{
		Consumers: NewConsumers(set),
		set:       set, scope: scope, settings: settings, health: health,
		clock: clock.Real{}, seed: uint64(time.Now().UnixNano()),
	}
}

// Logger is the receiver's logger.
func (f *Fleet) Logger() *zap.Logger { return f.set.Logger }

// Clock is the clock the fleet's devices run on.
func (f *Fleet) Clock() clock.Clock { return f.clock }

// SetClock sets the clock the fleet's devices run on (tests: a manual clock); call before Start.
func (f *Fleet) SetClock(c clock.Clock) { f.clock = c }

// Start builds the receiver's devices with build, which calls Recorder, Add, AddJob and OnShutdown,
// and starts their schedules. Building must not touch the network: connections open on the first
// poll, and unreachable devices are retried on their schedule. The component status on host follows
// the devices: a recoverable error while some do not answer, OK once all do.
func (f *Fleet) Start(ctx context.Context, host component.Host, build func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || f.sched != nil {
		return
	}
	f.host = host
	f.Build(build)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	f.sched.Start(runCtx)
}

// Build builds the devices without starting them (Start does both; benchmarks drive the runners).
func (f *Fleet) Build(build func()) {
	f.sched = poll.NewScheduler(f.clock, f.seed)
	f.start = f.clock.Now()
	f.polls, f.shortest, f.spread = 0, 0, 0
	build()
	f.SetGather(f.polls, gatherWindow(f.shortest, f.spread))
}

// gatherWindow is how long a batch of polls waits for the rest of its tick: the devices' jitter,
// and a tenth of the shortest interval for the polls' own time; at most half the shortest interval,
// so a batch is handed over before the next tick.
func gatherWindow(shortest, spread time.Duration) time.Duration {
	return min(spread+shortest/10, shortest/2)
}

// Recorder returns a new recorder for a device of the fleet.
func (f *Fleet) Recorder(id Identity) *Recorder {
	return NewRecorder(id, RecorderSettings{
		Scope:   Scope{Name: f.scope, Version: f.set.BuildInfo.Version},
		Health:  f.health,
		Traces:  f.settings.Traces,
		Service: f.set.ID.String(),
		Start:   f.start,

		HealthInterval: f.settings.Poll.HealthInterval,
	})
}

// Add schedules a device: target polls it every cfg.Interval on link, behind its own breaker.
func (f *Fleet) Add(rec *Recorder, target Target, cfg PollConfig, link *poll.Link) *Runner {
	runner := NewRunner(rec, target, f.settings.Breaker, f.clock, f.set.Logger, f.Emit)
	runner.onChange = f.deviceChanged
	f.runners = append(f.runners, runner)
	f.sched.Add(runner.Job(cfg, link))
	f.polls++
	if f.shortest == 0 || cfg.Interval < f.shortest {
		f.shortest = cfg.Interval
	}
	f.spread = max(f.spread, time.Duration(cfg.Jitter*float64(cfg.Interval)))
	return runner
}

// Runner returns the runner of a device the fleet does not schedule itself: a meter found at run
// time and polled by its finder's loop. Its state feeds the component status as a scheduled device's
// does, and it counts among the fleet's devices.
func (f *Fleet) Runner(rec *Recorder, target Target) *Runner {
	runner := NewRunner(rec, target, f.settings.Breaker, f.clock, f.set.Logger, f.Emit)
	runner.onChange = f.deviceChanged
	f.mu.Lock()
	f.runners = append(f.runners, runner)
	f.mu.Unlock()
	return runner
}

// AddJob schedules work that is not a device poll (e.g. a time sync broadcast on a bus).
func (f *Fleet) AddJob(j poll.Job) { f.sched.Add(j) }

// AddSource adds a device that is a source rather than a periodic poll (an OPC UA subscription): its
// loop runs on one goroutine from Start until Shutdown, owns the device's session and drives the
// returned runner itself (Runner.Run) on its ticks and its own events. The source reports its own
// component status (the state of its session), so the runner does not report to the fleet's. emit,
// if not nil, replaces Fleet.Emit (a source that adds its own metrics to each poll, then calls it).
func (f *Fleet) AddSource(rec *Recorder, target Target, cfg PollConfig, emit Emitter, loop func(ctx context.Context, r *Runner, t *poll.Ticker)) *Runner {
	if emit == nil {
		emit = f.Emit
	}
	runner := NewRunner(rec, target, f.settings.Breaker, f.clock, f.set.Logger, emit)
	f.runners = append(f.runners, runner)
	f.sched.AddLoop(poll.Loop{Interval: cfg.Interval, Jitter: cfg.Jitter, Run: func(ctx context.Context, t *poll.Ticker) {
		loop(ctx, runner, t)
	}})
	return runner
}

// OnShutdown registers what closes a connection or line once the schedules have stopped.
func (f *Fleet) OnShutdown(close func()) { f.closers = append(f.closers, close) }

// Runners returns the devices' runners in the order they were added.
func (f *Fleet) Runners() []*Runner {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runners)
}

// Scheduler returns the scheduler built by Start or Build.
func (f *Fleet) Scheduler() *poll.Scheduler { return f.sched }

// deviceChanged reports the component status when a device stops or starts answering: a recoverable
// error naming how many devices do not answer (and one of their errors), OK when all answer again.
func (f *Fleet) deviceChanged(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.host == nil || f.stopped {
		return
	}
	if f.down == nil {
		f.down = map[string]error{}
	}
	_, wasDown := f.down[id]
	if err != nil {
		f.down[id] = err
	} else {
		delete(f.down, id)
	}
	if len(f.down) == 0 {
		if wasDown {
			componentstatus.ReportStatus(f.host, componentstatus.NewEvent(componentstatus.StatusOK))
		}
		return
	}
	if err == nil {
		if !wasDown {
			return // a device answering for the first time changes nothing
		}
		// another device is still down: name the first by id
		ids := make([]string, 0, len(f.down))
		for d := range f.down {
			ids = append(ids, d)
		}
		id = slices.Min(ids)
		err = f.down[id]
	}
	componentstatus.ReportStatus(f.host, componentstatus.NewRecoverableErrorEvent(
		fmt.Errorf("%d of %d devices do not answer; %s: %w", len(f.down), len(f.runners), id, err)))
}

// Shutdown stops every schedule, waits for polls in progress (a request in flight ends within its
// timeout) and closes the connections, within ctx's deadline.
func (f *Fleet) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.stopped = true
	sched, cancel, closers := f.sched, f.cancel, f.closers
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return StopWithin(ctx, func() {
		if sched != nil {
			sched.Stop()
		}
		f.Flush(ctx) // the polls have stopped: the batch they were gathering goes now
		for _, c := range closers {
			c()
		}
	})
}
