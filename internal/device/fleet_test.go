package device

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// A fleet polls what build added, emits to the pipelines set on it, and on Shutdown stops the
// schedules before it closes the connections; Start after Shutdown, or twice, does nothing.
func TestFleetLifecycle(t *testing.T) {
	settings := NewDefaultSettings()
	f := NewFleet(receivertest.NewNopSettings(component.MustNewType("test")), "test/scope", settings, AllHealthMetrics())
	require.NoError(t, f.Shutdown(context.Background()), "shutdown without start")

	f = NewFleet(receivertest.NewNopSettings(component.MustNewType("test")), "test/scope", settings, AllHealthMetrics())
	sink := new(consumertest.MetricsSink)
	f.SetMetrics(sink)
	var polls, builds atomic.Int32
	var pollsAtClose int32
	closed := 0
	build := func() {
		builds.Add(1)
		rec := f.Recorder(Identity{ID: "d1", Protocol: "test", Address: "x"})
		s := rec.Series("v", "1", "", KindGauge, nil)
		link := poll.NewLink(f.Clock(), 1, 0)
		f.Add(rec, TargetFunc(func(_ context.Context, p *Poll) {
			polls.Add(1)
			q := p.StartRequest("read")
			q.End(nil)
			p.Record(s, time.Time{}, 1)
		}), PollConfig{Interval: 10 * time.Millisecond}, link)
		f.OnShutdown(func() { closed++; pollsAtClose = polls.Load() })
	}
	f.Start(context.Background(), componenttest.NewNopHost(), build)
	f.Start(context.Background(), componenttest.NewNopHost(), build)
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 3 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int32(1), builds.Load(), "a second Start builds nothing")
	require.Len(t, f.Runners(), 1)
	md := sink.AllMetrics()[0]
	assert.Equal(t, "test/scope", md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Name())

	require.NoError(t, f.Shutdown(context.Background()))
	require.NoError(t, f.Shutdown(context.Background()))
	assert.GreaterOrEqual(t, closed, 1, "the connections are closed")
	assert.Equal(t, pollsAtClose, polls.Load(), "no poll after the connections closed")
	f.Start(context.Background(), componenttest.NewNopHost(), build)
	assert.Equal(t, int32(1), builds.Load(), "Start after Shutdown does nothing")
}

// statusHost records the component status events reported to it.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

// The component status follows the devices: a recoverable error naming the silent device while one
// does not answer, OK once every device answers again; nothing is reported while nothing changes.
func TestFleetReportsComponentStatus(t *testing.T) {
	f := NewFleet(receivertest.NewNopSettings(component.MustNewType("test")), "test/scope", NewDefaultSettings(), AllHealthMetrics())
	host := &statusHost{Host: componenttest.NewNopHost()}
	var silent atomic.Bool
	silent.Store(true)
	f.Start(context.Background(), host, func() {
		for _, id := range []string{"good", "flaky"} {
			rec := f.Recorder(Identity{ID: id, Protocol: "test", Address: id})
			f.Add(rec, TargetFunc(func(_ context.Context, p *Poll) {
				if id == "flaky" && silent.Load() {
					p.Fail(NewError(ErrTimeout, errors.New("no answer")))
					return
				}
				p.StartRequest("read").End(nil)
			}), PollConfig{Interval: 10 * time.Millisecond}, nil)
		}
	})
	defer func() { require.NoError(t, f.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool {
		ev := host.last()
		return ev != nil && ev.Status() == componentstatus.StatusRecoverableError
	}, 5*time.Second, 5*time.Millisecond)
	assert.EqualError(t, host.last().Err(), "1 of 2 devices do not answer; flaky: timeout: no answer")
	silent.Store(false)
	require.Eventually(t, func() bool { return host.last().Status() == componentstatus.StatusOK }, 5*time.Second, 5*time.Millisecond)
	host.mu.Lock()
	n := len(host.events)
	host.mu.Unlock()
	if !assert.Equal(t, 2, n, "one event per change") {
		for _, ev := range host.events {
			t.Log(ev.Status(), ev.Err())
		}
	}
}

// A device found at run time (Fleet.Runner, driven by its finder) reports its state to the component
// status as a scheduled one does, and counts among the fleet's devices.
func TestFleetRunnerReportsComponentStatus(t *testing.T) {
	f := NewFleet(receivertest.NewNopSettings(component.MustNewType("test")), "test/scope", NewDefaultSettings(), AllHealthMetrics())
	host := &statusHost{Host: componenttest.NewNopHost()}
	f.Start(context.Background(), host, func() {
		rec := f.Recorder(Identity{ID: "listed", Protocol: "test", Address: "listed"})
		f.Add(rec, TargetFunc(func(_ context.Context, p *Poll) { p.StartRequest("read").End(nil) }), PollConfig{Interval: time.Hour}, nil)
	})
	defer func() { require.NoError(t, f.Shutdown(context.Background())) }()
	var silent atomic.Bool
	silent.Store(true)
	found := TargetFunc(func(_ context.Context, p *Poll) {
		if silent.Load() {
			p.Fail(NewError(ErrTimeout, errors.New("no answer")))
			return
		}
		p.StartRequest("read").End(nil)
	})
	run := f.Runner(f.Recorder(Identity{ID: "meter-000000000201", Protocol: "test", Address: "201"}), found)
	require.Len(t, f.Runners(), 2)
	run.Run(context.Background(), found)
	ev := host.last()
	require.NotNil(t, ev)
	assert.Equal(t, componentstatus.StatusRecoverableError, ev.Status())
	assert.EqualError(t, ev.Err(), "1 of 2 devices do not answer; meter-000000000201: timeout: no answer")
	silent.Store(false)
	run.Run(context.Background(), found)
	assert.Equal(t, componentstatus.StatusOK, host.last().Status())
}

// The fleet gathers its scheduled devices' polls of a tick into one pipeline call (here two devices
// on their own links, on a manual clock: both polls of a tick in one call), and Shutdown hands over a
// batch still gathering: at the second tick one device's request hangs until the fleet stops (a poll
// cut short by the shutdown is not emitted), and the window is minutes of wall time.
func TestFleetGathersATickAndFlushesOnShutdown(t *testing.T) {
	clk := clock.NewManual(t0)
	f := NewFleet(receivertest.NewNopSettings(component.MustNewType("test")), "test/scope", NewDefaultSettings(), AllHealthMetrics())
	f.SetClock(clk)
	sink := new(consumertest.MetricsSink)
	f.SetMetrics(sink)
	var second, hanging atomic.Bool
	build := func() {
		for _, id := range []string{"d1", "d2"} {
			rec := f.Recorder(Identity{ID: id, Protocol: "test", Address: id})
			s := rec.Series("v", "1", "", KindGauge, nil)
			f.Add(rec, TargetFunc(func(ctx context.Context, p *Poll) {
				q := p.StartRequest("read")
				if id == "d2" && second.Load() {
					hanging.Store(true)
					<-ctx.Done()
					q.End(ctx.Err())
					return
				}
				q.End(nil)
				p.Record(s, time.Time{}, 1)
			}), PollConfig{Interval: time.Hour}, poll.NewLink(clk, 1, 0))
		}
	}
	f.Start(context.Background(), componenttest.NewNopHost(), build)
	require.Eventually(t, func() bool { return clk.Waiters() == 2 }, 5*time.Second, time.Millisecond)
	clk.Advance(time.Hour) // the first tick
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 2, sink.AllMetrics()[0].ResourceMetrics().Len(), "both polls in one call")

	require.Eventually(t, func() bool { return clk.Waiters() == 2 }, 5*time.Second, time.Millisecond)
	second.Store(true)
	clk.Advance(time.Hour) // the second tick: d1 answers, d2 hangs
	require.Eventually(t, func() bool { return hanging.Load() && clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	assert.Len(t, sink.AllMetrics(), 1, "d1's poll is gathering")
	require.NoError(t, f.Shutdown(context.Background()))
	require.Len(t, sink.AllMetrics(), 2, "Shutdown hands over the batch")
	last := sink.AllMetrics()[1].ResourceMetrics()
	require.Equal(t, 1, last.Len())
	id, _ := last.At(0).Resource().Attributes().Get(AttrDeviceID)
	assert.Equal(t, "d1", id.Str())
}
