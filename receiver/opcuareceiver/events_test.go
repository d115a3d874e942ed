package opcuareceiver

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

// The event tests run against the node-opcua server of test/e2e/opcua (installed by `make deps`):
// the Go simulator (gopcua's server) has no events.
const e2eNS = "urn:otelcol-iiot:e2e"

// nodeServer is one node-opcua server process.
type nodeServer struct {
	t    testing.TB
	port int
	pki  string
	env  []string // extra environment of the next start
	mu   sync.Mutex
	out  strings.Builder
	cmd  *exec.Cmd
	done chan struct{}
}

func startNodeServer(t testing.TB) *nodeServer {
	t.Helper()
	s := &nodeServer{t: t, port: freePort(t), pki: t.TempDir()}
	s.start()
	t.Cleanup(func() { s.stop(syscall.SIGTERM) })
	return s
}

func (s *nodeServer) start() {
	t := s.t
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "e2e", "opcua"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua")); err != nil {
		t.Fatalf("node-opcua is not installed in %s: run 'make deps'", dir)
	}
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is not installed (Debian nodejs): run 'make deps'")
	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PORT="+strconv.Itoa(s.port), "PKI_DIR="+s.pki), s.env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	s.mu.Lock()
	s.cmd, s.done = cmd, make(chan struct{})
	s.out.Reset()
	done := s.done
	s.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
		_ = cmd.Wait()
		close(done)
	}()
	require.Eventually(t, func() bool { return strings.Contains(s.output(), "ready opc.tcp://") },
		60*time.Second, 50*time.Millisecond, "node-opcua server did not start:\n%s", s.output())
}

// stop ends the server with sig (SIGKILL: it vanishes without closing its sessions).
func (s *nodeServer) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (s *nodeServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func (s *nodeServer) endpoint() string { return fmt.Sprintf("opc.tcp://127.0.0.1:%d", s.port) }

// nsIndex is the test namespace's index the server printed.
func (s *nodeServer) nsIndex() int {
	m := regexp.MustCompile(`namespace \S+ index (\d+)`).FindStringSubmatch(s.output())
	require.NotNil(s.t, m)
	n, _ := strconv.Atoi(m[1])
	return n
}

// client runs f with a client of its own (anonymous, no security), as an operator's HMI would.
func (s *nodeServer) client(f func(ctx context.Context, c *opcua.Client, ns uint16) error) {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opcua.NewClient(s.endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	defer c.Close(context.Background())
	require.NoError(t, f(ctx, c, uint16(s.nsIndex())))
}

// write sets a variable of Inverter1.
func (s *nodeServer) write(name string, v any) { s.writeNode("Inverter1."+name, v) }

// writeNode sets a variable of the test namespace.
func (s *nodeServer) writeNode(name string, v any) {
	s.client(func(ctx context.Context, c *opcua.Client, ns uint16) error {
		resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID: ua.NewStringNodeID(ns, name), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
		}}})
		if err != nil {
			return err
		}
		if resp.Results[0] != ua.StatusOK {
			return resp.Results[0]
		}
		return nil
	})
}

// acknowledge calls the standard Acknowledge method of a condition with the EventId of its last event,
// both taken from the log record, as an operator would.
func (s *nodeServer) acknowledge(lr plog.LogRecord, comment string) {
	condition := attr(lr, "opcua.condition.id")
	eventID, err := hex.DecodeString(attr(lr, "opcua.event.id"))
	require.NoError(s.t, err)
	s.client(func(ctx context.Context, c *opcua.Client, _ uint16) error {
		ref, err := parseNodeRef(condition, "")
		if err != nil {
			return err
		}
		nid, err := ref.resolve(c.Namespaces())
		if err != nil {
			return err
		}
		res, err := c.Call(ctx, &ua.CallMethodRequest{
			ObjectID: nid,
			MethodID: ua.NewNumericNodeID(0, id.AcknowledgeableConditionType_Acknowledge),
			InputArguments: []*ua.Variant{ua.MustVariant(eventID),
				ua.MustVariant(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: comment})},
		})
		if err != nil {
			return err
		}
		if isBad(res.StatusCode) {
			return res.StatusCode
		}
		return nil
	})
}

type eventHarness struct {
	*harness
	logs    *consumertest.LogsSink
	zapLogs *observer.ObservedLogs
}

// startEventReceiver starts a receiver with metrics, traces and logs pipelines.
func startEventReceiver(t testing.TB, cfg *Config) *eventHarness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	core, zl := observer.New(zap.InfoLevel)
	set := receiverSettings()
	set.Logger = zap.New(core)
	h := &eventHarness{
		harness: &harness{metrics: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink), host: &statusHost{Host: componenttest.NewNopHost()}, logs: zl},
		logs:    new(consumertest.LogsSink), zapLogs: zl,
	}
	f := NewFactory()
	m, err := f.CreateMetrics(context.Background(), set, cfg, h.metrics)
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, h.traces)
	require.NoError(t, err)
	lg, err := f.CreateLogs(context.Background(), set, cfg, h.logs)
	require.NoError(t, err)
	require.NoError(t, m.Start(context.Background(), h.host))
	require.NoError(t, tr.Start(context.Background(), h.host))
	require.NoError(t, lg.Start(context.Background(), h.host))
	h.rcv = m
	t.Cleanup(func() {
		require.NoError(t, lg.Shutdown(context.Background()))
		require.NoError(t, tr.Shutdown(context.Background()))
		require.NoError(t, m.Shutdown(context.Background()))
	})
	return h
}

// records returns every log record received so far, with its resource.
func (h *eventHarness) records() []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range h.logs.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
					out = append(out, sls.At(j).LogRecords().At(k))
				}
			}
		}
	}
	return out
}

// waitRecord waits for a record after the first `after` ones that matches, and returns it.
func (h *eventHarness) waitRecord(t testing.TB, after int, what string, match func(plog.LogRecord) bool) plog.LogRecord {
	t.Helper()
	var found plog.LogRecord
	ok := assert.Eventually(t, func() bool {
		recs := h.records()
		for i := after; i < len(recs); i++ {
			if match(recs[i]) {
				found = recs[i]
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no record %s; records: %s", what, h.describe())
	if !ok {
		t.FailNow()
	}
	return found
}

func (h *eventHarness) describe() string {
	var b strings.Builder
	for _, lr := range h.records() {
		fmt.Fprintf(&b, "\n  %q sev=%d %v", lr.Body().AsString(), lr.SeverityNumber(), lr.Attributes().AsRaw())
	}
	return b.String()
}

func attr(lr plog.LogRecord, k string) string {
	v, ok := lr.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func isCondition(name string, active, acked bool) func(plog.LogRecord) bool {
	return func(lr plog.LogRecord) bool {
		a, _ := lr.Attributes().Get("opcua.condition.active")
		k, _ := lr.Attributes().Get("opcua.condition.acked")
		return attr(lr, "opcua.condition.name") == name && a.Bool() == active && k.Bool() == acked
	}
}

func eventConfig(s *nodeServer) *Config {
	cfg := testConfig(s.endpoint())
	cfg.ID = "inverter-1"
	cfg.ResourceAttributes = map[string]string{"site": "pv-plant-3"}
	cfg.Poll.Interval = time.Second
	cfg.Poll.Timeout = time.Second
	cfg.Nodes = []NodeConfig{{ID: "nsu=" + e2eNS + ";s=Temperature", Name: "temperature"}}
	cfg.Events = []EventsConfig{{}}
	return cfg
}

// TestEventsPlainEvent: one event raised on the server is one log record with its fields: timestamp
// from Time, body from Message, severity mapped, source, type, a user-selected field, and the
// device's resource.
func TestEventsPlainEvent(t *testing.T) {
	srv := startNodeServer(t)
	cfg := eventConfig(srv)
	ns := srv.nsIndex()
	cfg.Events[0].Fields = []EventFieldConfig{{Path: fmt.Sprintf("%d:ErrorCode", ns), Type: "nsu=" + e2eNS + ";s=InverterEventType"}}
	h := startEventReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	require.Eventually(t, func() bool { return len(h.spansNamed("opcua.condition_refresh")) > 0 }, 10*time.Second, 20*time.Millisecond)

	before := time.Now()
	srv.write("Command", "event 300 4711 String 3 overcurrent")
	lr := h.waitRecord(t, 0, "of the plain event", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "String 3 overcurrent" })

	assert.Equal(t, plog.SeverityNumberWarn, lr.SeverityNumber())
	assert.Equal(t, "WARN", lr.SeverityText())
	assert.Equal(t, "InverterEventType", lr.EventName())
	assert.WithinRange(t, lr.Timestamp().AsTime(), before.Add(-time.Second), time.Now())
	assert.False(t, lr.ObservedTimestamp().AsTime().Before(lr.Timestamp().AsTime()))
	raw := lr.Attributes().AsRaw()
	assert.Regexp(t, "^([0-9a-f]{2})+$", raw["opcua.event.id"], "EventId as hex")
	delete(raw, "opcua.event.id")
	assert.Equal(t, map[string]any{
		"opcua.event.notifier":  "i=2253",
		"opcua.event.type":      "nsu=" + e2eNS + ";s=InverterEventType",
		"opcua.source.node":     "nsu=" + e2eNS + ";s=Inverter1",
		"opcua.source.name":     "Inverter1",
		"opcua.event.severity":  int64(300),
		"opcua.event.errorcode": int64(4711),
	}, raw)

	res := h.logs.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, "inverter-1", res[device.AttrDeviceID])
	assert.Equal(t, "opcua", res[device.AttrDeviceProtocol])
	assert.Equal(t, "pv-plant-3", res["site"])
	assert.Equal(t, metadata.ScopeName, h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).Scope().Name())

	// Each event is one record: a second one adds exactly one.
	n := len(h.records())
	srv.write("Command", "event 900 1 Arc fault detected")
	lr = h.waitRecord(t, n, "of the second event", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "Arc fault detected" })
	assert.Equal(t, plog.SeverityNumberFatal, lr.SeverityNumber())
	require.Never(t, func() bool { return len(h.records()) > n+1 }, 500*time.Millisecond, 50*time.Millisecond, h.describe())

	// One receiver instance, one session, serves the metrics, traces and logs pipelines.
	sessions, ok := h.latest("opcua.sessions.established", nil)
	require.True(t, ok)
	assert.Equal(t, 1.0, sessions.value)
}

func (h *harness) spansNamed(name string) []string {
	var out []string
	for _, s := range h.spans() {
		if s.Name() == name {
			out = append(out, s.Name())
		}
	}
	return out
}

// TestEventsAlarmLifecycle: an alarm becomes active, is acknowledged (by the standard method, with the
// ids from the record) and becomes inactive: three records with the condition's state.
func TestEventsAlarmLifecycle(t *testing.T) {
	srv := startNodeServer(t)
	cfg := eventConfig(srv)
	cfg.Mode = ModeSubscribe // events share the data subscription
	h := startEventReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	require.Eventually(t, func() bool { return len(h.spansNamed("opcua.condition_refresh")) > 0 }, 10*time.Second, 20*time.Millisecond)

	srv.write("GridFault", true)
	active := h.waitRecord(t, 0, "of the active alarm", isCondition("GridFault", true, false))
	assert.Equal(t, "Grid fault: inverter disconnected", active.Body().AsString())
	assert.Equal(t, plog.SeverityNumberError, active.SeverityNumber())
	assert.Equal(t, "OffNormalAlarmType", active.EventName())
	assert.Equal(t, "nsu="+e2eNS+";s=Inverter1.GridFaultAlarm", attr(active, "opcua.condition.id"))
	// node-opcua names a condition's source by its qualified browse name.
	assert.Equal(t, fmt.Sprintf("%d:Inverter1", srv.nsIndex()), attr(active, "opcua.source.name"))
	assert.Equal(t, "nsu="+e2eNS+";s=Inverter1", attr(active, "opcua.source.node"))
	assert.Equal(t, "true", attr(active, "opcua.condition.retain"))
	_, refresh := active.Attributes().Get("opcua.condition.refresh")
	assert.False(t, refresh, "a new transition is not a refresh")

	n := len(h.records())
	srv.acknowledge(active, "crew dispatched")
	acked := h.waitRecord(t, n, "of the acknowledged alarm", isCondition("GridFault", true, true))
	assert.NotEqual(t, attr(active, "opcua.event.id"), attr(acked, "opcua.event.id"))

	n = len(h.records())
	srv.write("GridFault", false)
	cleared := h.waitRecord(t, n, "of the inactive alarm", isCondition("GridFault", false, true))
	assert.Equal(t, "Grid fault cleared", cleared.Body().AsString())
	assert.Equal(t, plog.SeverityNumberInfo, cleared.SeverityNumber())
}

// TestEventsWhereFilter: the server applies the where clause: low-severity events and plain events are
// not sent when the filter asks for alarms of severity 500 and more.
func TestEventsWhereFilter(t *testing.T) {
	srv := startNodeServer(t)
	cfg := eventConfig(srv)
	cfg.Events = []EventsConfig{
		{Where: "Severity >= 500"},
		{Where: "OfType(i=2915) and Severity >= 500"},
	}
	h := startEventReceiver(t, cfg)
	require.Eventually(t, func() bool { return len(h.spansNamed("opcua.condition_refresh")) > 0 }, 10*time.Second, 20*time.Millisecond)

	srv.write("Command", "event 200 1 Fan speed low")
	srv.write("Command", "event 600 2 Insulation fault")
	srv.write("GridFault", true)
	h.waitRecord(t, 0, "of the severe event", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "Insulation fault" })
	h.waitRecord(t, 0, "of the alarm through the OfType filter", func(lr plog.LogRecord) bool {
		return attr(lr, "opcua.condition.name") == "GridFault" && strings.Contains(lr.Body().AsString(), "disconnected") && attr(lr, "opcua.event.notifier") == "i=2253"
	})
	// Give the low one every chance to arrive, then check who got what.
	srv.write("Command", "event 800 3 marker")
	h.waitRecord(t, 0, "of the marker", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "marker" })
	counts := map[string]int{}
	for _, lr := range h.records() {
		counts[lr.Body().AsString()]++
	}
	assert.Zero(t, counts["Fan speed low"], "severity 200 is filtered out by the server: %s", h.describe())
	assert.Equal(t, 1, counts["Insulation fault"], "a plain event passes the first entry only: %s", h.describe())
	assert.Equal(t, 1, counts["marker"], h.describe())
	assert.Equal(t, 2, counts["Grid fault: inverter disconnected"], "the alarm passes both entries: %s", h.describe())
}

// TestEventsAfterServerKilled: the server is killed (SIGKILL) and comes back on the same port with the
// alarm already active (it became active while the collector could not see it): the session is rebuilt
// with its event item, ConditionRefresh re-sends the alarm (marked opcua.condition.refresh), and new
// events flow again.
func TestEventsAfterServerKilled(t *testing.T) {
	srv := startNodeServer(t)
	cfg := eventConfig(srv)
	h := startEventReceiver(t, cfg)
	require.Eventually(t, func() bool { return len(h.spansNamed("opcua.condition_refresh")) > 0 }, 10*time.Second, 20*time.Millisecond)
	srv.write("Command", "event 300 1 before the crash")
	h.waitRecord(t, 0, "before the crash", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "before the crash" })

	srv.stop(syscall.SIGKILL)
	h.waitStale(t, "opcua.temperature", nil)
	srv.env = []string{"GRID_FAULT_AT_START=1"}
	srv.start()
	n := len(h.records())
	rec := h.waitRecord(t, n, "of the alarm re-sent by ConditionRefresh", isCondition("GridFault", true, false))
	assert.Equal(t, "true", attr(rec, "opcua.condition.refresh"), h.describe())
	assert.Equal(t, "Grid fault: inverter disconnected", rec.Body().AsString())
	h.waitValue(t, "opcua.temperature", nil, 21.5)

	n = len(h.records())
	srv.write("Command", "event 400 9 after restart")
	h.waitRecord(t, n, "of a new event after the restart", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "after restart" })
	sessions, _ := h.latest("opcua.sessions.established", nil)
	assert.GreaterOrEqual(t, sessions.value, 2.0)
}

// TestEventsRejectedFilter: a filter the server refuses is an error naming the key, counted at every
// heartbeat; the data of the same server and the other events entry keep flowing.
func TestEventsRejectedFilter(t *testing.T) {
	srv := startNodeServer(t)
	cfg := eventConfig(srv)
	cfg.Events = []EventsConfig{
		{Notifier: "nsu=" + e2eNS + ";s=NoSuchNotifier"},
		{Fields: []EventFieldConfig{{Path: "NoSuchField", Type: "nsu=" + e2eNS + ";s=InverterEventType"}}},
		// 9 comparisons and 8 ors: 34 operands, more than the server's 16.
		{Where: strings.TrimSuffix(strings.Repeat("Severity == 1 or ", 9), " or ")},
	}
	h := startEventReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	require.Eventually(t, func() bool {
		return h.zapLogs.FilterMessageSnippet("refused an event subscription").FilterField(zap.String("key", "events[0].notifier")).Len() > 0
	}, 10*time.Second, 20*time.Millisecond, "logs: %v", h.zapLogs.All())
	require.Eventually(t, func() bool {
		return h.zapLogs.FilterMessageSnippet("refused a selected event field").FilterField(zap.String("key", "events[1].fields[0]")).Len() > 0
	}, 10*time.Second, 20*time.Millisecond, "logs: %v", h.zapLogs.All())
	require.Eventually(t, func() bool {
		return h.zapLogs.FilterMessageSnippet("refused an event subscription").FilterField(zap.String("key", "events[2].where")).
			FilterField(zap.String("status", "BadEventFilterInvalid")).Len() > 0
	}, 10*time.Second, 20*time.Millisecond, "logs: %v", h.zapLogs.All())
	// The three refusals are counted at every heartbeat.
	require.Eventually(t, func() bool { return h.errorCount(device.ErrField) >= 6 }, 10*time.Second, 20*time.Millisecond, h.summary())

	srv.writeNode("Temperature", 33.5)
	h.waitValue(t, "opcua.temperature", nil, 33.5)
	srv.write("Command", "event 500 7 still here")
	lr := h.waitRecord(t, 0, "of the second entry", func(lr plog.LogRecord) bool { return lr.Body().AsString() == "still here" })
	_, ok := lr.Attributes().Get("opcua.event.nosuchfield")
	assert.False(t, ok)
	up, _ := h.latest(device.MetricUp, nil)
	assert.Equal(t, 1.0, up.value, "a refused event entry does not make the device down")
}

func TestSeverityMapping(t *testing.T) {
	for _, c := range []struct {
		sev  uint16
		num  plog.SeverityNumber
		text string
	}{
		{0, plog.SeverityNumberUnspecified, ""},
		{1, plog.SeverityNumberInfo, "INFO"}, {200, plog.SeverityNumberInfo, "INFO"},
		{201, plog.SeverityNumberWarn, "WARN"}, {400, plog.SeverityNumberWarn, "WARN"},
		{401, plog.SeverityNumberWarn3, "WARN3"}, {600, plog.SeverityNumberWarn3, "WARN3"},
		{601, plog.SeverityNumberError, "ERROR"}, {800, plog.SeverityNumberError, "ERROR"},
		{801, plog.SeverityNumberFatal, "FATAL"}, {1000, plog.SeverityNumberFatal, "FATAL"},
		{1001, plog.SeverityNumberFatal, "FATAL"},
	} {
		n, s := severityOf(c.sev)
		assert.Equal(t, c.num, n, "severity %d", c.sev)
		assert.Equal(t, c.text, s, "severity %d", c.sev)
	}
}

// BenchmarkIdleEventSubscription measures the CPU the receiver's process spends on an event
// subscription with nothing to report (the server only answers keep-alives), with the edge defaults:
// publishing interval 1s, keep-alive count 10, heartbeat every 10s. Each iteration is one second of
// wall time; run it with -benchtime=60x. The node-opcua server's own CPU is not counted.
func BenchmarkIdleEventSubscription(b *testing.B) {
	srv := startNodeServer(b)
	cfg := createDefaultConfig()
	cfg.Endpoint = srv.endpoint()
	cfg.ID = "inverter-1"
	cfg.Events = []EventsConfig{{Where: "OfType(i=2915)"}}
	h := startEventReceiver(b, cfg)
	require.Eventually(b, func() bool { return h.zapLogs.FilterMessage("Connected to the OPC UA server").Len() > 0 }, 30*time.Second, 20*time.Millisecond)
	time.Sleep(2 * time.Second) //nolint:forbidigo // let the connect settle before measuring idle
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for range b.N {
		time.Sleep(time.Second) //nolint:forbidigo // idle CPU is CPU per wall second
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.ReportMetric(float64(cpu)/float64(wall)*100, "%cpu")
	b.ReportMetric(float64(cpu.Microseconds())/wall.Seconds(), "cpu-µs/s")
}
