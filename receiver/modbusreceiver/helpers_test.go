package modbusreceiver

import (
	"context"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

// freeAddr returns a loopback address with a port that was free a moment ago (the simonvetter server
// does not report the port it bound).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startTCPServer serves bank with modbus.NewServer on a free loopback port and returns its address.
func startTCPServer(t testing.TB, bank *modbussim.Bank) string {
	t.Helper()
	addr := freeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 64, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })
	return addr
}

// loadConfig builds a validated Config from YAML.
func loadConfig(t testing.TB, yml string) *Config {
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

// startReceiverOn runs a receiver with both pipelines on cfg, its devices' time on clk; it stops on
// cleanup.
func startReceiverOn(t testing.TB, cfg *Config, clk clock.Clock) sinks {
	t.Helper()
	s := sinks{metrics: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink)}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	r.SetClock(clk)
	r.SetMetrics(s.metrics)
	r.SetTraces(s.traces)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return s
}

// point is one data point seen by a sink.
type point struct {
	device string
	metric string
	attrs  map[string]string
	value  float64
	stale  bool
	sum    bool
	ts     time.Time
	res    map[string]any
}

func points(md []pmetric.Metrics) []point {
	var out []point
	for _, p := range devicetest.Points(md...) {
		out = append(out, point{device: p.Device, metric: p.Metric, attrs: p.Attrs, value: p.Value, stale: p.Stale,
			sum: p.Sum, ts: p.Time.AsTime(), res: p.Resource})
	}
	return out
}

// latest returns the last point of a device's metric whose attributes include attrs.
func latest(pts []point, dev, metric string, attrs map[string]string) (point, bool) {
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
	return point{}, false
}

// spans flattens the spans of the traces.
type spanInfo struct {
	name   string
	attrs  map[string]any
	status ptrace.StatusCode
	parent bool
	res    map[string]any
}

func spans(tds []ptrace.Traces) []spanInfo {
	var out []spanInfo
	for _, s := range devicetest.Spans(tds...) {
		out = append(out, spanInfo{name: s.Name(), attrs: s.Attributes().AsRaw(), status: s.Status().Code(),
			parent: !s.ParentSpanID().IsEmpty(), res: s.Resource.Attributes().AsRaw()})
	}
	return out
}

func f32regs(v float32) []uint16 { return modbussim.Float32Regs(v) }
