package spanquantilesconnector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/connector/spanquantilesconnector/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// Spans through the connector: 1000 devices' poll spans (device.id dimension),
// one span each per second.
// go test -run '^$' -bench . -benchmem ./connector/spanquantilesconnector/
func BenchmarkConsumeSpans(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Dimensions = []Dimension{{Name: "device.id"}}
	clk := clock.NewManual(t0)
	c, err := newConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop(), clk)
	if err != nil {
		b.Fatal(err)
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "otelcol-iiot")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 1000 {
		sp := spans.AppendEmpty()
		sp.SetName("modbus.poll")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Microsecond)))
		sp.Attributes().PutStr("device.id", fmt.Sprintf("dev-%04d", i))
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(time.Second)
		if err := c.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/span")
}
