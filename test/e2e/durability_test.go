//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- VictoriaMetrics (Debian's victoria-metrics) ------------------------------------------------

type victoriaMetrics struct {
	*process
	port int
}

// startVictoriaMetrics starts a single-node VictoriaMetrics on a free loopback port with its own
// data directory and waits until it is ready. It accepts out-of-order and old samples.
func startVictoriaMetrics(t testing.TB) *victoriaMetrics {
	t.Helper()
	bin, err := exec.LookPath("victoria-metrics")
	require.NoError(t, err, "victoria-metrics not installed: run 'make deps'")
	dir := t.TempDir()
	port := freePort(t)
	vm := &victoriaMetrics{port: port, process: &process{
		name: "victoria-metrics",
		path: bin,
		args: []string{
			"-httpListenAddr=127.0.0.1:" + strconv.Itoa(port),
			"-storageDataPath=" + filepath.Join(dir, "data"),
			"-retentionPeriod=10y",
			"-search.latencyOffset=0s",
			"-search.disableCache",
			"-loggerLevel=WARN",
		},
		env: os.Environ(),
		dir: dir,
	}}
	vm.register(t)
	vm.Start(t)
	return vm
}

// Start (re)starts VictoriaMetrics on its port and data directory and waits until it is ready.
func (v *victoriaMetrics) Start(t testing.TB) {
	t.Helper()
	v.start(t)
	require.Eventually(t, func() bool {
		resp, err := http.Get(v.URL() + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "victoria-metrics did not become ready:\n%s", v.output())
}

// Stop stops VictoriaMetrics; its data stays for the next Start.
func (v *victoriaMetrics) Stop(t testing.TB) { v.stop(t) }

func (v *victoriaMetrics) URL() string { return "http://127.0.0.1:" + strconv.Itoa(v.port) }

// RemoteWriteURL is where the collector writes (Prometheus remote-write protocol).
func (v *victoriaMetrics) RemoteWriteURL() string { return v.URL() + "/api/v1/write" }

// rawSamples returns every stored sample of the series matching selector, duplicates included
// (the export API returns raw samples): instance -> ms -> values.
func (v *victoriaMetrics) rawSamples(selector string) (map[string]map[int64][]float64, error) {
	resp, err := http.Get(v.URL() + "/api/v1/export?match[]=" + url.QueryEscape(selector))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("export %s: %s", selector, resp.Status)
	}
	out := map[string]map[int64][]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, err
		}
		inst := line.Metric["instance"]
		if out[inst] == nil {
			out[inst] = map[int64][]float64{}
		}
		for i, ts := range line.Timestamps {
			out[inst][ts] = append(out[inst][ts], line.Values[i])
		}
	}
	return out, sc.Err()
}

// ---- the outage ----------------------------------------------------------------------------------

// A long outage compressed: VictoriaMetrics is down for ~30 s against max_sample_age 12s, and the
// collector is killed (SIGKILL) once during it. Both delivery modes run against the same kind of
// backend, one after the other, so the time from the backend's return to the first fresh sample is
// measured before (in_order) and after (fresh_first) in the same run. Through VictoriaMetrics'
// export API (raw samples): with fresh_first, fresh samples arrive before the backlog completes;
// the backlog completes; nothing older than max_sample_age at the backend's return was sent;
// nothing else acknowledged is missing, nothing is duplicated.
func TestDurabilityOutageVictoriaMetrics(t *testing.T) {
	times := map[string][2]time.Duration{}
	for _, mode := range []string{"in_order", "fresh_first"} {
		t.Run(mode, func(t *testing.T) {
			fresh, backlog := runVMOutage(t, mode)
			times[mode] = [2]time.Duration{fresh, backlog}
		})
	}
	for mode, d := range times {
		t.Logf("%s: from the backend's return: first fresh sample visible after %v, backlog complete after %v", mode, d[0].Round(time.Millisecond), d[1].Round(time.Millisecond))
	}
}

func runVMOutage(t *testing.T, mode string) (toFresh, toBacklog time.Duration) {
	const maxAge = 12 * time.Second
	vm := startVictoriaMetrics(t)
	// The order in which requests reach the backend is seen in front of it: VictoriaMetrics shows
	// a sample only after its next flush, so two requests a few ms apart look simultaneous there.
	obs := startRWObserver(t, nil)
	obs.forward = vm.RemoteWriteURL()
	otlpPort, telemetryPort := freePort(t), freePort(t)
	col := startCollectorTestdata(t, nil, vars{"Storage": t.TempDir(), "OTLPPort": otlpPort, "RemoteWriteURL": obs.URL() + "/api/v1/write", "MaxSampleAge": maxAge, "Mode": mode, "TelemetryPort": telemetryPort}, "durability/outage.yaml")
	endpoint := fmt.Sprintf("127.0.0.1:%d", otlpPort)
	waitOTLP(t, endpoint)

	var devices []crashDevice
	for i := range 20 {
		devices = append(devices, crashDevice{id: fmt.Sprintf("meter-%02d", i), protocol: "dlt645"})
	}
	sender := startCrashSender(t, endpoint, 50*time.Millisecond, devices)

	sender.waitAcked(t, 20)
	vm.Stop(t)
	down := time.Now()
	sender.waitAcked(t, sender.ackedCount()+200) // ~10 s
	col.kill(t)
	col.start(t)
	waitOTLP(t, endpoint)
	sender.waitAcked(t, sender.ackedCount()+400) // ~20 s more: the outage outlasts max_sample_age
	vm.Start(t)
	up := time.Now()

	// From the backend's return: when is the first fresh sample (produced after it) visible, and
	// when is the backlog that is young enough complete?
	acked := func() []crashExport { a, _ := sender.results(); return a }
	backlogFrom := up.Add(-maxAge + 2*time.Second).UnixMilli() // kept: younger than max_sample_age at return, with 2 s margin
	var freshAt, backlogAt time.Duration
	require.True(t, assertEventuallyEvery(60*time.Second, 20*time.Millisecond, func() bool {
		got, err := vm.rawSamples(`e2e_crash_seq`)
		if err != nil {
			return false
		}
		now := time.Since(up) // one time per poll: what this poll sees arrived by then
		if freshAt == 0 {
			for _, samples := range got {
				for ms := range samples {
					if ms >= up.UnixMilli() {
						freshAt = now
					}
				}
			}
		}
		if backlogAt == 0 {
			complete := true
			for _, e := range acked() {
				if e.ms >= backlogFrom && e.ms < up.UnixMilli() && len(got[devices[0].id][e.ms]) == 0 {
					complete = false
					break
				}
			}
			if complete {
				backlogAt = now
			}
		}
		return freshAt > 0 && backlogAt > 0
	}), "fresh samples or the backlog did not arrive:\n%s", col.output())
	t.Logf("%s: backend back; first fresh sample after %v, backlog complete after %v", mode, freshAt, backlogAt)

	sender.waitAcked(t, sender.ackedCount()+20)
	sender.Stop()
	telemetry := fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort)
	require.True(t, assertEventually(60*time.Second, func() bool {
		n, err := scrapeSum(telemetry, "otelcol_exporter_queue_size", `exporter="tenantremotewrite`)
		return err == nil && n == 0
	}), "the queues did not drain:\n%s", col.output())

	all, failed := sender.results()
	sent := map[int64]float64{}
	for _, e := range append(append([]crashExport(nil), all...), failed...) {
		sent[e.ms] = e.value
	}
	var missing, tooOld, dups, extra []string
	ok := assertEventually(30*time.Second, func() bool {
		missing, tooOld, dups, extra = nil, nil, nil, nil
		got, err := vm.rawSamples(`e2e_crash_seq`)
		if err != nil {
			missing = []string{err.Error()}
			return false
		}
		for _, e := range all {
			for _, d := range devices {
				vals := got[d.id][e.ms]
				switch {
				// produced inside the outage and older than max_sample_age when the backend came back
				case e.ms > down.Add(time.Second).UnixMilli() && e.ms < up.Add(-maxAge-2*time.Second).UnixMilli():
					if len(vals) > 0 {
						tooOld = append(tooOld, fmt.Sprintf("%s@%d", d.id, e.ms))
					}
				case e.ms < down.Add(-time.Second).UnixMilli() || e.ms >= backlogFrom:
					if len(vals) == 0 {
						missing = append(missing, fmt.Sprintf("%s@%d", d.id, e.ms))
					}
				}
				if len(vals) > 1 {
					dups = append(dups, fmt.Sprintf("%s@%d x%d", d.id, e.ms, len(vals)))
				}
			}
		}
		for inst, samples := range got {
			for ms, vals := range samples {
				if want, ok := sent[ms]; !ok || vals[0] != want {
					extra = append(extra, fmt.Sprintf("%s@%d=%v", inst, ms, vals))
				}
			}
		}
		return len(missing) == 0
	})
	t.Logf("%s: %d exports acknowledged (%d devices each); missing %d, older than max_sample_age %d, duplicated %d, never sent %d",
		mode, len(all), len(devices), len(missing), len(tooOld), len(dups), len(extra))
	assert.True(t, ok, "acknowledged samples missing (%d): %v", len(missing), head(missing, 20))
	assert.Empty(t, len(tooOld), "samples older than max_sample_age at the backend's return were sent: %v", head(tooOld, 20))
	assert.Empty(t, len(dups), "duplicated samples: %v", head(dups, 20))
	assert.Empty(t, len(extra), "samples never sent: %v", head(extra, 20))

	dropped, err := scrapeSum(telemetry, "otelcol_exporter_tenantremotewrite_dropped_data_points", `reason="max_sample_age"`)
	require.NoError(t, err)
	assert.Positive(t, dropped, "expired points are counted")
	failedPoints, err := scrapeLines(telemetry, "otelcol_exporter_send_failed_metric_points")
	require.NoError(t, err)
	assert.Empty(t, failedPoints, "nothing refused by the backend")

	// The order as the backend received it: the request that brought the first fresh sample and
	// the one that completed the backlog (requests the backend accepted, in arrival order).
	firstFresh, backlogDone := -1, -1
	backlogLeft := map[int64]bool{}
	for _, e := range all {
		if e.ms >= backlogFrom && e.ms < up.UnixMilli() {
			backlogLeft[e.ms] = true
		}
	}
	require.NotEmpty(t, backlogLeft, "no export acknowledged in the backlog window")
	for i, r := range obs.all() {
		if r.status/100 != 2 {
			continue
		}
		for _, s := range r.samples {
			if !strings.HasPrefix(s.series, "e2e_crash_seq{") {
				continue
			}
			if s.ts >= up.UnixMilli() && firstFresh < 0 {
				firstFresh = i
			}
			if strings.Contains(s.series+",", "instance="+devices[0].id+",") || strings.Contains(s.series, "instance="+devices[0].id+"}") {
				delete(backlogLeft, s.ts)
			}
		}
		if len(backlogLeft) == 0 && backlogDone < 0 {
			backlogDone = i
		}
	}
	t.Logf("%s: at the backend, request #%d brought the first fresh sample, request #%d completed the backlog", mode, firstFresh, backlogDone)
	require.GreaterOrEqual(t, firstFresh, 0, "no fresh sample reached the backend")
	require.GreaterOrEqual(t, backlogDone, 0, "the backlog never completed at the backend")
	if mode == "fresh_first" {
		assert.Less(t, firstFresh, backlogDone, "fresh data first: the backlog was through before the first fresh sample")
	} else {
		// One request may carry the end of the backlog and the first fresh samples.
		assert.LessOrEqual(t, backlogDone, firstFresh, "in order: the backlog before the fresh sample")
	}
	return freshAt, backlogAt
}

// assertEventuallyEvery polls cond every tick until it holds or wait has passed.
func assertEventuallyEvery(wait, tick time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(wait)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-ticker.C
	}
}

// A queue file torn by a power cut (here: truncated to half while the collector is down) never
// makes the collector crash-loop: the built binary starts, moves the file aside, logs it once and
// delivers new data. Before, bbolt panicked while opening the file at every start.
func TestDurabilityTornQueueFile(t *testing.T) {
	prom := startPrometheus(t)
	prom.Stop(t) // the outage fills the queue
	otlpPort := freePort(t)
	storage := t.TempDir()
	col := startCollectorTestdata(t, nil, vars{"Storage": storage, "OTLPPort": otlpPort, "RemoteWriteURL": prom.RemoteWriteURL()}, "durability/torn.yaml")
	endpoint := fmt.Sprintf("127.0.0.1:%d", otlpPort)
	waitOTLP(t, endpoint)
	devices := []crashDevice{{id: "meter-1", protocol: "dlt645"}}
	sender := startCrashSender(t, endpoint, 20*time.Millisecond, devices)
	sender.waitAcked(t, 300)
	sender.Stop()
	col.kill(t)

	queue := filepath.Join(storage, "exporter_tenantremotewrite__metrics")
	b, err := os.ReadFile(queue)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(queue, b[:len(b)/2], 0o600))
	t.Logf("queue file truncated from %d to %d bytes", len(b), len(b)/2)

	prom.Start(t)
	startedAt := len(col.output())
	col.start(t)
	waitOTLP(t, endpoint)
	after := startCrashSender(t, endpoint, 50*time.Millisecond, devices)
	after.waitAcked(t, 20)
	after.Stop()
	require.True(t, col.running(), "the collector exited:\n%s", col.output()[startedAt:])
	out := col.output()[startedAt:]
	assert.Equal(t, 1, strings.Count(out, "Persistent queue file is corrupt"), "logged once:\n%s", out)
	aside, _ := filepath.Glob(queue + ".corrupt-*")
	assert.Len(t, aside, 1, "the torn file is kept aside")
	acked, _ := after.results()
	last := acked[len(acked)-1]
	require.True(t, assertEventually(30*time.Second, func() bool {
		got, err := queryRawSamples(prom, `e2e_crash_seq[10m]`)
		return err == nil && got["meter-1"][last.ms] == last.value
	}), "new data did not arrive:\n%s", out)
}
