package dlt645receiver

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
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
	stale, sum           bool
	monotonic            bool
	res                  map[string]any
	exemplars            int
}

func dataPoints(mds []pmetric.Metrics) []dataPoint {
	var out []dataPoint
	for _, md := range mds {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			rm := rms.At(i)
			dev, _ := rm.Resource().Attributes().Get("device.id")
			res := rm.Resource().Attributes().AsRaw()
			sms := rm.ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					var dps pmetric.NumberDataPointSlice
					sum, mono := false, false
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps, sum, mono = m.Sum().DataPoints(), true, m.Sum().IsMonotonic()
					default:
						continue
					}
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						attrs := map[string]string{}
						dp.Attributes().Range(func(k string, v pcommon.Value) bool { attrs[k] = v.AsString(); return true })
						v := dp.DoubleValue()
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							v = float64(dp.IntValue())
						}
						out = append(out, dataPoint{device: dev.Str(), metric: m.Name(), unit: m.Unit(), attrs: attrs, value: v,
							stale: dp.Flags().NoRecordedValue(), sum: sum, monotonic: mono, res: res, exemplars: dp.Exemplars().Len()})
					}
				}
			}
		}
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
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					s := ss.At(k)
					out = append(out, spanInfo{name: s.Name(), attrs: s.Attributes().AsRaw(), status: s.Status().Code(),
						parent: !s.ParentSpanID().IsEmpty(), res: rs.Resource().Attributes().AsRaw()})
				}
			}
		}
	}
	return out
}

func receivertestSettings() receiver.Settings { return receivertest.NewNopSettings(metadata.Type) }

type pmetricMetrics = pmetric.Metrics
