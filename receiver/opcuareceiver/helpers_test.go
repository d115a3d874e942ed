package opcuareceiver

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/sharedcomponent"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

// freePort returns a loopback TCP port that was free a moment ago (the gopcua server does not report
// the port it bound, so tests pick one first).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSim starts the simulator on a free port and stops it when the test ends.
func startSim(t testing.TB, cfg sim.Config) *sim.Server {
	t.Helper()
	if cfg.Port == 0 {
		cfg.Port = freePort(t)
	}
	s, err := sim.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// testConfig polls fast, keeps every trace and probes a broken server quickly.
func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig()
	cfg.Endpoint = endpoint
	cfg.ID = "press-7"
	cfg.Poll.Interval = 200 * time.Millisecond
	cfg.Poll.Timeout = 200 * time.Millisecond
	cfg.Poll.Jitter = 0
	cfg.Poll.Retries = 1
	cfg.ConnectTimeout = 5 * time.Second
	cfg.Traces.SuccessSampleRatio = 1
	cfg.Breaker.InitialBackoff = 50 * time.Millisecond
	cfg.Breaker.MaxBackoff = 200 * time.Millisecond
	cfg.Subscription.PublishingInterval = 50 * time.Millisecond
	cfg.Subscription.LifetimeCount = 60
	return cfg
}

// statusHost records the component status events.
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

func (h *statusHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []componentstatus.Status
	for _, e := range h.events {
		out = append(out, e.Status())
	}
	return out
}

func (h *statusHost) last() componentstatus.Status {
	s := h.statuses()
	if len(s) == 0 {
		return componentstatus.StatusNone
	}
	return s[len(s)-1]
}

func receiverSettings() receiver.Settings { return receivertest.NewNopSettings(metadata.Type) }

type harness struct {
	metrics *consumertest.MetricsSink
	traces  *consumertest.TracesSink
	host    *statusHost
	logs    *observer.ObservedLogs
	rcv     component.Component
}

// startReceiver validates cfg and starts a receiver with both pipelines; it is shut down at the end.
func startReceiver(t testing.TB, cfg *Config) *harness {
	t.Helper()
	return startReceiverOn(t, cfg, nil)
}

// startReceiverOn is startReceiver with the device's time on clk (nil: the wall clock).
func startReceiverOn(t testing.TB, cfg *Config, clk clock.Clock) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zap.InfoLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	h := &harness{metrics: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink), host: &statusHost{Host: componenttest.NewNopHost()}, logs: logs}
	f := NewFactory()
	m, err := f.CreateMetrics(context.Background(), set, cfg, h.metrics)
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, h.traces)
	require.NoError(t, err)
	if clk != nil {
		m.(*sharedcomponent.Component[*opcuaReceiver]).Value.SetClock(clk)
	}
	require.NoError(t, m.Start(context.Background(), h.host))
	require.NoError(t, tr.Start(context.Background(), h.host))
	h.rcv = m
	t.Cleanup(func() {
		require.NoError(t, tr.Shutdown(context.Background()))
		require.NoError(t, m.Shutdown(context.Background()))
	})
	return h
}

// point is one data point as seen by a test.
type point struct {
	name  string
	attrs map[string]string
	value float64
	stale bool
	ts    time.Time
	sum   bool
	res   map[string]string
}

func (p point) String() string {
	return fmt.Sprintf("%s%v=%v(stale=%v)", p.name, p.attrs, p.value, p.stale)
}

func points(md pmetric.Metrics) []point {
	var out []point
	for _, p := range devicetest.Points(md) {
		res := map[string]string{}
		for k, v := range p.Resource {
			val := pcommon.NewValueEmpty()
			_ = val.FromRaw(v)
			res[k] = val.AsString()
		}
		out = append(out, point{name: p.Metric, attrs: p.Attrs, value: p.Value, stale: p.Stale, ts: p.Time.AsTime(), sum: p.Sum, res: res})
	}
	return out
}

func (h *harness) allPoints() []point {
	var out []point
	for _, md := range h.metrics.AllMetrics() {
		out = append(out, points(md)...)
	}
	return out
}

// latest returns the newest point of a metric whose attributes include attrs.
func (h *harness) latest(name string, attrs map[string]string) (point, bool) {
	pts := h.allPoints()
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].name == name && hasAttrs(pts[i].attrs, attrs) {
			return pts[i], true
		}
	}
	return point{}, false
}

func hasAttrs(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// waitValue waits until the newest point of a metric has the value.
func (h *harness) waitValue(t testing.TB, name string, attrs map[string]string, want float64) {
	t.Helper()
	require.Eventually(t, func() bool {
		p, ok := h.latest(name, attrs)
		return ok && !p.stale && p.value == want
	}, 15*time.Second, 20*time.Millisecond, "%s%v never became %v; points: %v", name, attrs, want, h.summary())
}

// waitStale waits until the newest point of a metric is a staleness marker.
func (h *harness) waitStale(t testing.TB, name string, attrs map[string]string) {
	t.Helper()
	require.Eventually(t, func() bool {
		p, ok := h.latest(name, attrs)
		return ok && p.stale
	}, 15*time.Second, 20*time.Millisecond, "%s%v never became stale; points: %v", name, attrs, h.summary())
}

// errorCount is the newest iiot.device.poll.errors value of an error type.
func (h *harness) errorCount(typ device.ErrorType) float64 {
	p, ok := h.latest(device.MetricPollErrors, map[string]string{device.AttrErrorType: string(typ)})
	if !ok {
		return 0
	}
	return p.value
}

func (h *harness) summary() string {
	pts := h.allPoints()
	last := map[string]point{}
	var keys []string
	for _, p := range pts {
		k := p.name + fmt.Sprint(p.attrs)
		if _, ok := last[k]; !ok {
			keys = append(keys, k)
		}
		last[k] = p
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s", last[k])
	}
	return b.String()
}

// spans returns every span received so far.
func (h *harness) spans() []ptrace.Span {
	var out []ptrace.Span
	for _, s := range devicetest.Spans(h.traces.AllTraces()...) {
		out = append(out, s.Span)
	}
	return out
}

// step moves a manual clock one poll interval once the device's loop waits on it, and waits until
// that poll's metrics have arrived.
func (h *harness) step(t testing.TB, clk *clock.Manual, interval time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return clk.Waiters() > 0 }, 10*time.Second, time.Millisecond)
	n := len(h.metrics.AllMetrics())
	clk.Advance(interval)
	require.Eventually(t, func() bool { return len(h.metrics.AllMetrics()) > n }, 15*time.Second, time.Millisecond)
}
