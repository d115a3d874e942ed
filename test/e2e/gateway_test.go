//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var gatewayBinary = &binary{env: "OTELCOL_IIOT_GATEWAY_BINARY", path: "_build/gateway/otelcol-iiot-gateway",
	build: []string{"make", "build-gateway"}}

// buildGateway returns the path of the gateway distribution's binary.
func buildGateway(t testing.TB) string { return gatewayBinary.get(t) }

// gateway runs the gateway distribution with its shipped config file
// (distributions/otelcol-iiot-gateway/config.yaml, then the overlays given to startGateway, e.g. kafka.yaml),
// configured through the environment only.
type gateway struct {
	*process
	otlp      string // OTLP gRPC listen address
	health    string // health_check endpoint
	telemetry string // URL of the gateway's own metrics
}

func startGateway(t *testing.T, env map[string]string, overlays ...string) *gateway {
	t.Helper()
	telemetryPort := strconv.Itoa(freePort(t))
	g := &gateway{
		otlp:      "127.0.0.1:" + strconv.Itoa(freePort(t)),
		health:    "127.0.0.1:" + strconv.Itoa(freePort(t)),
		telemetry: "http://localhost:" + telemetryPort + "/metrics",
	}
	environ := append(os.Environ(),
		"OTELCOL_IIOT_GATEWAY_LISTEN="+g.otlp,
		"OTELCOL_IIOT_HEALTH_CHECK_ENDPOINT="+g.health,
		"OTELCOL_IIOT_TELEMETRY_PORT="+telemetryPort,
		"OTELCOL_IIOT_STORAGE_DIR="+filepath.Join(t.TempDir(), "queues"),
	)
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	g.process = &process{
		name: "otelcol-iiot-gateway",
		path: buildGateway(t),
		args: []string{"--config=" + filepath.Join(repoRoot(t), "distributions", "otelcol-iiot-gateway", "config.yaml")},
		env:  environ,
		dir:  t.TempDir(),
	}
	for _, o := range overlays {
		g.args = append(g.args, "--config="+filepath.Join(repoRoot(t), "distributions", "otelcol-iiot-gateway", o))
	}
	g.register(t)
	g.Start(t)
	return g
}

// Start starts the gateway (again: same environment, same storage directory) and waits until its
// health check answers 200.
func (g *gateway) Start(t *testing.T) {
	t.Helper()
	g.start(t)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + g.health + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "gateway health check never answered 200:\n%s", g.output())
}

// scrapeSum sums the values of metric name at a Prometheus text endpoint over the series whose
// line contains every one of match (e.g. `exporter="tenantremotewrite/[pv-owner]"`).
func scrapeSum(url, name string, match ...string) (float64, error) {
	lines, err := scrapeLines(url, name)
	if err != nil {
		return 0, err
	}
	var sum float64
lines:
	for _, line := range lines {
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue lines
			}
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		sum += f
	}
	return sum, nil
}

// scrapeLines returns the sample lines of metric name at a Prometheus text endpoint.
func scrapeLines(url, name string) ([]string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// queues returns the gateway's per-tenant queue sizes (for messages).
func (g *gateway) queues() []string {
	lines, err := scrapeLines(g.telemetry, "otelcol_exporter_queue_size")
	if err != nil {
		return []string{err.Error()}
	}
	return lines
}

// sampleTimes returns the timestamps of the samples of selector in (from, to], by a range query
// evaluated at to.
func sampleTimes(p *prometheus, selector string, from, to time.Time) ([]time.Time, error) {
	q := fmt.Sprintf("%s[%dms] @ %.3f", selector, to.Sub(from).Milliseconds(), float64(to.UnixMilli())/1000)
	resp, err := http.Get(p.URL() + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []time.Time
	for _, r := range body.Data.Result {
		for _, v := range r.Values {
			f, _ := v[0].(float64)
			out = append(out, time.UnixMilli(int64(f*1000+0.5)))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out, nil
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// The two tiers together. An edge collector polls the Modbus simulator (two meters, one with a
// tenant.id, one without) and sends metrics and poll traces by OTLP to the gateway distribution,
// which runs its shipped config: it gives every resource a tenant (its default tenant for the meter
// without one), turns the poll spans into latency quantiles, writes an OPC UA server's events (logs) to
// a log store by OTLP/HTTP, writes each tenant's share to a real
// Prometheus through a disk-backed queue and load-balances the traces by trace id onto a trace
// sink. Then Prometheus goes down, the gateway is restarted during the outage, Prometheus comes
// back: the readings of the outage, held on disk by the gateway across its restart, arrive.
func TestGatewayEndToEnd(t *testing.T) {
	const (
		tenantA       = "pv-owner"      // set by the edge on meter A
		defaultTenant = "site-operator" // the shipped config's default tenant (OTELCOL_IIOT_DEFAULT_TENANT unset)
		pollInterval  = time.Second
	)
	simPort := startModbusSim(t) // SDM630 at unit 1, DTSU666 at unit 3
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	opcuaPort := freePort(t)
	plc := startNodeOPCUA(t, opcuaPort, t.TempDir(), false)
	gw := startGateway(t, map[string]string{
		"OTELCOL_IIOT_REMOTE_WRITE_URL": prom.RemoteWriteURL(),
		"OTELCOL_IIOT_LOGS_ENDPOINT":    sink.HTTPURL(),
		// The dns resolver of the load_balancing exporter looks this name up (an IP literal resolves
		// to itself; "localhost" would work here too, /etc/hosts maps it to 127.0.0.1 only) and sends
		// to every address found, on this port.
		"OTELCOL_IIOT_TRACES_BACKENDS": "127.0.0.1",
		"OTELCOL_IIOT_TRACES_PORT":     strconv.Itoa(sink.port),
	})

	// The edge runs the shipped edge default with the shipped uplink overlay (everything to the
	// gateway by OTLP, one disk-backed queue with one consumer, so that a batch retried while the
	// gateway restarts is not overtaken by later ones: Prometheus refuses out-of-order samples).
	// Its device files: the two meters; a DL/T 645 bus and an OPC UA server where nothing answers.
	dist := filepath.Join(repoRoot(t), "distributions", "otelcol-iiot")
	profiles := filepath.Join(dist, "profiles")
	confDir := t.TempDir()
	renderTree(t, confDir, "gateway/confdir", vars{"PollInterval": pollInterval, "Profiles": profiles, "ModbusPort": simPort,
		"DeadDLT645Port": freePort(t), "OPCUAPort": opcuaPort, "Namespace": e2eNamespace, "TenantA": tenantA})
	startCollectorFiles(t, map[string]string{
		"OTELCOL_IIOT_CONFIG_DIR":            confDir,
		"OTELCOL_IIOT_STORAGE_DIR":           t.TempDir(),
		"OTELCOL_IIOT_HEALTH_CHECK_ENDPOINT": "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"OTELCOL_IIOT_OTLP_LISTEN":           "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"OTELCOL_IIOT_GATEWAY_ENDPOINT":      gw.otlp,
		"OTELCOL_IIOT_TELEMETRY_PORT":        strconv.Itoa(freePort(t)),
	}, filepath.Join(dist, "config.yaml"), filepath.Join(dist, "uplink.yaml"))
	began := time.Now()
	since := func() time.Duration { return time.Since(began).Round(100 * time.Millisecond) }

	// ---- readings of both meters, each with its tenant -------------------------------------------
	// A single Prometheus ignores the X-Scope-OrgID header the exporter sends per tenant; what it
	// stores is the tenant.id resource attribute, as the label tenant_id (one of the exporter's promote_resource_attributes).
	devices := []struct{ id, tenant, group string }{
		{"gw-meter-a", tenantA, "meters"},
		{"gw-meter-b", defaultTenant, "none"}, // device_group: the spanquantiles dimension's default
	}
	for _, d := range devices {
		sel := fmt.Sprintf(`electrical_voltage_volts{device_id=%q,phase="A"}`, d.id)
		var got []sample
		require.True(t, assertEventually(60*time.Second, func() bool {
			got, _ = prom.QueryE(sel)
			return len(got) == 1
		}), "no reading %s in Prometheus; last %v", sel, got)
		t.Logf("after %s: %s", since(), labelString(got[0].Labels))
		assert.Equal(t, d.tenant, got[0].Labels["tenant_id"], "tenant of %s", d.id)
		assert.InDelta(t, 230, got[0].Value, 30, "%s: a plausible mains voltage", sel)
		// every series of the device carries its tenant, none another
		byTenant := prom.Query(t, fmt.Sprintf(`count by (tenant_id) ({device_id=%q})`, d.id))
		require.Len(t, byTenant, 1, "%s: series of one tenant only, got %v", d.id, byTenant)
		assert.Equal(t, d.tenant, byTenant[0].Labels["tenant_id"])
		assert.Greater(t, byTenant[0].Value, 10.0, "%s: the profile's readings and the health metrics", d.id)
		// the health metric
		prom.eventuallyValue(t, fmt.Sprintf(`iiot_device_up{device_id=%q,tenant_id=%q}`, d.id, d.tenant), 1, 30*time.Second)
	}

	// ---- poll traces through the load_balancing exporter --------------------------------------
	require.True(t, assertEventually(30*time.Second, func() bool {
		spans := sink.Spans(t)
		byID := map[string]span{}
		for _, s := range spans {
			byID[s.SpanID] = s
		}
		ok := map[string]bool{}
		for _, s := range spans {
			if s.Name == "modbus.poll" || s.ParentID == "" {
				continue
			}
			parent, found := byID[s.ParentID]
			if !found || parent.Name != "modbus.poll" || parent.TraceID != s.TraceID {
				continue
			}
			dev, _ := parent.Resource["device.id"].(string)
			tenant, _ := parent.Resource["tenant.id"].(string)
			for _, d := range devices {
				if d.id == dev && d.tenant == tenant && s.Resource["device.id"] == dev && !ok[dev] {
					t.Logf("trace %s: %s -> %s %v (tenant.id %s)", s.TraceID, parent.Name, s.Name, s.Attrs, tenant)
					ok[dev] = true
				}
			}
		}
		return len(ok) == len(devices)
	}), "no modbus.poll span with a child request span (same trace) for each meter, with its tenant.id")

	// ---- OPC UA events as logs: edge logs pipeline → uplink → gateway logs pipeline → OTLP/HTTP ----
	// An event raised before the edge's event subscription exists is not delivered (OPC UA keeps no
	// event history for a new subscription), so the server raises one until a record arrives.
	var event logRecord
	require.True(t, assertEventually(90*time.Second, func() bool {
		body := fmt.Sprintf("gateway path check %d", time.Now().UnixNano())
		plc.write(t, "Inverter1.Command", "event 300 4711 "+body)
		return assertEventually(3*time.Second, func() bool {
			for _, r := range sink.Logs(t) {
				if strings.HasPrefix(r.Body, "gateway path check") {
					event = r
					return true
				}
			}
			return false
		})
	}), "no OPC UA event record reached the gateway's log store; gateway:\n%s", gw.output())
	t.Logf("after %s: event %q of %v (tenant.id %v) at the log store", since(), event.Body, event.Resource["device.id"], event.Resource["tenant.id"])
	assert.Equal(t, "gw-inverter", event.Resource["device.id"])
	assert.Equal(t, defaultTenant, event.Resource["tenant.id"], "the event record carries its device's tenant")
	assert.Equal(t, "InverterEventType", event.EventName)

	// ---- poll-latency quantiles from the spans (spanquantiles connector) ---------------------
	// One series per receiver (job), span name, device_group and tenant: the connector keeps the
	// tenant.id of the spans it digests, so each tenant's quantiles reach that tenant's queue.
	for _, d := range devices {
		tenant := d.tenant
		if tenant == "" {
			tenant = defaultTenant
		}
		sel := fmt.Sprintf(`traces_span_duration_quantiles_seconds{job="modbus",span_name="modbus.poll",span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_UNSET",device_group=%q,tenant_id=%q,quantile="0.99"}`, d.group, tenant)
		var got []sample
		require.True(t, assertEventually(40*time.Second, func() bool {
			got, _ = prom.QueryE(sel)
			return len(got) == 1
		}), "no poll-latency quantile %s; last %v", sel, got)
		t.Logf("after %s: %s = %v", since(), labelString(got[0].Labels), got[0].Value)
		assert.Greater(t, got[0].Value, 0.0)
		assert.Less(t, got[0].Value, 0.5, "a poll on loopback takes less than the poll timeout")
	}

	// ---- durability: Prometheus down, gateway restarted meanwhile -----------------------------
	for _, d := range devices {
		prom.eventuallyValue(t, fmt.Sprintf(`count(timestamp(electrical_voltage_volts{device_id=%q,phase="A"}) > time() - 10)`, d.id), 1, 30*time.Second)
	}
	queued := func(tenant string) func() bool {
		return func() bool {
			n, err := scrapeSum(gw.telemetry, "otelcol_exporter_queue_size", fmt.Sprintf(`exporter="tenantremotewrite/[%s]"`, tenant))
			return err == nil && n >= 1
		}
	}
	prom.Stop(t)
	down := time.Now()
	// Each tenant's queue holds data Prometheus did not take.
	for _, d := range devices {
		require.True(t, assertEventually(30*time.Second, queued(d.tenant)),
			"the queue of tenant %s held nothing while Prometheus was down: %v", d.tenant, gw.queues())
	}
	// The queues batch when read, so they hold data from the first refused call: keep the outage going
	// for a few polls so that readings polled inside it are held by the gateway across its restart.
	if rest := 4*time.Second - time.Since(down); rest > 0 {
		time.Sleep(rest) //nolint:forbidigo // the outage must last: readings polled inside it are the subject
	}
	t.Logf("after %s, Prometheus down for %s: %v", since(), time.Since(down).Round(100*time.Millisecond), gw.queues())
	gw.stop(t)
	restarted := time.Now()
	gw.Start(t)
	// The restarted gateway reloads each tenant's queue from its file_storage directory (the readings
	// of the outage so far exist nowhere else: the edge handed them over before the restart).
	for _, d := range devices {
		require.True(t, assertEventually(10*time.Second, func() bool {
			for _, line := range strings.Split(gw.output(), "\n") {
				if strings.Contains(line, "Restoring queue of tenant") && strings.Contains(line, fmt.Sprintf(`"tenant": %q`, d.tenant)) {
					return true
				}
			}
			return false
		}), "the restarted gateway did not restore the queue of tenant %s", d.tenant)
	}
	t.Logf("after %s, gateway restarted: %v", since(), gw.queues())
	if rest := 4*time.Second - time.Since(restarted); rest > 0 {
		time.Sleep(rest) //nolint:forbidigo // readings polled after the restart, held too (asserted below)
	}
	up := time.Now()
	prom.Start(t)
	t.Logf("after %s, Prometheus was down for %s", since(), up.Sub(down).Round(100*time.Millisecond))

	// Readings timestamped inside the outage arrive (a margin of one poll at either end of each
	// window): those the gateway held across its restart and those it received afterwards.
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"before the gateway restart", down.Add(pollInterval), restarted.Add(-pollInterval)},
		{"after the gateway restart", restarted.Add(pollInterval), up.Add(-pollInterval)},
	}
	for _, w := range windows {
		rangeSec := int(w.to.Sub(w.from).Seconds())
		require.GreaterOrEqual(t, rangeSec, 2, w.name)
		at := float64(w.to.UnixMilli()) / 1000
		want := float64(rangeSec) / pollInterval.Seconds() / 2 // at least half of the polls of the window
		for _, d := range devices {
			for _, metric := range []string{fmt.Sprintf(`electrical_voltage_volts{device_id=%q,phase="A",tenant_id=%q}`, d.id, d.tenant),
				fmt.Sprintf(`iiot_device_up{device_id=%q,tenant_id=%q}`, d.id, d.tenant)} {
				q := fmt.Sprintf(`count_over_time(%s[%ds] @ %.3f)`, metric, rangeSec, at)
				var got []sample
				require.True(t, assertEventually(60*time.Second, func() bool {
					got, _ = prom.QueryE(q)
					return len(got) == 1 && got[0].Value >= want
				}), "readings of the outage (%s) did not arrive: %s = %v (want >= %v)\nqueues: %v", w.name, q, got, want, gw.queues())
				t.Logf("after %s, %s: %s = %v", since(), w.name, q, got[0].Value)
			}
		}
	}

	// No hole anywhere in the outage: a request lost by the gateway (it batches for 5 s) would leave
	// one of 5 s; a skipped poll on a busy machine leaves one of 2 s.
	for _, d := range devices {
		from, to := down.Add(-2*time.Second), up.Add(-pollInterval)
		times, err := sampleTimes(prom, fmt.Sprintf(`electrical_voltage_volts{device_id=%q,phase="A"}`, d.id), from, to)
		require.NoError(t, err)
		rel := make([]string, len(times))
		for i, ts := range times {
			rel[i] = ts.Sub(down).Round(10 * time.Millisecond).String()
		}
		t.Logf("%s: samples relative to Prometheus' stop (gateway restart at +%s, Prometheus start at +%s): %v", d.id,
			restarted.Sub(down).Round(10*time.Millisecond), up.Sub(down).Round(10*time.Millisecond), rel)
		prev := from
		for _, ts := range append(times, to) {
			require.LessOrEqual(t, ts.Sub(prev), 3*pollInterval, "%s: no sample between %s and %s (relative to Prometheus' stop): %v",
				d.id, prev.Sub(down).Round(10*time.Millisecond), ts.Sub(down).Round(10*time.Millisecond), rel)
			prev = ts
		}
	}

	// The queues drain, and nothing was refused: Prometheus answers 400 to out-of-order samples;
	// the gateway drops such a request and counts it as failed.
	require.True(t, assertEventually(30*time.Second, func() bool {
		n, err := scrapeSum(gw.telemetry, "otelcol_exporter_queue_size", `exporter="tenantremotewrite/[`)
		return err == nil && n == 0
	}), "the queues did not drain: %v", gw.queues())
	failed, err := scrapeSum(gw.telemetry, "otelcol_exporter_send_failed_metric_points", `exporter="tenantremotewrite/[`)
	require.NoError(t, err)
	assert.Zero(t, failed, "metric points the gateway failed to send")
	refused, err := scrapeSum(prom.URL()+"/metrics", "prometheus_http_requests_total", `handler="/api/v1/write"`, `code="400"`)
	require.NoError(t, err)
	assert.Zero(t, refused, "remote-write requests Prometheus refused since its restart")
	sent, _ := scrapeLines(gw.telemetry, "otelcol_exporter_sent_metric_points")
	t.Logf("after %s, gateway since its restart: %v", since(), sent)
}
