//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// A hard kill (power loss, OOM kill, kill -9) must not lose a point the collector acknowledged.
//
// An OTLP client sends one point per device every 50 ms and records which points the collector
// acknowledged (Export returned OK). Prometheus is stopped, the collector is killed with SIGKILL
// three times (restarted each time on the same storage directory), Prometheus comes back: every
// acknowledged point must be in Prometheus, exactly once, with its value. Points whose Export
// failed may or may not be there (the collector may have stored them before it died), but never
// with another value.
//
// The pipeline is the edge default's (memory_limiter, tenant, durable exporter with file_storage,
// two tenants). "exporter_queue_batch" batches inside the exporter's persistent queue (the edge
// default since issue 11) and must lose nothing. "batch_processor" is the old pipeline with the batch
// processor in front of the queue: it must lose acknowledged points, which shows that this test
// detects the loss.
func TestCrashSIGKILLLosesNothingAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name       string
		processors string
		queueBatch bool // batching inside the exporter's queue
		wantLoss   bool
	}{
		{
			name:       "exporter_queue_batch",
			processors: "[memory_limiter, tenant]",
			queueBatch: true,
		},
		{
			name:       "batch_processor",
			processors: "[memory_limiter, tenant, batch]",
			wantLoss:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCrashTest(t, tc.processors, tc.queueBatch, tc.wantLoss)
		})
	}
}

func runCrashTest(t *testing.T, processors string, queueBatch, wantLoss bool) {
	prom := startPrometheus(t)
	otlpPort, telemetryPort := freePort(t), freePort(t)
	storage := t.TempDir()
	col := startCollectorTestdata(t, nil, vars{"StorageDir": storage, "OTLPPort": otlpPort, "RemoteWrite": prom.RemoteWriteURL(),
		"QueueBatch": queueBatch, "TelemetryPort": telemetryPort, "Processors": processors}, "crash/config.yaml")
	endpoint := fmt.Sprintf("127.0.0.1:%d", otlpPort)
	waitOTLP(t, endpoint)

	devices := []crashDevice{
		{id: "meter-1", protocol: "dlt645", tenant: "acme"},
		{id: "meter-2", protocol: "dlt645", tenant: "acme"},
		{id: "plc-1", protocol: "modbus"}, // no tenant: the site operator's
		{id: "plc-2", protocol: "modbus"},
	}
	sender := startCrashSender(t, endpoint, 50*time.Millisecond, devices)

	// A little while with Prometheus up, then the outage with three hard kills in it. Each kill comes
	// ~3 s after the collector started: inside the old pipeline's 5 s batch timeout.
	sender.waitAcked(t, 20)
	prom.Stop(t)
	for i := range 3 {
		since := sender.ackedCount()
		sender.waitAcked(t, since+60) // ~3 s of acknowledged exports since the (re)start
		col.kill(t)
		t.Logf("kill %d: %d points acknowledged so far", i+1, sender.ackedCount()*len(devices))
		restartedAt := len(col.output())
		col.start(t)
		waitOTLP(t, endpoint)
		if i == 2 {
			// After the last restart, let the exporter fail a send and retry it before Prometheus
			// comes back: those retries must not be counted as failed (lost) points.
			require.True(t, assertEventually(30*time.Second, func() bool {
				return strings.Contains(col.output()[restartedAt:], "Will retry the request after interval")
			}), "no retry after the last restart:\n%s", col.output()[restartedAt:])
		}
	}
	sender.waitAcked(t, sender.ackedCount()+20)
	prom.Start(t)
	sender.waitAcked(t, sender.ackedCount()+20)
	sender.Stop()

	acked, failed := sender.results()
	t.Logf("acknowledged %d exports (%d points), %d exports failed", len(acked), len(acked)*len(devices), len(failed))

	// Wait until the queues are drained (or, for the old pipeline, until nothing changes any more).
	telemetry := fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort)
	require.True(t, assertEventually(90*time.Second, func() bool {
		n, err := scrapeSum(telemetry, "otelcol_exporter_queue_size", `exporter="tenantremotewrite/[`)
		return err == nil && n == 0
	}), "the queues did not drain:\n%s", col.output())

	var missing, extra, wrong []string
	var present int
	lastMissing, lastChange := -1, time.Now()
	ok := assertEventually(60*time.Second, func() bool {
		missing, extra, wrong, present = nil, nil, nil, 0
		got, err := queryRawSamples(prom, `e2e_crash_seq[30m]`)
		if err != nil {
			missing = []string{err.Error()}
			return false
		}
		sent := map[string]map[int64]float64{} // instance -> ts -> value of every export attempted
		for _, e := range append(append([]crashExport(nil), acked...), failed...) {
			for _, d := range devices {
				if sent[d.id] == nil {
					sent[d.id] = map[int64]float64{}
				}
				sent[d.id][e.ms] = e.value
			}
		}
		for _, e := range acked {
			for _, d := range devices {
				v, ok := got[d.id][e.ms]
				switch {
				case !ok:
					missing = append(missing, fmt.Sprintf("%s@%d", d.id, e.ms))
				case v != e.value:
					wrong = append(wrong, fmt.Sprintf("%s@%d=%v (sent %v)", d.id, e.ms, v, e.value))
				default:
					present++
				}
			}
		}
		for inst, samples := range got {
			for ms, v := range samples {
				if want, ok := sent[inst][ms]; !ok || want != v {
					extra = append(extra, fmt.Sprintf("%s@%d=%v", inst, ms, v))
				}
			}
		}
		// For the old pipeline: done when the missing set has not changed for longer than the
		// batch processor's timeout (what it still held has been flushed by then).
		if len(missing) != lastMissing {
			lastMissing, lastChange = len(missing), time.Now()
		}
		stable := wantLoss && len(missing) > 0 && time.Since(lastChange) > 8*time.Second
		return (len(missing) == 0 && len(wrong) == 0) || stable
	})
	sort.Strings(missing)
	t.Logf("in Prometheus: %d of %d acknowledged points; %d missing; %d with another value; %d never sent",
		present, len(acked)*len(devices), len(missing), len(wrong), len(extra))
	assert.Empty(t, wrong, "acknowledged points with another value in Prometheus")
	assert.Empty(t, extra, "samples in Prometheus that were never sent")
	if wantLoss {
		assert.NotEmpty(t, missing, "the batch processor in front of the queue should have lost acknowledged points on SIGKILL")
		return
	}
	require.True(t, ok, "acknowledged points missing in Prometheus (%d): %v", len(missing), head(missing, 40))

	// The exporter's own counters agree: nothing was lost, every retry was delivered, and the
	// inner remote-write client's per-attempt counters are not published.
	failedPoints, err := scrapeLines(telemetry, "otelcol_exporter_send_failed_metric_points")
	require.NoError(t, err)
	assert.Empty(t, failedPoints, "points counted as failed since the last restart")
	enqueueFailed, err := scrapeSum(telemetry, "otelcol_exporter_enqueue_failed_metric_points", `exporter="tenantremotewrite/[`)
	require.NoError(t, err)
	assert.Zero(t, enqueueFailed)
	inner, err := scrapeLines(telemetry, "otelcol_exporter_sent_metric_points")
	require.NoError(t, err)
	for _, l := range inner {
		assert.NotContains(t, l, `exporter="prometheus_remote_write/`, "inner exporter telemetry")
	}
	refused, err := scrapeSum(prom.URL()+"/metrics", "prometheus_http_requests_total", `handler="/api/v1/write"`, `code="400"`)
	require.NoError(t, err)
	assert.Zero(t, refused, "remote-write requests Prometheus refused (out of order) since its restart")
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// kill ends the process with SIGKILL (no shutdown: what power loss or the OOM killer does) and
// waits until it is gone; start runs it again on the same config and storage.
func (p *process) kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	require.NotNil(t, cmd, "%s not running", p.name)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	<-done
}

// ---- an OTLP client that counts what was acknowledged -------------------------------------------

type crashDevice struct {
	id, protocol, tenant string
}

// crashExport is one Export call: one gauge point e2e.crash.seq per device, all with the same
// timestamp and value.
type crashExport struct {
	ms    int64
	value float64
}

type crashSender struct {
	mu       sync.Mutex
	acked    []crashExport
	failed   []crashExport
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startCrashSender sends one export per tick; a failed export is not repeated (its points are
// simply not acknowledged), the next tick sends new points.
func startCrashSender(t *testing.T, endpoint string, every time.Duration, devices []crashDevice) *crashSender {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	client := pmetricotlp.NewGRPCClient(conn)
	s := &crashSender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var lastMS int64
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for seq := 1; ; seq++ {
			ms := max(time.Now().UnixMilli(), lastMS+1)
			lastMS = ms
			e := crashExport{ms: ms, value: float64(seq)}
			md := pmetric.NewMetrics()
			for _, d := range devices {
				rm := md.ResourceMetrics().AppendEmpty()
				attrs := rm.Resource().Attributes()
				attrs.PutStr("device.id", d.id)
				attrs.PutStr("device.protocol", d.protocol)
				if d.tenant != "" {
					attrs.PutStr("tenant.id", d.tenant)
				}
				m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
				m.SetName("e2e.crash.seq")
				dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
				dp.SetTimestamp(pcommon.Timestamp(ms * int64(time.Millisecond)))
				dp.SetDoubleValue(e.value)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
			cancel()
			s.mu.Lock()
			if err == nil {
				s.acked = append(s.acked, e)
			} else {
				s.failed = append(s.failed, e)
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-ticker.C:
			}
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

func (s *crashSender) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

func (s *crashSender) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// waitAcked waits until at least n exports were acknowledged.
func (s *crashSender) waitAcked(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return s.ackedCount() >= n }, 60*time.Second, 20*time.Millisecond,
		"the collector acknowledged fewer than %d exports", n)
}

func (s *crashSender) results() (acked, failed []crashExport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]crashExport(nil), s.acked...), append([]crashExport(nil), s.failed...)
}

// queryRawSamples evaluates a range selector and returns its raw samples: instance -> ms -> value.
func queryRawSamples(p *prometheus, selector string) (map[string]map[int64]float64, error) {
	resp, err := http.Get(p.URL() + "/api/v1/query?query=" + url.QueryEscape(selector))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" || body.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("query %q: %s %s %s", selector, body.Status, body.Data.ResultType, body.Error)
	}
	out := map[string]map[int64]float64{}
	for _, series := range body.Data.Result {
		inst := series.Metric["instance"]
		if out[inst] == nil {
			out[inst] = map[int64]float64{}
		}
		for _, v := range series.Values {
			ts, _ := v[0].(float64)
			s, _ := v[1].(string)
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, err
			}
			ms := int64(ts*1000 + 0.5)
			if _, dup := out[inst][ms]; dup {
				// two series (label sets) of one device: the same point sent twice under other labels
				return nil, fmt.Errorf("instance %s has two samples at %d: series %v", inst, ms, strings.Join(mapKeys(series.Metric), ","))
			}
			out[inst][ms] = f
		}
	}
	return out, nil
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// A sending_queue::storage naming an extension that is not in service::extensions. `validate`
// builds the pipelines without the extensions, so it cannot see this (at v0.159 it passes); the
// start must then fail at once and say which line to add, not leave systemd guessing in a
// restart loop.
func TestStorageExtensionNotEnabled(t *testing.T) {
	path := renderFile(t, t.TempDir(), "crash/storage_not_enabled.yaml",
		vars{"StorageDir": t.TempDir(), "OTLPPort": freePort(t), "RemoteWritePort": freePort(t)})

	out, err := runCollectorCommand(t, "validate", "--config="+path)
	t.Logf("validate: err=%v %s", err, out)

	out, err = runCollectorCommand(t, "--config="+path)
	require.Error(t, err, "the collector must not start")
	assert.Contains(t, out, `failed to start "tenantremotewrite" exporter: tenantremotewrite: sending_queue::storage: extension "file_storage" is not enabled: add it to service::extensions`)
}
