package dlt645receiver

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// startSim serves the meters on a free loopback port; it stops on cleanup.
func startSim(t testing.TB, opts sim.Options, meters ...*sim.Meter) (*sim.Server, string) {
	t.Helper()
	srv := sim.NewServer(opts, meters...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv, l.Addr().String()
}

// meter makes a simulated meter with values of catalogued identifiers.
func meter(t testing.TB, address string, v dlt645.Version, values map[dlt645.DI]float64) *sim.Meter {
	t.Helper()
	a, err := dlt645.ParseAddress(address)
	require.NoError(t, err)
	m := sim.NewMeter(a, v)
	for di, x := range values {
		require.NoError(t, m.Set(di, x), "%s = %v", di.Format(v), x)
	}
	return m
}

// loadYAML builds a validated Config from YAML.
func loadYAML(t testing.TB, yml string) *Config {
	t.Helper()
	return devicetest.LoadConfig(t, NewFactory(), yml).(*Config)
}

type sinks struct {
	metrics *consumertest.MetricsSink
	traces  *consumertest.TracesSink
}

// startReceiver runs a receiver with both pipelines on cfg; it stops on cleanup.
func startReceiver(t testing.TB, cfg *Config) sinks {
	t.Helper()
	s := devicetest.StartReceiver(t, NewFactory(), cfg)
	return sinks{metrics: s.Metrics, traces: s.Traces}
}

// dataPoint is one data point seen by a sink.
type dataPoint struct {
	device, metric, unit string
	attrs                map[string]string
	value                float64
	isInt                bool
	stale, sum           bool
	monotonic            bool
	res                  map[string]any
	exemplars            int
}

func dataPoints(mds []pmetric.Metrics) []dataPoint {
	var out []dataPoint
	for _, p := range devicetest.Points(mds...) {
		out = append(out, dataPoint{device: p.Device, metric: p.Metric, unit: p.Unit, attrs: p.Attrs, value: p.Value, isInt: p.Int,
			stale: p.Stale, sum: p.Sum, monotonic: p.Monotonic, res: p.Resource, exemplars: p.Exemplars})
	}
	return out
}

// last returns the latest point of a device's metric whose attributes include attrs.
func last(pts []dataPoint, dev, metric string, attrs map[string]string) (dataPoint, bool) {
	for i := len(pts) - 1; i >= 0; i-- {
		p := pts[i]
		if p.device != dev || p.metric != metric {
			continue
		}
		ok := true
		for k, v := range attrs {
			if p.attrs[k] != v {
				ok = false
			}
		}
		if ok {
			return p, true
		}
	}
	return dataPoint{}, false
}

type spanInfo struct {
	name   string
	attrs  map[string]any
	status ptrace.StatusCode
	parent bool
	res    map[string]any
}

func allSpans(tds []ptrace.Traces) []spanInfo {
	var out []spanInfo
	for _, s := range devicetest.Spans(tds...) {
		out = append(out, spanInfo{name: s.Name(), attrs: s.Attributes().AsRaw(), status: s.Status().Code(),
			parent: !s.ParentSpanID().IsEmpty(), res: s.Resource.Attributes().AsRaw()})
	}
	return out
}

func receivertestSettings() receiver.Settings { return receivertest.NewNopSettings(metadata.Type) }

type pmetricMetrics = pmetric.Metrics
