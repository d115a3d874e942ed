//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestTDigestQuantilesInPrometheus (gateway distribution): poll durations sent by OTLP go through the
// tdigest processor, span durations through the spanquantiles connector; both
// windows' quantiles arrive in a real Prometheus by remote-write with the exact
// values (the windows hold few values, so they are exact).
func TestTDigestQuantilesInPrometheus(t *testing.T) {
	prom := startPrometheus(t)
	otlpPort := freePort(t)
	// the gateway distribution: the spanquantiles connector is not in the edge
	startGatewayTestdata(t, nil, vars{"OTLPPort": otlpPort, "RemoteWrite": prom.RemoteWriteURL()}, "tdigest/otlp.yaml")

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", otlpPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	mc := pmetricotlp.NewGRPCClient(conn)
	tc := ptraceotlp.NewGRPCClient(conn)
	export := func(md pmetric.Metrics, td ptrace.Traces) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := mc.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
			return err
		}
		_, err := tc.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	// wait until the collector accepts data (empty requests: nothing to count twice)
	require.Eventually(t, func() bool { return export(pmetric.NewMetrics(), ptrace.NewTraces()) == nil },
		60*time.Second, 250*time.Millisecond)

	// 100 poll durations 0.01 .. 1.00 s of meter-1, from two resources that
	// differ in an attribute outside group_by (aggregated away), one request
	now := time.Now()
	md := pmetric.NewMetrics()
	for r := range 2 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "e2e")
		rm.Resource().Attributes().PutStr("device.id", "meter-1")
		rm.Resource().Attributes().PutStr("device.address", fmt.Sprintf("tcp://127.0.0.1:50%d", r))
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("e2e.poll.duration")
		m.SetUnit("s")
		dps := m.SetEmptyGauge().DataPoints()
		for i := 1 + r*50; i <= 50+r*50; i++ {
			dp := dps.AppendEmpty()
			dp.SetDoubleValue(float64(i) / 100)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		}
	}
	// 10 poll spans 10 .. 100 ms, plus a span the name filter leaves out
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "e2e")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 1; i <= 11; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("modbus.poll")
		if i == 11 {
			sp.SetName("modbus.read")
		}
		sp.SetKind(ptrace.SpanKindInternal)
		sp.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		sp.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * 10 * time.Millisecond)))
		sp.Attributes().PutStr("device.id", "meter-1")
	}
	require.NoError(t, export(md, td))

	// values 0.01..1.00: quantiles with rank (k-0.5)/n interpolation
	sel := `{job="e2e",device_id="meter-1"`
	wait := 60 * time.Second
	for q, want := range map[string]float64{"0.5": 0.505, "0.9": 0.905, "0.99": 0.995, "0.999": 1} {
		prom.eventuallyValue(t, `e2e_poll_duration_quantiles_seconds`+sel+`,quantile="`+q+`"}`, want, wait)
	}
	prom.eventuallyValue(t, `e2e_poll_duration_quantiles_seconds_count`+sel+`}`, 100, wait)
	prom.eventuallyValue(t, `e2e_poll_duration_quantiles_seconds_sum`+sel+`}`, 50.5, wait)
	prom.eventuallyValue(t, `e2e_poll_duration_p99_seconds`+sel+`}`, 0.995, wait)
	prom.eventuallyValue(t, `e2e_poll_duration_max_seconds`+sel+`}`, 1, wait)
	prom.eventuallyValue(t, `e2e_poll_duration_min_seconds`+sel+`}`, 0.01, wait)
	prom.eventuallyValue(t, `e2e_poll_duration_count`+sel+`}`, 100, wait)
	// samples are stamped with the end of their window: a multiple of the 2 s slide
	prom.eventuallyValue(t, `timestamp(e2e_poll_duration_quantiles_seconds`+sel+`,quantile="0.5"}) % 2`, 0, wait)
	// device.address was aggregated away: one series only
	prom.eventuallyValue(t, `count(e2e_poll_duration_quantiles_seconds{quantile="0.5"})`, 1, wait)

	// span durations 0.01..0.10 s per service, span name, kind, status and device
	spanSel := `{job="e2e",span_name="modbus.poll",span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_UNSET",device_id="meter-1"`
	for q, want := range map[string]float64{"0.5": 0.055, "0.9": 0.095, "0.99": 0.1} {
		prom.eventuallyValue(t, `traces_span_duration_quantiles_seconds`+spanSel+`,quantile="`+q+`"}`, want, wait)
	}
	prom.eventuallyValue(t, `traces_span_duration_quantiles_seconds_count`+spanSel+`}`, 10, wait)
	prom.eventuallyValue(t, `count(traces_span_duration_quantiles_seconds{quantile="0.5"})`, 1, wait)
}
