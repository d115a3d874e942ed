//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"gopkg.in/yaml.v3"
)

// TestComponentsListsManifest checks that every component of builder-config.yaml is in the binary.
func TestComponentsListsManifest(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "builder-config.yaml"))
	require.NoError(t, err)
	var manifest map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &manifest))

	out, err := runCollectorCommand(t, "components")
	require.NoError(t, err, out)
	var listed map[string][]struct {
		Name   string `yaml:"name"`
		Module string `yaml:"module"`
	}
	var withInfo map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(out), &withInfo))
	delete(withInfo, "buildinfo")
	b, _ := yaml.Marshal(withInfo)
	require.NoError(t, yaml.Unmarshal(b, &listed))

	for _, kind := range []string{"receivers", "processors", "exporters", "extensions", "connectors"} {
		entries, _ := manifest[kind].([]any)
		want := map[string]int{}
		for _, e := range entries {
			gomod := e.(map[string]any)["gomod"].(string)
			want[gomod]++
		}
		got := map[string]int{}
		for _, c := range listed[kind] {
			got[c.Module]++
		}
		assert.Equal(t, want, got, "%s: modules in the manifest vs in `otelcol-iiot components`", kind)
	}
}

// TestValidateEdgeConfig checks the shipped edge default and that config mistakes name their key.
func TestValidateEdgeConfig(t *testing.T) {
	root := repoRoot(t)
	// The edge default reads its device lists and registry from $OTELCOL_IIOT_CONFIG_DIR.
	t.Setenv("OTELCOL_IIOT_CONFIG_DIR", filepath.Join(root, "distributions/otelcol-iiot"))
	out, err := runCollectorCommand(t, "validate", "--config="+filepath.Join(root, "distributions/otelcol-iiot/config.yaml"))
	require.NoError(t, err, out)
	// with the overlay for sites behind a gateway tier
	out, err = runCollectorCommand(t, "validate", "--config="+filepath.Join(root, "distributions/otelcol-iiot/config.yaml"),
		"--config="+filepath.Join(root, "distributions/otelcol-iiot/uplink.yaml"))
	require.NoError(t, err, out)

	out, err = runCollectorCommand(t, "validate", "--config="+testdataPath(t, "validate/misspelt.yaml"))
	require.Error(t, err)
	assert.Contains(t, out, "endpont", "the error names the misspelt key")

	out, err = runCollectorCommand(t, "validate", "--config="+testdataPath(t, "validate/bad_value.yaml"))
	require.Error(t, err)
	assert.Contains(t, out, "timeout", "the error names the key with the bad value")
}

// TestOTLPToPrometheusAndTraceSink: metrics sent by OTLP arrive in a real Prometheus by remote-write
// with their exact values, and spans arrive in a second collector.
func TestOTLPToPrometheusAndTraceSink(t *testing.T) {
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	otlpPort := freePort(t)
	data := vars{"OTLPPort": otlpPort, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "otlp/config.yaml")

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", otlpPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("device.id", "meter-1")
	rm.Resource().Attributes().PutStr("service.name", "e2e")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("grid.voltage")
	g.SetUnit("V")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(230.125)
	dp.Attributes().PutStr("phase", "A")
	s := ms.AppendEmpty()
	s.SetName("energy.active.import")
	s.SetUnit("kWh")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sdp := sum.DataPoints().AppendEmpty()
	sdp.SetIntValue(123456)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "e2e")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("modbus.poll")
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.Attributes().PutStr("device.id", "meter-1")

	mc := pmetricotlp.NewGRPCClient(conn)
	tc := ptraceotlp.NewGRPCClient(conn)
	// The collector may still be starting: retry the export until it is accepted.
	require.Eventually(t, func() bool {
		now := pcommon.NewTimestampFromTime(time.Now())
		dp.SetTimestamp(now)
		sdp.SetTimestamp(now)
		sp.SetStartTimestamp(now)
		sp.SetEndTimestamp(now)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := mc.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
			return false
		}
		_, err := tc.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err == nil
	}, 60*time.Second, 250*time.Millisecond)

	prom.expectValues(t, "otlp/expected.yaml", data)

	require.Eventually(t, func() bool {
		for _, s := range sink.Spans(t) {
			if s.Name == "modbus.poll" && s.Attrs["device.id"] == "meter-1" && s.TraceID == "0102030405060708090a0b0c0d0e0f10" {
				return true
			}
		}
		return false
	}, 60*time.Second, 250*time.Millisecond, "span did not reach the trace sink")
}
