//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// ---- a deterministic OTLP source --------------------------------------------------------------

// tenantDevice is one device the sender reports for; every tick it sends the gauge e2e.seq with
// value = tick number and the current time.
type tenantDevice struct {
	id, protocol string
}

// tenantSender sends one batch per tick over OTLP/gRPC with a real client. A batch the collector
// does not accept (e.g. while it restarts) is sent again, identical, until it is accepted; the
// accepted ticks are what the backends must end up with, exactly.
type tenantSender struct {
	endpoint string
	devices  []tenantDevice

	mu       sync.Mutex
	accepted map[string][]float64 // device id -> values accepted by the collector, in order
	stop     chan struct{}
	done     chan struct{}
}

func startTenantSender(t *testing.T, endpoint string, every time.Duration, devices ...tenantDevice) *tenantSender {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	client := pmetricotlp.NewGRPCClient(conn)
	s := &tenantSender{endpoint: endpoint, devices: devices, accepted: map[string][]float64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for tick := 1; ; tick++ {
			md := pmetric.NewMetrics()
			now := pcommon.NewTimestampFromTime(time.Now())
			for _, d := range devices {
				rm := md.ResourceMetrics().AppendEmpty()
				rm.Resource().Attributes().PutStr("device.id", d.id)
				rm.Resource().Attributes().PutStr("device.protocol", d.protocol)
				m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
				m.SetName("e2e.seq")
				dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
				dp.SetTimestamp(now)
				dp.SetDoubleValue(float64(tick))
			}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
				cancel()
				if err == nil {
					break
				}
				select {
				case <-s.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			s.mu.Lock()
			for _, d := range devices {
				s.accepted[d.id] = append(s.accepted[d.id], float64(tick))
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop ends sending (idempotent) and waits for the sender.
func (s *tenantSender) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *tenantSender) values(device string) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]float64(nil), s.accepted[device]...)
}

func sumOf(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}

// waitExact waits until Prometheus holds exactly the accepted values of a device: as many
// samples and the same sum, and no value twice.
func waitExact(t *testing.T, p *prometheus, selector string, want []float64) {
	t.Helper()
	p.eventuallyValue(t, fmt.Sprintf("count_over_time(%s[1h])", selector), float64(len(want)), 90*time.Second)
	p.eventuallyValue(t, fmt.Sprintf("sum_over_time(%s[1h])", selector), sumOf(want), 30*time.Second)
	// values are the tick numbers: a repeated or missing tick changes min/max/count together
	p.eventuallyValue(t, fmt.Sprintf("min_over_time(%s[1h])", selector), want[0], 10*time.Second)
	p.eventuallyValue(t, fmt.Sprintf("max_over_time(%s[1h])", selector), want[len(want)-1], 10*time.Second)
}

func waitOTLP(t *testing.T, endpoint string) {
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", endpoint)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 60*time.Second, 100*time.Millisecond)
}

// ---- remote-write observers ------------------------------------------------------------------

// rwSample is one sample a remote-write observer saw accepted.
type rwSample struct {
	series string
	ts     int64
	value  float64
}

// rwObserver is a remote-write endpoint on loopback. It records the headers and samples of every
// request, in arrival order, and either answers itself (204), forwards every request to one backend,
// or forwards to a backend chosen from the URL path /insert/{tenant}/api/v1/write (a tenant router
// in front of real Prometheus instances); a backend that is down answers 503.
type rwObserver struct {
	srv      *http.Server
	addr     string
	backends map[string]string // tenant -> remote-write URL; nil: answer 204 itself (or forward)
	forward  string            // every request to this remote-write URL (backends nil)

	mu       sync.Mutex
	requests []rwObserved
}

type rwObserved struct {
	tenant  string // from the path (router) or X-Scope-OrgID
	header  http.Header
	status  int
	samples []rwSample
}

func startRWObserver(t *testing.T, backends map[string]string) *rwObserver {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	o := &rwObserver{addr: l.Addr().String(), backends: backends}
	o.srv = &http.Server{Handler: http.HandlerFunc(o.handle), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = o.srv.Serve(l) }()
	t.Cleanup(func() { _ = o.srv.Close() })
	return o
}

func (o *rwObserver) URL() string { return "http://" + o.addr }

func (o *rwObserver) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var samples []rwSample
	if raw, err := snappy.Decode(nil, body); err == nil {
		var wr prompb.WriteRequest
		if wr.Unmarshal(raw) == nil {
			for _, ts := range wr.Timeseries {
				key := seriesString(ts.Labels)
				for _, s := range ts.Samples {
					samples = append(samples, rwSample{series: key, ts: s.Timestamp, value: s.Value})
				}
			}
		}
	}
	tenant := r.Header.Get("X-Scope-OrgID")
	status := http.StatusNoContent
	if o.forward != "" {
		status = forwardRW(o.forward, r.Header, body)
	}
	if o.backends != nil {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) < 2 || parts[0] != "insert" || o.backends[parts[1]] == "" {
			status = http.StatusNotFound
		} else {
			tenant = parts[1]
			status = forwardRW(o.backends[tenant], r.Header, body)
		}
	}
	o.mu.Lock()
	o.requests = append(o.requests, rwObserved{tenant: tenant, header: r.Header.Clone(), status: status, samples: samples})
	o.mu.Unlock()
	w.WriteHeader(status)
}

func forwardRW(url string, h http.Header, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadGateway
	}
	for _, k := range []string{"Content-Encoding", "Content-Type", "User-Agent", "X-Prometheus-Remote-Write-Version"} {
		req.Header.Set(k, h.Get(k))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return http.StatusServiceUnavailable // backend down: retryable for the sender
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func seriesString(labels []prompb.Label) string {
	var name string
	var rest []string
	for _, l := range labels {
		if l.Name == "__name__" {
			name = l.Value
			continue
		}
		rest = append(rest, l.Name+"="+l.Value)
	}
	sort.Strings(rest)
	return name + "{" + strings.Join(rest, ",") + "}"
}

func (o *rwObserver) all() []rwObserved {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]rwObserved(nil), o.requests...)
}

// acceptedSamples returns, per tenant, the samples of metric name in requests answered 2xx.
func (o *rwObserver) acceptedSamples(name string) map[string][]rwSample {
	out := map[string][]rwSample{}
	for _, r := range o.all() {
		if r.status/100 != 2 {
			continue
		}
		for _, s := range r.samples {
			if strings.HasPrefix(s.series, name+"{") {
				out[r.tenant] = append(out[r.tenant], s)
			}
		}
	}
	return out
}

// duplicates counts samples (series and timestamp) accepted more than once.
func duplicates(samples []rwSample) int {
	seen := map[string]bool{}
	n := 0
	for _, s := range samples {
		k := fmt.Sprintf("%s@%d", s.series, s.ts)
		if seen[k] {
			n++
		}
		seen[k] = true
	}
	return n
}

// ---- tests ---------------------------------------------------------------------------------------

// Single tenant, durable: Prometheus is stopped for a while, the collector is restarted while it
// is down, Prometheus comes back: every sample the collector accepted meanwhile is in Prometheus,
// exactly once, in order (Prometheus 2.42 refuses out-of-order samples).
func TestTenantRemoteWriteDurableSingleTenant(t *testing.T) {
	prom := startPrometheus(t)
	otlpPort := freePort(t)
	storage := t.TempDir()
	col := startCollectorTestdata(t, nil, vars{"StorageDir": storage, "OTLPPort": otlpPort, "RemoteWrite": prom.RemoteWriteURL()}, "tenant/single.yaml")
	endpoint := fmt.Sprintf("127.0.0.1:%d", otlpPort)
	waitOTLP(t, endpoint)

	sender := startTenantSender(t, endpoint, 150*time.Millisecond, tenantDevice{id: "meter-1", protocol: "dlt645"})
	selector := `e2e_seq{job="dlt645",instance="meter-1"}`
	prom.eventuallyValue(t, "count_over_time("+selector+"[1h]) > bool 3", 1, 60*time.Second) // flowing

	prom.Stop(t)
	time.Sleep(2 * time.Second) //nolint:forbidigo // data produced while Prometheus is down
	col.Restart(t)              // ... and the collector restarts meanwhile
	waitOTLP(t, endpoint)
	time.Sleep(2 * time.Second) //nolint:forbidigo // more data produced while Prometheus is down, after the restart
	prom.Start(t)
	time.Sleep(time.Second) //nolint:forbidigo // and some produced after it is back
	sender.Stop()

	want := sender.values("meter-1")
	require.Greater(t, len(want), 20)
	t.Logf("accepted by the collector: %d samples", len(want))
	waitExact(t, prom, selector, want)
}

// Two tenants, two real Prometheus instances behind one endpoint template; a second exporter in
// header mode to a server that records headers. Tenant B's Prometheus is stopped: A keeps
// flowing; the collector restarts while B is down; B comes back and receives every sample held
// for it, exactly once.
func TestTenantRemoteWriteTwoTenants(t *testing.T) {
	promA, promB := startPrometheus(t), startPrometheus(t)
	router := startRWObserver(t, map[string]string{"a": promA.RemoteWriteURL(), "b": promB.RemoteWriteURL()})
	headers := startRWObserver(t, nil)

	otlpPort := freePort(t)
	col := startCollectorTestdata(t, nil, vars{"StorageDir": t.TempDir(), "OTLPPort": otlpPort, "Registry": testdataPath(t, "tenant/registry.csv"),
		"Router": router.URL(), "Headers": headers.URL()}, "tenant/two_tenants.yaml")
	endpoint := fmt.Sprintf("127.0.0.1:%d", otlpPort)
	waitOTLP(t, endpoint)

	sender := startTenantSender(t, endpoint, 150*time.Millisecond,
		tenantDevice{id: "inv-01", protocol: "modbus"}, tenantDevice{id: "meter-7", protocol: "dlt645"})
	selA, selB := `e2e_seq{job="modbus",instance="inv-01"}`, `e2e_seq{job="dlt645",instance="meter-7"}`
	promA.eventuallyValue(t, "count_over_time("+selA+"[1h]) > bool 3", 1, 60*time.Second)
	promB.eventuallyValue(t, "count_over_time("+selB+"[1h]) > bool 3", 1, 60*time.Second)

	// Each Prometheus has its own tenant's series only.
	assert.Empty(t, promA.Query(t, `count_over_time(e2e_seq{instance="meter-7"}[1h])`))
	assert.Empty(t, promB.Query(t, `count_over_time(e2e_seq{instance="inv-01"}[1h])`))

	// Header mode: X-Scope-OrgID per tenant, each request with its own tenant's series only.
	require.Eventually(t, func() bool { return len(headers.acceptedSamples("e2e_seq")) == 2 }, 30*time.Second, 100*time.Millisecond)
	for _, r := range headers.all() {
		require.Contains(t, []string{"a", "b"}, r.tenant, "every request carries X-Scope-OrgID")
		for _, s := range r.samples {
			if strings.HasPrefix(s.series, "e2e_seq{") {
				want := map[string]string{"a": "instance=inv-01", "b": "instance=meter-7"}[r.tenant]
				require.Contains(t, s.series, want, "tenant %s got a series of the other tenant", r.tenant)
			}
		}
	}

	// B's backend goes down; A keeps flowing.
	promB.Stop(t)
	before := len(router.acceptedSamples("e2e_seq")["a"])
	require.Eventually(t, func() bool { return len(router.acceptedSamples("e2e_seq")["a"]) >= before+10 }, 30*time.Second, 100*time.Millisecond,
		"tenant a must not be held up by tenant b's outage")

	// The collector restarts while B is down; A flows again after the restart.
	col.Restart(t)
	waitOTLP(t, endpoint)
	before = len(router.acceptedSamples("e2e_seq")["a"])
	require.Eventually(t, func() bool { return len(router.acceptedSamples("e2e_seq")["a"]) >= before+10 }, 60*time.Second, 100*time.Millisecond)

	// B comes back: everything held for it arrives.
	promB.Start(t)
	time.Sleep(time.Second) //nolint:forbidigo // data produced after B is back
	sender.Stop()

	wantA, wantB := sender.values("inv-01"), sender.values("meter-7")
	require.Greater(t, len(wantB), 30)
	t.Logf("accepted by the collector: a %d samples, b %d samples", len(wantA), len(wantB))
	waitExact(t, promA, selA, wantA)
	waitExact(t, promB, selB, wantB)
	accepted := router.acceptedSamples("e2e_seq")
	assert.Zero(t, duplicates(accepted["a"]), "a: no sample sent twice")
	assert.Zero(t, duplicates(accepted["b"]), "b: no sample sent twice")
	assert.Len(t, accepted["b"], len(wantB))
	for _, r := range router.all() {
		if r.status == http.StatusBadRequest {
			t.Errorf("a request was refused with 400 (out of order?): tenant %s", r.tenant)
		}
	}
	restored := false
	for _, line := range strings.Split(col.output(), "\n") {
		if strings.Contains(line, "Restoring queue of tenant") && strings.Contains(line, `"tenant": "b"`) {
			restored = true
			t.Log(line[strings.Index(line, "Restoring"):])
		}
	}
	assert.True(t, restored, "b's queue was restored at start (it held data)")
}
