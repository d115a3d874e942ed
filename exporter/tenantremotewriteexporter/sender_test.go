package tenantremotewriteexporter

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	prw "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/featuregate"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// polls is n devices polled `polls` times a second apart, as one queued request of the edge holds
// them (10 s flush): each poll its own resources, the same resource attributes every poll. Each
// resource also carries a histogram, so every kind of series the translator makes is compared.
func polls(tb testing.TB, devices, polls int) pmetric.Metrics {
	tick := tickBatch(tb, devices)
	md := pmetric.NewMetrics()
	for p := range polls {
		shift := pcommon.Timestamp(p) * pcommon.Timestamp(time.Second)
		for i := range tick.ResourceMetrics().Len() {
			rm := md.ResourceMetrics().AppendEmpty()
			tick.ResourceMetrics().At(i).CopyTo(rm)
			h := rm.ScopeMetrics().At(0).Metrics().AppendEmpty()
			h.SetName("iiot.device.poll.latency")
			h.SetUnit("s")
			hist := h.SetEmptyHistogram()
			hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := hist.DataPoints().AppendEmpty()
			dp.SetTimestamp(1000000)
			dp.ExplicitBounds().FromRaw([]float64{0.01, 0.1})
			dp.BucketCounts().FromRaw([]uint64{uint64(p), 1, 0})
			dp.SetCount(uint64(p) + 1)
			dp.SetSum(0.02 * float64(p+1))
			shiftPoints(rm, shift)
		}
	}
	return md
}

// shiftPoints moves every point of a resource by d.
func shiftPoints(rm pmetric.ResourceMetrics, d pcommon.Timestamp) {
	ms := rm.ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		m := ms.At(i)
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			for j := range m.Gauge().DataPoints().Len() {
				dp := m.Gauge().DataPoints().At(j)
				dp.SetTimestamp(dp.Timestamp() + d)
			}
		case pmetric.MetricTypeSum:
			for j := range m.Sum().DataPoints().Len() {
				dp := m.Sum().DataPoints().At(j)
				dp.SetTimestamp(dp.Timestamp() + d)
			}
		case pmetric.MetricTypeHistogram:
			for j := range m.Histogram().DataPoints().Len() {
				dp := m.Histogram().DataPoints().At(j)
				dp.SetTimestamp(dp.Timestamp() + d)
			}
		default:
		}
	}
}

// received is what a server got, by series: samples in time order, exemplar count, requests.
type received struct {
	samples   map[string][]sample // Series left empty
	exemplars map[string]int
	requests  int
}

func receivedBy(s *rwServer) received {
	out := received{samples: map[string][]sample{}, exemplars: map[string]int{}}
	for _, r := range s.requestsCopy() {
		out.requests++
		for _, ts := range r.Series {
			k := seriesKey(ts.Labels)
			for _, smp := range ts.Samples {
				out.samples[k] = append(out.samples[k], sample{TS: smp.Timestamp, Value: smp.Value})
			}
			out.exemplars[k] += len(ts.Exemplars)
		}
	}
	for _, smp := range out.samples {
		slices.SortFunc(smp, func(a, b sample) int { return cmp.Compare(a.TS, b.TS) })
	}
	return out
}

// senderConfig is the remote-write part of our default config, sending to url with nothing
// in between (no queue, no retries), as newPipeline runs it.
func senderConfig(url string) *prw.Config {
	cfg := createDefaultConfig().(*Config).Config
	cfg.HTTP.Endpoint = url
	cfg.RemoteWriteQueue.Enabled = false
	cfg.BackOffConfig.Enabled = false
	cfg.TimeoutSettings.Timeout = 0
	return &cfg
}

func senderSettings() exporter.Settings {
	set := exportertest.NewNopSettings(metadata.Type)
	set.BuildInfo = component.BuildInfo{Command: "otelcol-iiot", Description: "OTel IIoT Collector", Version: "1.2.3"}
	set.Logger = zap.New(zapcore.NewNopCore())
	return set
}

// startSender starts an rwSender for cfg; shut down at cleanup.
func startSender(t *testing.T, cfg *prw.Config, host component.Host) *rwSender {
	t.Helper()
	s, err := newRWSender(senderSettings(), cfg, nil)
	require.NoError(t, err)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, s.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return s
}

// The same input through contrib's exporter and through ours reaches the backend as the same
// series with the same samples and exemplars, except target_info: contrib sends one sample per
// poll, ours the newest only. Checked with and without a namespace (target_info is then prefixed).
// Contrib's input has the promoted attributes copied onto its points; ours gets the points as
// queued and adds them as labels in its translator.
func TestSenderSendsWhatContribSends(t *testing.T) {
	for _, ns := range []string{"", "plant"} {
		t.Run("namespace="+ns, func(t *testing.T) {
			md := polls(t, 3, 10)
			theirs, ours := newRWServer(t), newRWServer(t)

			cc := senderConfig(theirs.URL)
			cc.Namespace = ns
			cc.ExternalLabels = map[string]string{"site region": "north"}
			set := senderSettings()
			set.ID = component.MustNewID("prometheus_remote_write")
			contrib, err := prw.NewFactory().CreateMetrics(context.Background(), set, cc)
			require.NoError(t, err)
			require.NoError(t, contrib.Start(context.Background(), componenttest.NewNopHost()))
			t.Cleanup(func() { require.NoError(t, contrib.Shutdown(context.Background())) })
			in := pmetric.NewMetrics()
			md.CopyTo(in)
			promote(in, defaultPromoted)
			require.NoError(t, contrib.ConsumeMetrics(context.Background(), in))

			oc := senderConfig(ours.URL)
			oc.Namespace = ns
			oc.ExternalLabels = cc.ExternalLabels
			in = pmetric.NewMetrics()
			md.CopyTo(in)
			s, err := newRWSender(senderSettings(), oc, defaultPromoted)
			require.NoError(t, err)
			require.True(t, s.promotes)
			require.NoError(t, s.Start(context.Background(), componenttest.NewNopHost()))
			t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
			require.NoError(t, s.ConsumeMetrics(context.Background(), in))

			want, got := receivedBy(theirs), receivedBy(ours)
			require.Equal(t, 1, want.requests)
			require.Equal(t, 1, got.requests)
			targetInfo := "target_info"
			if ns != "" {
				targetInfo = ns + "_target_info"
			}
			var infos int
			for k, smp := range want.samples {
				if strings.HasPrefix(k, targetInfo+"{") {
					infos++
					require.Len(t, smp, 10, "contrib: one target_info sample per poll")
					assert.Equal(t, fmt.Sprint(smp[len(smp)-1:]), fmt.Sprint(got.samples[k]), "ours: the newest only")
					assert.Contains(t, k, "site_region=north", "external labels sanitized as contrib does")
					want.samples[k] = smp[len(smp)-1:]
				}
			}
			assert.Equal(t, 3, infos, "one target_info series per device")
			assert.Equal(t, fmt.Sprint(want.samples), fmt.Sprint(got.samples)) // NaN readings: compare as text
			assert.Equal(t, want.exemplars, got.exemplars)
			assert.NotEmpty(t, got.exemplars)
			for k := range got.samples {
				if !strings.HasPrefix(k, targetInfo+"{") {
					assert.Contains(t, k, `tenant_id=`, "promoted")
				}
			}
		})
	}
}

// newestTargetInfo also merges target_info series a translator returns separately for one label
// set (in any label order), and leaves other series alone.
func TestNewestTargetInfo(t *testing.T) {
	lbl := func(kv ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i < len(kv); i += 2 {
			out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tss := []prompb.TimeSeries{
		{Labels: lbl("__name__", "target_info", "instance", "a", "job", "j"), Samples: []prompb.Sample{{Value: 1, Timestamp: 3}, {Value: 1, Timestamp: 1}}},
		{Labels: lbl("__name__", "v", "instance", "a"), Samples: []prompb.Sample{{Value: 7, Timestamp: 1}, {Value: 8, Timestamp: 2}}},
		{Labels: lbl("job", "j", "instance", "a", "__name__", "target_info"), Samples: []prompb.Sample{{Value: 1, Timestamp: 5}}},
		{Labels: lbl("__name__", "target_info", "instance", "b", "job", "j"), Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}},
		{Labels: lbl("__name__", "x_target_info", "instance", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: 1, Timestamp: 2}}},
	}
	out := newestTargetInfo(tss, "target_info")
	require.Len(t, out, 4)
	assert.Equal(t, []prompb.Sample{{Value: 1, Timestamp: 5}}, out[0].Samples)
	assert.Len(t, out[1].Samples, 2, "other series keep every sample")
	assert.Equal(t, []prompb.Sample{{Value: 1, Timestamp: 2}}, out[2].Samples)
	assert.Len(t, out[3].Samples, 2, "another name is not target_info")
}

// target_info goes to the backend once a minute of sample time per resource: pushes 10 s apart carry
// it in the 1st, 7th and 13th; a push the backend refused does not count, so the next one carries it;
// a backlog older than what was delivered carries it again.
func TestSenderTargetInfoOncePerMinute(t *testing.T) {
	srv := newRWServer(t)
	srv.outOfOrder = true // takes the backlog, as Prometheus with out_of_order_time_window does
	var fail atomic.Bool
	srv.setStatus(func(*http.Request) int {
		if fail.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	s := startSender(t, senderConfig(srv.URL), nil)
	push := func(at time.Duration) error {
		md := polls(t, 2, 10) // polls 0 … 9 s
		for i := range md.ResourceMetrics().Len() {
			shiftPoints(md.ResourceMetrics().At(i), pcommon.Timestamp(at))
		}
		return s.ConsumeMetrics(context.Background(), md)
	}
	infos := func() []int { // per request delivered: target_info series it carried
		var out []int
		for _, r := range srv.requestsCopy() {
			n := 0
			for _, ts := range r.Series {
				if strings.HasPrefix(seriesKey(ts.Labels), "target_info{") {
					n++
				}
			}
			out = append(out, n)
		}
		return out
	}
	for k := range 13 {
		require.NoError(t, push(time.Duration(k)*10*time.Second))
	}
	assert.Equal(t, []int{2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 2}, infos())

	fail.Store(true)
	require.Error(t, push(190*time.Second), "due: carried, refused")
	fail.Store(false)
	require.NoError(t, push(200*time.Second))
	require.NoError(t, push(210*time.Second))
	require.NoError(t, push(30*time.Second), "a backlog older than what was delivered")
	got := infos()
	// the refused request is in the server's log too (with its 2 target_info series)
	assert.Equal(t, []int{2, 2, 0, 2}, got[13:], "refused, carried again, held, backlog")
}

// testAuth is a client auth extension: it adds a bearer token to every request.
type testAuth struct {
	component.StartFunc
	component.ShutdownFunc
	token string
}

type authRT struct {
	base  http.RoundTripper
	token string
}

func (a *authRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+a.token)
	return a.base.RoundTrip(r)
}

func (a *testAuth) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return &authRT{base: base, token: a.token}, nil
}

// Headers as contrib sets them, the configured static headers, the auth extension's and the
// forwarded client metadata.
func TestSenderHeaders(t *testing.T) {
	srv := newRWServer(t)
	theirs := newRWServer(t)
	authID := component.MustNewID("bearertokenauth")
	host := &testHost{exts: map[component.ID]component.Component{authID: &testAuth{token: "s3cret"}}}
	configure := func(url string) *prw.Config {
		cfg := senderConfig(url)
		cfg.HTTP.Headers = configopaque.MapList{{Name: "X-Site", Value: "lab"}}
		cfg.HTTP.Auth = configoptional.Some(configauth.Config{AuthenticatorID: authID})
		cfg.IncludeMetadataKeys = []string{"X-Scope-OrgID"}
		return cfg
	}
	ctx := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{"X-Scope-OrgID": {"acme"}})})
	require.NoError(t, startSender(t, configure(srv.URL), host).ConsumeMetrics(ctx, polls(t, 1, 1)))

	set := senderSettings()
	set.ID = component.MustNewID("prometheus_remote_write")
	contrib, err := prw.NewFactory().CreateMetrics(context.Background(), set, configure(theirs.URL))
	require.NoError(t, err)
	require.NoError(t, contrib.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, contrib.Shutdown(context.Background())) })
	require.NoError(t, contrib.ConsumeMetrics(ctx, polls(t, 1, 1)))

	got, want := srv.requestsCopy(), theirs.requestsCopy()
	require.Len(t, got, 1)
	require.Len(t, want, 1)
	h := got[0].Header
	assert.Equal(t, "snappy", h.Get("Content-Encoding"))
	assert.Equal(t, "application/x-protobuf", h.Get("Content-Type"))
	assert.Equal(t, "0.1.0", h.Get("X-Prometheus-Remote-Write-Version"))
	assert.Equal(t, "otel-iiot-collector/1.2.3", h.Get("User-Agent"))
	assert.Equal(t, "lab", h.Get("X-Site"))
	assert.Equal(t, "Bearer s3cret", h.Get("Authorization"))
	assert.Equal(t, "acme", h.Get("X-Scope-OrgID"))
	for _, k := range []string{"Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent", "X-Site", "Authorization", "X-Scope-Orgid"} {
		assert.Equal(t, want[0].Header.Values(k), h.Values(k), "as contrib: %s", k)
	}
}

// Series are split into requests within max_batch_size_bytes; together they hold everything,
// sent one at a time (the default) or several at once (max_batch_request_parallelism).
func TestSenderBatches(t *testing.T) {
	whole := newRWServer(t)
	md := polls(t, 5, 3)
	in := pmetric.NewMetrics()
	md.CopyTo(in)
	require.NoError(t, startSender(t, senderConfig(whole.URL), nil).ConsumeMetrics(context.Background(), in))
	require.Len(t, whole.requestsCopy(), 1)

	for _, parallel := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallelism=%d", parallel), func(t *testing.T) {
			split := newRWServer(t)
			cfg := senderConfig(split.URL)
			cfg.MaxBatchSizeBytes = 3000
			cfg.MaxBatchRequestParallelism = &parallel
			in := pmetric.NewMetrics()
			md.CopyTo(in)
			require.NoError(t, startSender(t, cfg, nil).ConsumeMetrics(context.Background(), in))
			reqs := split.requestsCopy()
			require.Greater(t, len(reqs), 3)
			for i, r := range reqs {
				assert.LessOrEqual(t, (&prompb.WriteRequest{Timeseries: r.Series}).Size(), 3000, "request %d", i)
			}
			assert.Equal(t, fmt.Sprint(receivedBy(whole).samples), fmt.Sprint(receivedBy(split).samples)) // NaN readings: compare as text
		})
	}
}

// send_metadata: metadata follows the series in requests of their own, as contrib sends it.
func TestSenderMetadata(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wr := decodeRequest(t, r)
		got.Add(int32(len(wr.Metadata)))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	cfg := senderConfig(srv.URL)
	cfg.SendMetadata = true
	require.NoError(t, startSender(t, cfg, nil).ConsumeMetrics(context.Background(), polls(t, 1, 1)))
	assert.Positive(t, got.Load())
}

func decodeRequest(t *testing.T, r *http.Request) prompb.WriteRequest {
	body := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	raw, err := snappy.Decode(nil, body)
	require.NoError(t, err)
	var wr prompb.WriteRequest
	require.NoError(t, wr.Unmarshal(raw))
	return wr
}

// setGate turns a contrib feature gate on for one test.
func setGate(t *testing.T, id string) {
	require.NoError(t, featuregate.GlobalRegistry().Set(id, true))
	t.Cleanup(func() { require.NoError(t, featuregate.GlobalRegistry().Set(id, false)) })
}

// Answers are classified as contrib classifies them; the answer's body (at most 1 KiB) is in the error.
func TestSenderStatusClassification(t *testing.T) {
	garbage := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.UintN(256))
	}
	cases := []struct {
		name      string
		status    int
		body      []byte
		gate429   bool
		ok        bool
		permanent bool
	}{
		{name: "204", status: http.StatusNoContent, ok: true},
		{name: "200 with a garbage body", status: http.StatusOK, body: garbage, ok: true},
		{name: "500", status: http.StatusInternalServerError, body: []byte("ingester down")},
		{name: "503", status: http.StatusServiceUnavailable},
		{name: "400", status: http.StatusBadRequest, body: []byte("out of order sample"), permanent: true},
		{name: "400 with a garbage body", status: http.StatusBadRequest, body: garbage, permanent: true},
		{name: "404", status: http.StatusNotFound, permanent: true},
		{name: "429 without the RetryOn429 gate", status: http.StatusTooManyRequests, permanent: true},
		{name: "429 with the RetryOn429 gate", status: http.StatusTooManyRequests, gate429: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gate429 {
				setGate(t, gateRetryOn429)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				decodeRequest(t, r)
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			}))
			t.Cleanup(srv.Close)
			err := startSender(t, senderConfig(srv.URL), nil).ConsumeMetrics(context.Background(), polls(t, 1, 1))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.permanent, consumererror.IsPermanent(err), "%v", err)
			assert.Contains(t, err.Error(), http.StatusText(tc.status))
			if len(tc.body) > 0 && tc.body[0] != garbage[0] {
				assert.Contains(t, err.Error(), string(tc.body))
			}
			if len(tc.body) > 1024 {
				assert.Less(t, len(err.Error()), 4*1024+200, "at most 1 KiB of the body, quoted")
				assert.NotContains(t, err.Error(), strings.ToValidUTF8(string(garbage[1024:1100]), ""), "nothing past 1 KiB")
			}
		})
	}
}

// stall is a handler that takes the request and does not answer until the client gives up (or
// the test ends). It reads the body first: the server notices a closed connection only then.
func stall(t *testing.T) func(http.ResponseWriter, *http.Request) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the servers close (cleanups run last-in first)
	return func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// A backend that does not answer within the timeout: the attempt fails with a retryable error,
// whether the HTTP client's timeout or the caller's deadline (the queue's timeout) ends it.
func TestSenderStalledBackend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(stall(t)))
	t.Cleanup(srv.Close)

	cfg := senderConfig(srv.URL)
	cfg.HTTP.Timeout = 100 * time.Millisecond
	err := startSender(t, cfg, nil).ConsumeMetrics(context.Background(), polls(t, 1, 1))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "%v", err)

	cfg = senderConfig(srv.URL)
	cfg.HTTP.Timeout = 0
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = startSender(t, cfg, nil).ConsumeMetrics(ctx, polls(t, 1, 1))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, consumererror.IsPermanent(err))

	// Cancelled (shutdown) is permanent, as in contrib.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	err = startSender(t, cfg, nil).ConsumeMetrics(ctx, polls(t, 1, 1))
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, consumererror.IsPermanent(err))
}

// resetConn answers a request by resetting its connection (RST, no response).
func resetConn(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).SetLinger(0))
	require.NoError(t, conn.Close())
}

// A connection reset mid-request is a retryable error.
func TestSenderConnectionReset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 16)
		_, _ = r.Body.Read(buf) // part of the request, then the reset
		resetConn(t, w)
	}))
	t.Cleanup(srv.Close)
	err := startSender(t, senderConfig(srv.URL), nil).ConsumeMetrics(context.Background(), polls(t, 1, 1))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "%v", err)
}

// faultyFront puts fault in front of a remote-write server: the first `n` requests get it, the
// rest reach the server.
func faultyFront(t *testing.T, s *rwServer, n int32, fault func(http.ResponseWriter, *http.Request)) *httptest.Server {
	var seen atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= n {
			fault(w, r)
			return
		}
		s.handle(w, r)
	}))
	t.Cleanup(front.Close)
	return front
}

// Through the exporter's queue, a request that met a fault (reset, stall past `timeout`, 500) is
// retried and every sample reaches the backend exactly once; the queue's counters show no failure.
func TestSenderFaultsRetriedThroughQueue(t *testing.T) {
	faults := map[string]func(http.ResponseWriter, *http.Request){
		"reset": func(w http.ResponseWriter, _ *http.Request) { resetConn(t, w) },
		"stall": stall(t),
		"500": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "try later", http.StatusInternalServerError)
		},
		"429": func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "slow down", http.StatusTooManyRequests) },
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			if name == "429" {
				setGate(t, gateRetryOn429)
			}
			srv := newRWServer(t)
			front := faultyFront(t, srv, 2, fault)
			cfg := testConfig(front.URL)
			cfg.TimeoutSettings.Timeout = 200 * time.Millisecond
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			exp := startExporter(t, cfg, tel, nil)
			md := polls(t, 2, 3)
			points := int64(md.DataPointCount())
			require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
			require.Eventually(t, func() bool {
				return exporterPoints(t, tel, "otelcol_exporter_sent_metric_points")["tenantremotewrite/test"] == points
			}, waitFor, tick)
			got := receivedBy(srv)
			assert.Equal(t, 1, got.requests, "the faulty attempts never reached the backend")
			for k, smp := range got.samples {
				ts := map[int64]int{}
				for _, s := range smp {
					ts[s.TS]++
				}
				for at, n := range ts {
					assert.Equal(t, 1, n, "%s at %d", k, at)
				}
			}
			assert.Zero(t, srv.duplicates())
			assert.Empty(t, exporterPoints(t, tel, "otelcol_exporter_send_failed_metric_points"))
		})
	}
}

// A 400 through the exporter: the request is dropped, counted once as failed, not retried.
func TestSenderPermanentDropsThroughQueue(t *testing.T) {
	srv := newRWServer(t)
	srv.setStatus(func(*http.Request) int { return http.StatusBadRequest })
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp := startExporter(t, testConfig(srv.URL), tel, nil)
	md := polls(t, 1, 2)
	points := int64(md.DataPointCount())
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
	require.Eventually(t, func() bool {
		return exporterPoints(t, tel, "otelcol_exporter_send_failed_metric_points")["tenantremotewrite/test"] == points
	}, waitFor, tick)
	assert.Len(t, srv.requestsCopy(), 1, "not retried")
}

// After Shutdown the sender refuses data; Shutdown without Start is fine.
func TestSenderLifecycle(t *testing.T) {
	s, err := newRWSender(senderSettings(), senderConfig("http://127.0.0.1:1/api/v1/write"), nil)
	require.NoError(t, err)
	require.ErrorContains(t, s.ConsumeMetrics(context.Background(), polls(t, 1, 1)), "not started")
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
	require.Error(t, s.ConsumeMetrics(context.Background(), polls(t, 1, 1)))

	cfg := senderConfig("http://127.0.0.1:1/api/v1/write")
	cfg.ExternalLabels = map[string]string{"k": ""}
	_, err = newRWSender(senderSettings(), cfg, nil)
	require.ErrorContains(t, err, "empty key or value")
}

// The exporter says once which sender it uses, and keeps contrib's where only it can send.
func TestSenderChoice(t *testing.T) {
	choose := func(t *testing.T, mutate func(*Config)) (*tenantExporter, *observer.ObservedLogs) {
		core, logs := observer.New(zapcore.InfoLevel)
		set := exportertest.NewNopSettings(metadata.Type)
		set.Logger = zap.New(core)
		cfg := withTenants(testConfig("http://127.0.0.1:1/{tenant}/api/v1/write"), nil)
		mutate(cfg)
		exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
		require.NoError(t, err)
		return exp.(*tenantExporter), logs
	}
	e, logs := choose(t, func(*Config) {})
	assert.Empty(t, e.contribReason)
	assert.Equal(t, 1, logs.FilterMessageSnippet("own sender").Len())

	setGate(t, gateSendingRW2)
	e, logs = choose(t, func(c *Config) { c.RemoteWriteProtoMsg = remoteapi.WriteV2MessageType })
	assert.Contains(t, e.contribReason, "remote-write 2.0")
	require.Equal(t, 1, logs.FilterMessageSnippet("contrib prometheusremotewrite").Len())

	e, _ = choose(t, func(*Config) {})
	assert.Empty(t, e.contribReason, "remote-write 1.0 with the gate on")
}

// BenchmarkSeriesOrderBytes measures the snappy-compressed size of one request of 50 devices × 10
// polls (a 10 s flush) with the edge's translation, for the orders a sender could send its series
// in: contrib's (map order, random), by metric name (ours), and by device (job, instance) first.
func BenchmarkSeriesOrderBytes(b *testing.B) {
	md := polls(b, 50, 10)
	promote(md, defaultPromoted)
	renameUnits(md)
	settings, err := translationSettings(senderConfig("http://127.0.0.1:1"))
	require.NoError(b, err)
	settings.DisableScopeInfo = true
	_, err = contribTranslate(settings)(md)
	require.NoError(b, err)
	label := func(ts prompb.TimeSeries, name string) string {
		for _, l := range ts.Labels {
			if l.Name == name {
				return l.Value
			}
		}
		return ""
	}
	orders := map[string]func([]prompb.TimeSeries){
		"map":  func([]prompb.TimeSeries) {},
		"name": orderSeries,
		"device": func(tss []prompb.TimeSeries) {
			orderSeries(tss)
			slices.SortStableFunc(tss, func(x, y prompb.TimeSeries) int {
				return cmp.Or(strings.Compare(label(x, "job"), label(y, "job")), strings.Compare(label(x, "instance"), label(y, "instance")))
			})
		},
	}
	for _, name := range []string{"map", "name", "device"} {
		b.Run(name, func(b *testing.B) {
			var total, n int
			for b.Loop() {
				tss, _ := contribTranslate(settings)(md) // a fresh map order each round
				tss = newestTargetInfo(tss, "target_info")
				orders[name](tss)
				body, err := (&encodeBuffers{}).encode(&prompb.WriteRequest{Timeseries: tss})
				require.NoError(b, err)
				total += len(body)
				n++
			}
			b.ReportMetric(float64(total)/float64(n), "snappy-bytes/request")
			b.ReportMetric(float64(total)/float64(n)/float64(md.DataPointCount()), "bytes/point")
		})
	}
}

// BenchmarkSenderRequest sends one request of 50 devices × 10 polls (a 10 s flush of the 50-device
// site, renamed as the pipeline hands it over) to a loopback endpoint, through contrib's exporter
// (the points promoted beforehand, outside the timing) and through ours (promoting in its
// translator): translation, target_info, order, batching, protobuf, snappy, HTTP. Run with -count
// to alternate the two.
func BenchmarkSenderRequest(b *testing.B) {
	md := polls(b, 50, 10)
	renameUnits(md)
	promoted := pmetric.NewMetrics()
	md.CopyTo(promoted)
	promote(promoted, defaultPromoted)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	cfg := senderConfig(srv.URL)
	set := senderSettings()
	set.ID = component.MustNewID("prometheus_remote_write")
	contrib, err := prw.NewFactory().CreateMetrics(context.Background(), set, cfg)
	require.NoError(b, err)
	own, err := newRWSender(senderSettings(), cfg, defaultPromoted)
	require.NoError(b, err)
	input := map[string]pmetric.Metrics{"contrib": promoted, "own": md}
	for name, s := range map[string]exporter.Metrics{"contrib": contrib, "own": own} {
		require.NoError(b, s.Start(context.Background(), componenttest.NewNopHost()))
		b.Cleanup(func() { require.NoError(b, s.Shutdown(context.Background())) })
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.ConsumeMetrics(context.Background(), input[name]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/device-poll")
		})
	}
}

// randomRequest is a request of n series with up to 8 labels and 20 samples each, random text.
func randomRequest(r *rand.Rand, n int) *prompb.WriteRequest {
	word := func() string {
		b := make([]byte, 1+r.IntN(24))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	req := &prompb.WriteRequest{}
	for range n {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: word()}}}
		for range r.IntN(8) {
			ts.Labels = append(ts.Labels, prompb.Label{Name: word(), Value: word()})
		}
		for range 1 + r.IntN(20) {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: r.Float64(), Timestamp: r.Int64N(1 << 41)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

// The body, made block by block, is snappy.Encode of the whole request's protobuf byte for byte:
// empty, tiny, across block boundaries, a series larger than a block, metadata after series, and
// the same buffers reused for each.
func TestEncodeIsSnappyOfProtobuf(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 1))
	huge := randomRequest(r, 1)
	for len(huge.Timeseries[0].Samples) < 3*65536/16 {
		huge.Timeseries[0].Samples = append(huge.Timeseries[0].Samples, prompb.Sample{Value: r.Float64(), Timestamp: int64(len(huge.Timeseries[0].Samples))})
	}
	withMeta := randomRequest(r, 500)
	for i := range 300 {
		withMeta.Metadata = append(withMeta.Metadata, prompb.MetricMetadata{MetricFamilyName: fmt.Sprint("m", i), Help: strings.Repeat("h", i), Unit: "s", Type: prompb.MetricMetadata_GAUGE})
	}
	cases := map[string]*prompb.WriteRequest{
		"empty": {}, "one": randomRequest(r, 1), "hundreds": randomRequest(r, 300), "thousands": randomRequest(r, 3000),
		"huge series": huge, "metadata": withMeta, "metadata only": {Metadata: withMeta.Metadata},
	}
	buf := &encodeBuffers{}
	for _, name := range []string{"thousands", "empty", "one", "huge series", "hundreds", "metadata", "metadata only", "one"} {
		req := cases[name]
		pb, err := req.Marshal()
		require.NoError(t, err)
		got, err := buf.encode(req)
		require.NoError(t, err, name)
		require.Equal(t, snappy.Encode(nil, pb), got, name)
	}
	// every block boundary a series may end on or cross
	for n := 180; n < 260; n++ {
		req := randomRequest(rand.New(rand.NewPCG(uint64(n), 2)), n)
		pb, err := req.Marshal()
		require.NoError(t, err)
		got, err := buf.encode(req)
		require.NoError(t, err)
		require.Equal(t, snappy.Encode(nil, pb), got, "%d series, %d bytes", n, len(pb))
	}
}

// Encoding a large request allocates about its compressed size, not its protobuf encoding and
// snappy's worst case for it (both kept in the pool and live at once with the batch; fails on the
// whole-request encoder).
func TestEncodeAllocatesCompressedSize(t *testing.T) {
	md := polls(t, 50, 60) // a 60 s flush: the fixed ~140 KiB of block buffers are small beside it
	promote(md, defaultPromoted)
	renameUnits(md)
	settings, err := translationSettings(senderConfig("http://127.0.0.1:1"))
	require.NoError(t, err)
	translate, _ := cachedTranslate(zap.NewNop(), settings, nil)
	tss, err := translate(md)
	require.NoError(t, err)
	req := &prompb.WriteRequest{Timeseries: tss}
	size := req.Size()
	require.Greater(t, size, 1_000_000)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	body, err := (&encodeBuffers{}).encode(req)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	allocated := int(after.TotalAlloc - before.TotalAlloc)
	t.Logf("protobuf %d bytes, body %d bytes, allocated %d bytes", size, len(body), allocated)
	assert.Less(t, allocated, size/2)
}

// Promoting in the translator sends the requests that promoting onto the points first sent, byte
// for byte (protobuf of every request, in order).
func TestPromotingTranslatorSendsSameRequests(t *testing.T) {
	md := polls(t, 20, 5)
	renameUnits(md)
	send := func(promoted []string, in pmetric.Metrics) [][]byte {
		srv := newRWServer(t)
		s, err := newRWSender(senderSettings(), senderConfig(srv.URL), promoted)
		require.NoError(t, err)
		require.NoError(t, s.Start(context.Background(), componenttest.NewNopHost()))
		defer func() { require.NoError(t, s.Shutdown(context.Background())) }()
		require.NoError(t, s.ConsumeMetrics(context.Background(), in))
		srv.mu.Lock()
		defer srv.mu.Unlock()
		var out [][]byte
		for _, r := range srv.requests {
			b, err := (&prompb.WriteRequest{Timeseries: r.Series}).Marshal()
			require.NoError(t, err)
			out = append(out, b)
		}
		return out
	}
	onPoints := pmetric.NewMetrics()
	md.CopyTo(onPoints)
	promote(onPoints, defaultPromoted)
	want := send(nil, onPoints)
	require.NotEmpty(t, want)
	got := send(defaultPromoted, md)
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, bytes.Equal(want[i], got[i]), "request %d differs", i)
	}
}
