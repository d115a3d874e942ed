package tenantprocessor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"gopkg.in/yaml.v3"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
)

// The benchmarks compare the tenant processor with contrib's transform processor configured to
// apply the same labels to the same input (TestBenchmarkEquivalence checks the outputs are
// identical). Each iteration processes a fresh copy of the input batch (both processors change
// it); the copy is made with the timer stopped.

const (
	benchDevices          = 100
	benchMetricsPerDevice = 10
)

// benchInput: a gateway batch, 100 devices (half inverters over Modbus, half DL/T 645 meters),
// each with 4 resource attributes and 10 gauges of one data point with one attribute.
func benchInput() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for d := range benchDevices {
		rm := md.ResourceMetrics().AppendEmpty()
		a := rm.Resource().Attributes()
		if d%2 == 0 {
			a.PutStr("device.id", fmt.Sprintf("inv-%03d", d))
			a.PutStr("device.protocol", "modbus")
			a.PutStr("device.model.name", "SUN2000")
		} else {
			a.PutStr("device.id", fmt.Sprintf("meter-%03d", d))
			a.PutStr("device.protocol", "dlt645")
			a.PutStr("device.model.name", "DTSU666")
		}
		a.PutStr("device.address", fmt.Sprintf("tcp://10.0.0.%d:502/1", d))
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("otelcol-iiot/bench")
		for m := range benchMetricsPerDevice {
			metric := sm.Metrics().AppendEmpty()
			metric.SetName(fmt.Sprintf("iiot.reading.%d", m))
			dp := metric.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.Attributes().PutStr("phase", "L1")
			dp.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
			dp.SetDoubleValue(float64(m))
		}
	}
	return md
}

type benchScenario struct {
	name      string
	tenant    string // tenant processor config (YAML)
	transform string // transform processor config (YAML)
	files     map[string]string
}

const rulesTenant = `
rules:
  - match: {device.id: {glob: "inv-*"}}
    set: {tenant.id: pv-owner, device_group: inverters}
  - match: {device.id: {glob: "meter-*"}}
    set: {tenant.id: grid-operator, device_group: meters}
defaults: {env: prod, region: cn-south}
job_instance: {job: "${device.protocol}", instance: "${device.id}"}
`

const rulesTransform = `
metric_statements:
  - context: resource
    statements:
      - set(attributes["tenant.id"], "pv-owner") where IsMatch(attributes["device.id"], "^inv-.*$")
      - set(attributes["device_group"], "inverters") where IsMatch(attributes["device.id"], "^inv-.*$")
      - set(attributes["tenant.id"], "grid-operator") where IsMatch(attributes["device.id"], "^meter-.*$")
      - set(attributes["device_group"], "meters") where IsMatch(attributes["device.id"], "^meter-.*$")
      - set(attributes["env"], "prod") where attributes["env"] == nil
      - set(attributes["region"], "cn-south") where attributes["region"] == nil
      - set(attributes["service.name"], attributes["device.protocol"]) where attributes["device.protocol"] != nil
      - set(attributes["service.instance.id"], attributes["device.id"]) where attributes["device.id"] != nil
`

// registryScenario: every device in a registry (tenant, site, region, env, device_group); the
// transform equivalent is one merge_maps statement per device.
func registryScenario(dir string) benchScenario {
	var reg, stmts strings.Builder
	reg.WriteString("device.id,tenant.id,site,region,env,device_group\n")
	for d := range benchDevices {
		id, tenant, group := fmt.Sprintf("inv-%03d", d), "pv-owner", "inverters"
		if d%2 == 1 {
			id, tenant, group = fmt.Sprintf("meter-%03d", d), "grid-operator", "meters"
		}
		site := fmt.Sprintf("sz-%02d", d%7)
		fmt.Fprintf(&reg, "%s,%s,%s,cn-south,prod,%s\n", id, tenant, site, group)
		fmt.Fprintf(&stmts, "      - 'merge_maps(attributes, {\"tenant.id\": \"%s\", \"site\": \"%s\", \"region\": \"cn-south\", \"env\": \"prod\", \"device_group\": \"%s\"}, \"upsert\") where attributes[\"device.id\"] == \"%s\"'\n", tenant, site, group, id)
	}
	path := filepath.Join(dir, "devices.csv")
	return benchScenario{
		name: "registry",
		tenant: fmt.Sprintf(`
registry: {path: %q, reload_interval: 0s}
job_instance: {job: "${device.protocol}", instance: "${site}/${device.id}"}
`, path),
		transform: `
metric_statements:
  - context: resource
    statements:
` + stmts.String() + `      - set(attributes["service.name"], attributes["device.protocol"]) where attributes["device.protocol"] != nil
      - set(attributes["service.instance.id"], Concat([attributes["site"], attributes["device.id"]], "/")) where attributes["site"] != nil and attributes["device.id"] != nil
`,
		files: map[string]string{path: reg.String()},
	}
}

func benchScenarios(tb testing.TB) []benchScenario {
	dir := tb.TempDir()
	scenarios := []benchScenario{{name: "rules", tenant: rulesTenant, transform: rulesTransform}, registryScenario(dir)}
	for _, s := range scenarios {
		for path, content := range s.files {
			require.NoError(tb, os.WriteFile(path, []byte(content), 0o600))
		}
	}
	return scenarios
}

func yamlConf(tb testing.TB, s string) *confmap.Conf {
	var m map[string]any
	require.NoError(tb, yaml.Unmarshal([]byte(s), &m))
	return confmap.NewFromStringMap(m)
}

func newTenantBench(tb testing.TB, conf string, next consumer.Metrics) processor.Metrics {
	cfg := createDefaultConfig().(*Config)
	require.NoError(tb, yamlConf(tb, conf).Unmarshal(cfg))
	require.NoError(tb, confmap.Validate(cfg))
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p
}

func newTransformBench(tb testing.TB, conf string, next consumer.Metrics) processor.Metrics {
	f := transformprocessor.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(tb, yamlConf(tb, conf).Unmarshal(cfg))
	require.NoError(tb, confmap.Validate(cfg))
	p, err := f.CreateMetrics(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p
}

// TestBenchmarkEquivalence: in every scenario both processors produce the same output.
func TestBenchmarkEquivalence(t *testing.T) {
	for _, s := range benchScenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			ours, theirs := &consumertest.MetricsSink{}, &consumertest.MetricsSink{}
			require.NoError(t, newTenantBench(t, s.tenant, ours).ConsumeMetrics(context.Background(), benchInput()))
			require.NoError(t, newTransformBench(t, s.transform, theirs).ConsumeMetrics(context.Background(), benchInput()))
			got, want := ours.AllMetrics()[0], theirs.AllMetrics()[0]
			require.NoError(t, pmetrictest.CompareMetrics(want, got))
			// and the labels are really there
			v, ok := got.ResourceMetrics().At(1).Resource().Attributes().Get("tenant.id")
			require.True(t, ok)
			require.Equal(t, "grid-operator", v.Str())
		})
	}
}

func runBench(b *testing.B, p consumer.Metrics) {
	input := benchInput()
	points := input.DataPointCount()
	b.ReportAllocs()
	// The copies would make the collector of garbage run during the timed part at random:
	// collect explicitly with the timer stopped instead.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	i := 0
	for b.Loop() {
		// A fresh copy per iteration (both processors change their input), outside the timer.
		b.StopTimer()
		if i++; i%64 == 0 {
			runtime.GC()
		}
		md := pmetric.NewMetrics()
		input.CopyTo(md)
		b.StartTimer()
		if err := p.ConsumeMetrics(context.Background(), md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(points), "ns/point")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(input.ResourceMetrics().Len()), "ns/resource")
}

// BenchmarkLabels: tenant vs transform, same labels, same input, same run.
func BenchmarkLabels(b *testing.B) {
	for _, s := range benchScenarios(b) {
		b.Run(s.name+"/tenant", func(b *testing.B) { runBench(b, newTenantBench(b, s.tenant, consumertest.NewNop())) })
		b.Run(s.name+"/transform", func(b *testing.B) { runBench(b, newTransformBench(b, s.transform, consumertest.NewNop())) })
	}
}

// BenchmarkFull: rules plus schema and series budget (per data point work).
func BenchmarkFull(b *testing.B) {
	conf := rulesTenant + `
required: {attributes: [tenant.id], action: default_tenant, default_tenant: site-operator}
schema:
  allowed_key_pattern: '^[a-z][a-z0-9_.]*$'
  forbidden_keys: [user.id, "*session.id"]
  max_value_length: 256
budget: {max_series: 100000, idle_timeout: 10m}
`
	runBench(b, newTenantBench(b, conf, consumertest.NewNop()))
}

// BenchmarkTrackerMemory measures the memory the series budget holds per active series.
func BenchmarkTrackerMemory(b *testing.B) {
	const series = 200_000
	for b.Loop() {
		bu := newBudget(&BudgetConfig{MaxSeries: series, IdleTimeout: time.Hour, Action: BudgetDrop, MaxTenants: 1})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tr, _ := bu.tracker("t")
		now := time.Now().UnixNano()
		tr.mu.Lock()
		for i := range series {
			tr.admit(mix64(uint64(i)+1), now)
		}
		tr.mu.Unlock()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/series, "bytes/series")
		runtime.KeepAlive(bu)
	}
}

// benchLogsInput: the devices of benchInput, each with 10 event records (an OPC UA alarm's
// attributes, as the opcua receiver sets them).
func benchLogsInput() plog.Logs {
	ld := plog.NewLogs()
	md := benchInput()
	for d := range md.ResourceMetrics().Len() {
		rl := ld.ResourceLogs().AppendEmpty()
		md.ResourceMetrics().At(d).Resource().CopyTo(rl.Resource())
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("otelcol-iiot/bench")
		for r := range benchMetricsPerDevice {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + r))
			lr.SetSeverityNumber(plog.SeverityNumberError)
			lr.SetSeverityText("ERROR")
			lr.SetEventName("OffNormalAlarmType")
			lr.Body().SetStr("Grid fault: inverter disconnected")
			a := lr.Attributes()
			a.PutStr("opcua.event.id", fmt.Sprintf("%032x", r))
			a.PutStr("opcua.event.type", "i=10637")
			a.PutInt("opcua.event.severity", 700)
			a.PutStr("opcua.condition.name", "GridFault")
			a.PutBool("opcua.condition.active", r%2 == 0)
		}
	}
	return ld
}

func newTenantLogsBench(tb testing.TB, conf string, next consumer.Logs) processor.Logs {
	cfg := createDefaultConfig().(*Config)
	require.NoError(tb, yamlConf(tb, conf).Unmarshal(cfg))
	require.NoError(tb, confmap.Validate(cfg))
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p
}

func newTransformLogsBench(tb testing.TB, conf string, next consumer.Logs) processor.Logs {
	f := transformprocessor.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(tb, yamlConf(tb, conf).Unmarshal(cfg))
	require.NoError(tb, confmap.Validate(cfg))
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p
}

// rulesTransformLogs is rulesTransform for logs.
var rulesTransformLogs = strings.Replace(rulesTransform, "metric_statements:", "log_statements:", 1)

// TestLogsBenchmarkEquivalence: on the logs batch both processors produce the same output.
func TestLogsBenchmarkEquivalence(t *testing.T) {
	ours, theirs := &consumertest.LogsSink{}, &consumertest.LogsSink{}
	require.NoError(t, newTenantLogsBench(t, rulesTenant, ours).ConsumeLogs(context.Background(), benchLogsInput()))
	require.NoError(t, newTransformLogsBench(t, rulesTransformLogs, theirs).ConsumeLogs(context.Background(), benchLogsInput()))
	got, want := ours.AllLogs()[0], theirs.AllLogs()[0]
	require.NoError(t, plogtest.CompareLogs(want, got))
	v, ok := got.ResourceLogs().At(1).Resource().Attributes().Get("tenant.id")
	require.True(t, ok)
	require.Equal(t, "grid-operator", v.Str())
}

func runLogsBench(b *testing.B, p consumer.Logs) {
	input := benchLogsInput()
	records := input.LogRecordCount()
	b.ReportAllocs()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	i := 0
	for b.Loop() {
		b.StopTimer()
		if i++; i%64 == 0 {
			runtime.GC()
		}
		ld := plog.NewLogs()
		input.CopyTo(ld)
		b.StartTimer()
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(records), "ns/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(input.ResourceLogs().Len()), "ns/resource")
}

// BenchmarkLogs: one batch of event records (100 devices × 10 records): the rules scenario, tenant vs
// transform, and rules with required and the schema on every record's attributes.
func BenchmarkLogs(b *testing.B) {
	b.Run("rules/tenant", func(b *testing.B) { runLogsBench(b, newTenantLogsBench(b, rulesTenant, consumertest.NewNop())) })
	b.Run("rules/transform", func(b *testing.B) {
		runLogsBench(b, newTransformLogsBench(b, rulesTransformLogs, consumertest.NewNop()))
	})
	b.Run("full/tenant", func(b *testing.B) {
		runLogsBench(b, newTenantLogsBench(b, rulesTenant+`
required: {attributes: [tenant.id], action: default_tenant, default_tenant: site-operator}
schema:
  allowed_key_pattern: '^[a-z][a-z0-9_.]*$'
  forbidden_keys: [user.id, "*session.id"]
  max_value_length: 256
`, consumertest.NewNop()))
	})
}
