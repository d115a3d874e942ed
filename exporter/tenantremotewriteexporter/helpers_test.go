package tenantremotewriteexporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// sample is one accepted remote-write sample.
type sample struct {
	Series string // metric name and sorted labels, without tenant information
	TS     int64
	Value  float64
}

// rwRequest is one remote-write request the server received.
type rwRequest struct {
	Path   string
	Header http.Header
	Status int
	Series []prompb.TimeSeries
}

// rwServer is a remote-write receiver on loopback: it decodes snappy + prompb, records every
// request, and, like Prometheus without an out-of-order window, rejects a whole request with 400
// when a sample is not newer than the last accepted one of its series (per tenant).
type rwServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []rwRequest
	accepted map[string][]sample // by tenant key (header value or path)
	newest   map[string]sample   // tenant key + series -> newest accepted sample
	dups     int                 // samples identical to the newest one (ignored, like Prometheus)
	status   func(r *http.Request) int
	tenantOf func(r *http.Request) string
	// maxAge > 0: like a stock Prometheus, refuse a whole request holding a sample older than
	// now() - maxAge (out of bounds).
	maxAge time.Duration
	now    func() time.Time
	// outOfOrder: accept samples older than the newest of their series (VictoriaMetrics).
	outOfOrder bool
	seen       map[string]bool // with outOfOrder: tenant|series|ts of every accepted sample
	// link > 0: each request takes at least this long to answer (a slow uplink).
	link time.Duration
}

func newRWServer(t *testing.T) *rwServer {
	s := &rwServer{
		accepted: map[string][]sample{},
		newest:   map[string]sample{},
		tenantOf: func(r *http.Request) string { return r.Header.Get("X-Scope-OrgID") },
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *rwServer) setStatus(f func(r *http.Request) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = f
}

func (s *rwServer) handle(w http.ResponseWriter, r *http.Request) {
	if s.link > 0 {
		<-time.After(s.link) // the link's time, not a synchronisation
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		http.Error(w, "proto: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	status := http.StatusNoContent
	if s.status != nil {
		if st := s.status(r); st != 0 {
			status = st
		}
	}
	tenant := s.tenantOf(r)
	var add []sample
	dups := 0
	if status == http.StatusNoContent {
		for _, ts := range wr.Timeseries {
			key := seriesKey(ts.Labels)
			for _, smp := range ts.Samples {
				last, ok := s.newest[tenant+"|"+key]
				switch {
				case s.outOfOrder && s.seen[fmt.Sprintf("%s|%s|%d", tenant, key, smp.Timestamp)]:
					dups++
					continue
				case s.outOfOrder:
				case ok && smp.Timestamp == last.TS && smp.Value == last.Value:
					dups++
					continue
				case ok && smp.Timestamp <= last.TS:
					status = http.StatusBadRequest // out of order, or another value for the same time
				case s.maxAge > 0 && smp.Timestamp < s.now().Add(-s.maxAge).UnixMilli():
					status = http.StatusBadRequest // out of bounds
				}
				add = append(add, sample{Series: key, TS: smp.Timestamp, Value: smp.Value})
			}
		}
	}
	if status == http.StatusNoContent {
		for _, a := range add {
			if last, ok := s.newest[tenant+"|"+a.Series]; !ok || a.TS > last.TS {
				s.newest[tenant+"|"+a.Series] = a
			}
			if s.outOfOrder {
				if s.seen == nil {
					s.seen = map[string]bool{}
				}
				s.seen[fmt.Sprintf("%s|%s|%d", tenant, a.Series, a.TS)] = true
			}
		}
		s.accepted[tenant] = append(s.accepted[tenant], add...)
		s.dups += dups
	}
	s.requests = append(s.requests, rwRequest{Path: r.URL.Path, Header: r.Header.Clone(), Status: status, Series: wr.Timeseries})
	w.WriteHeader(status)
}

// samples returns the accepted samples of a tenant for one metric name, in arrival order.
func (s *rwServer) samples(tenant, name string) []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sample
	for _, smp := range s.accepted[tenant] {
		if strings.HasPrefix(smp.Series, name+"{") {
			out = append(out, smp)
		}
	}
	return out
}

func (s *rwServer) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

func (s *rwServer) tenants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.accepted {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *rwServer) requestsCopy() []rwRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rwRequest(nil), s.requests...)
}

func seriesKey(labels []prompb.Label) string {
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

// point is one gauge data point of the test input.
type point struct {
	res   map[string]string // resource attributes
	name  string
	ms    int64 // timestamp in ms
	value float64
}

// metricsOf builds metrics with one resource per point (points with equal resources share it).
func metricsOf(points ...point) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, p := range points {
		rm := md.ResourceMetrics().AppendEmpty()
		for k, v := range p.res {
			rm.Resource().Attributes().PutStr(k, v)
		}
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(p.name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(p.ms * int64(time.Millisecond)))
		dp.SetDoubleValue(p.value)
	}
	return md
}

// testHost is a host with real extensions.
type testHost struct {
	exts map[component.ID]component.Component
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.exts }

var storageID = component.MustNewID("file_storage")

// startFileStorage starts a real file_storage extension on dir (a "collector start").
func startFileStorage(t *testing.T, dir string) extension.Extension {
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext
}

// testConfig returns a config for endpoint with fast retries.
func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.Endpoint = endpoint
	cfg.BackOffConfig.InitialInterval = 10 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 50 * time.Millisecond
	cfg.BackOffConfig.RandomizationFactor = 0
	cfg.MaxSampleAge = 0 // the tests' timestamps are from 1970; expire_test.go sets its own
	return cfg
}

// withTenants enables the split with the given tenant settings.
func withTenants(cfg *Config, mutate func(*TenantConfig)) *Config {
	tc := cfg.Tenant.GetOrInsertDefault()
	if mutate != nil {
		mutate(tc)
	}
	return cfg
}

// startExporter creates and starts the exporter; it is shut down at cleanup (idempotent).
func startExporter(t *testing.T, cfg *Config, tel *componenttest.Telemetry, host component.Host) exporter.Metrics {
	t.Helper()
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "test") // stable: names the queue files
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if tel != nil {
		set.TelemetrySettings = tel.NewTelemetrySettings()
	}
	exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
	require.NoError(t, err)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, exp.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp
}

// startObserved starts the exporter (id tenantremotewrite/test) with observed logs at Info and the
// given telemetry; it is shut down at cleanup (idempotent).
func startObserved(t *testing.T, cfg *Config, tel *componenttest.Telemetry, host component.Host) (*tenantExporter, *observer.ObservedLogs) {
	t.Helper()
	return startObservedWith(t, cfg, tel, host, nil)
}

func startObservedWith(t *testing.T, cfg *Config, tel *componenttest.Telemetry, host component.Host, before func(*tenantExporter)) (*tenantExporter, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "test")
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
	require.NoError(t, err)
	te := exp.(*tenantExporter)
	if before != nil {
		before(te)
	}
	require.NoError(t, exp.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return te, logs
}
