package opcuareceiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

// pollsOf groups the spans into polls: each opcua.poll span with the request spans that follow it.
func pollsOf(all []ptrace.Span) [][]ptrace.Span {
	var out [][]ptrace.Span
	for _, s := range all {
		if s.Name() == "opcua.poll" {
			out = append(out, []ptrace.Span{s})
		} else if len(out) > 0 && !s.ParentSpanID().IsEmpty() {
			out[len(out)-1] = append(out[len(out)-1], s)
		}
	}
	return out
}

// A node the server does not have (BadNodeIdUnknown) is found at the first read, then left out of the
// reads until refused_node_retry: later polls are not errors, the node stays stale and each poll counts
// it once as error.type field. A node whose value is Bad (BadNoCommunication) is read every poll.
func TestRefusedNodeIsNotReadEveryPoll(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Poll.Interval = 100 * time.Millisecond
	cfg.Poll.Timeout = 100 * time.Millisecond
	cfg.RefusedNodeRetry = time.Hour
	cfg.Nodes = []NodeConfig{
		{ID: nsu + "s=Temperature", Name: "temperature"},
		{ID: nsu + "s=NoSuchNode", Name: "missing"},
	}
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	h.waitStale(t, "opcua.missing", nil)
	require.Eventually(t, func() bool { return len(pollsOf(h.spans())) >= 6 }, 10*time.Second, 20*time.Millisecond)

	polls := pollsOf(h.spans())
	first := -1
	for i, pl := range polls {
		for _, s := range pl[1:] {
			if v, ok := s.Attributes().Get("opcua.bad_node_ids"); ok && strings.Contains(v.Str(), "s=NoSuchNode=BadNodeIDUnknown") {
				first = i
			}
		}
		if first >= 0 {
			break
		}
	}
	require.GreaterOrEqual(t, first, 0, "the refusal is seen on a read span")
	later := polls[first+1:]
	require.NotEmpty(t, later)
	for k, pl := range later {
		assert.NotEqual(t, ptrace.StatusCodeError, pl[0].Status().Code(), "poll %d after the refusal", k)
		v, _ := pl[0].Attributes().Get(device.AttrRefusedReadings)
		assert.EqualValues(t, 1, v.Int(), "poll %d", k)
		for _, s := range pl[1:] {
			if s.Name() == "opcua.read" {
				n, _ := s.Attributes().Get("opcua.nodes")
				assert.EqualValues(t, 1, n.Int(), "poll %d: only the node that exists is read", k)
			}
		}
	}
	assert.EqualValues(t, 1, h.errorCount(device.ErrBadStatus), "bad_status once, at the refusal")
	assert.GreaterOrEqual(t, h.errorCount(device.ErrField), float64(len(later)-1))
	p, _ := h.latest("opcua.missing", nil)
	assert.True(t, p.stale)
	assert.Equal(t, 1, h.logs.FilterMessageSnippet("The server refuses the node").Len(), "logged once")
}

// Past refused_node_retry the refused node is read again; when the server has it by then, its value
// comes back.
func TestRefusedNodeIsReadAgainAfterTheRetry(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.RefusedNodeRetry = 600 * time.Millisecond
	cfg.Nodes = []NodeConfig{{ID: nsu + "s=Temperature", Name: "temperature"}, {ID: nsu + "s=Running", Name: "running"}}
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.running", nil, 1)
	srv.SetStatus("Running", true, ua.StatusBadNotReadable)
	h.waitStale(t, "opcua.running", nil)
	require.Eventually(t, func() bool { return h.errorCount(device.ErrField) >= 1 }, 10*time.Second, 20*time.Millisecond)
	srv.SetStatus("Running", false, ua.StatusOK)
	h.waitValue(t, "opcua.running", nil, 0)
	assert.Equal(t, 1, h.logs.FilterMessageSnippet("Node readable again").Len())
}

// A configured node that a browse finds again is read once: one series, and listed once among the bad
// nodes of the read when its value is Bad.
func TestConfiguredNodeFoundByBrowseIsReadOnce(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Nodes = []NodeConfig{{ID: nsu + "s=Broken", Name: "broken"}, {ID: nsu + "s=Temperature", Name: "temperature"}}
	cfg.Browse = []BrowseConfig{{Root: nsu + "s=Folder.Line1", NodeDefaults: NodeDefaults{MetricPrefix: "line1."}}}
	h := startReceiver(t, cfg)
	h.waitValue(t, "line1.Pressure", nil, 1.25)
	h.waitStale(t, "opcua.broken", nil)

	var read ptrace.Span
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.read" {
				read = s
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
	ids, _ := read.Attributes().Get("opcua.bad_node_ids")
	assert.Equal(t, 1, strings.Count(ids.Str(), "s=Broken="), "listed once: %s", ids.Str())
	bad, _ := read.Attributes().Get("opcua.bad_nodes")
	assert.EqualValues(t, 1, bad.Int())
	for _, p := range h.allPoints() {
		assert.NotEqual(t, "line1.Broken", p.name, "the configured node is not read a second time under its browse name")
		assert.NotEqual(t, "line1.Temperature", p.name)
	}
}

// A server restart while the breaker is open (backoff 1 h): each scheduled poll dials the endpoint, and
// the poll after the server is back reconnects at once. Manual clock: the scheduler's time moves only
// when the test says.
func TestBreakerProbeReconnectsWithinAnIntervalOfTheServersReturn(t *testing.T) {
	port := freePort(t)
	srv := startSim(t, sim.Config{Port: port})
	cfg := testConfig(srv.Endpoint())
	cfg.Poll.Interval = time.Second
	cfg.Poll.Timeout = time.Second
	cfg.Poll.Retries = 0
	cfg.Breaker.FailureThreshold = 2
	cfg.Breaker.InitialBackoff = time.Hour
	cfg.Breaker.MaxBackoff = time.Hour
	cfg.Nodes = plantNodes()[:1]
	require.NoError(t, cfg.Validate())

	clock := clock.NewManual(time.Now())
	core, logs := observer.New(zap.InfoLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	r, err := newReceiver(cfg, set)
	require.NoError(t, err)
	r.SetClock(clock)
	sink := new(consumertest.MetricsSink)
	r.setMetrics(sink)
	r.setTraces(new(consumertest.TracesSink))
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	h := &harness{metrics: sink, logs: logs}

	// tick moves the clock one interval once the scheduler waits on it, and waits for that poll's data.
	tick := func() {
		t.Helper()
		require.Eventually(t, func() bool { return clock.Waiters() > 0 }, 10*time.Second, time.Millisecond)
		n := sink.DataPointCount()
		clock.Advance(cfg.Poll.Interval)
		require.Eventually(t, func() bool { return sink.DataPointCount() > n }, 15*time.Second, 5*time.Millisecond)
	}
	breaker := func() float64 { p, _ := h.latest(device.MetricBreakerState, nil); return p.value }

	tick()
	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 21.5)

	// The gopcua server's Close waits for its connections' goroutines, which end only when the client
	// sends again: keep polling while it closes.
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	for i := 0; i < 20 && breaker() != float64(poll.BreakerOpen); i++ {
		tick()
	}
	<-closed
	require.Equal(t, float64(poll.BreakerOpen), breaker(), h.summary())
	tick() // the server is still gone: the probe fails, the poll is skipped
	require.Equal(t, float64(poll.BreakerOpen), breaker())
	_, skipped := h.latest("opcua.temperature", nil)
	require.True(t, skipped)

	srv2 := startSim(t, sim.Config{Port: port})
	srv2.Set("Temperature", 33.5)
	tick() // one interval after the server's return, 1 h before the backoff ends
	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 33.5)
	assert.Equal(t, float64(poll.BreakerClosed), breaker())
	assert.Equal(t, 1, logs.FilterMessageSnippet("Device reachable again").Len())
	require.NoError(t, r.Shutdown(context.Background())) // before the server closes (cleanups run in reverse)
}

// The warning of a refused login or certificate says so, from the status code the server answered with.
func TestConnectErrorSaysWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("connect: %w", ua.StatusBadUserAccessDenied), "login refused by the server (BadUserAccessDenied)"},
		{fmt.Errorf("connect: %w", ua.StatusBadIdentityTokenRejected), "login refused by the server (BadIdentityTokenRejected)"},
		{fmt.Errorf("connect: %w", ua.StatusBadCertificateUntrusted), "client certificate rejected by the server (BadCertificateUntrusted)"},
		{fmt.Errorf("connect: %w", ua.StatusBadSecurityChecksFailed), "client certificate rejected by the server (BadSecurityChecksFailed)"},
		{fmt.Errorf("connect: %w", ua.StatusBadTooManySessions), "server busy: too many sessions or connections (BadTooManySessions)"},
		{fmt.Errorf("connect: %w", ua.StatusBadTimeout), "no answer within the timeout"},
		{fmt.Errorf("get endpoints: %w", errors.New("dial tcp 127.0.0.1:1: connect: connection refused")), "connection failed"},
	} {
		err := connectError(tc.err)
		assert.Equal(t, tc.want, device.Reason(err), "%v", tc.err)
		assert.True(t, errors.Is(err, tc.err), "the cause is kept")
	}
}

// A server whose certificate is not trusted: the warning says so instead of "did not answer".
func TestUntrustedServerCertificateIsLoggedAsSuch(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"Basic256Sha256:SignAndEncrypt"}})
	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyBasic256Sha256, SecurityModeSignAndEncrypt
	cfg.Security.TrustedCertificatesDir = t.TempDir()
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	require.Eventually(t, func() bool { return h.logs.FilterMessageSnippet("Device unavailable").Len() > 0 }, 15*time.Second, 20*time.Millisecond)
	assert.Equal(t, "Device unavailable: server certificate not trusted", h.logs.FilterMessageSnippet("Device unavailable").All()[0].Message)
}
