package tenantprocessor

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadatatest"
)

const waitFor, tick = 10 * time.Second, 5 * time.Millisecond

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	return tel
}

func aset(attrs ...attribute.KeyValue) attribute.Set { return attribute.NewSet(attrs...) }

func str(k, v string) attribute.KeyValue { return attribute.String(k, v) }

func collected(sink *consumertest.MetricsSink) pmetric.Metrics {
	got := pmetric.NewMetrics()
	for _, md := range sink.AllMetrics() {
		md.ResourceMetrics().MoveAndAppendTo(got.ResourceMetrics())
	}
	sink.Reset()
	return got
}

func TestRequiredCounters(t *testing.T) {
	tel := newTelemetry(t)
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, loadProcessorConfig(t, "testdata/golden/required_default_tenant/config.yaml"), tel, sink)
	require.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
	// inv-02, meter-7, meter-8, plc-1 lack tenant.id or site: 4 resources x 3 data points.
	metadatatest.AssertEqualProcessorTenantRequiredMissing(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", "site-operator"), str("action", "default_tenant")), Value: 12},
	}, metricdatatest.IgnoreTimestamp())

	tel2 := newTelemetry(t)
	p = newMetricsProcessor(t, loadProcessorConfig(t, "testdata/golden/required_pass/config.yaml"), tel2, &consumertest.MetricsSink{})
	require.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
	metadatatest.AssertEqualProcessorTenantRequiredMissing(t, tel2, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", ""), str("action", "pass")), Value: 12},
	}, metricdatatest.IgnoreTimestamp())

	tel3 := newTelemetry(t)
	sink3 := &consumertest.MetricsSink{}
	p = newMetricsProcessor(t, loadProcessorConfig(t, "testdata/golden/required_drop/config.yaml"), tel3, sink3)
	require.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
	metadatatest.AssertEqualProcessorTenantRequiredMissing(t, tel3, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", ""), str("action", "drop")), Value: 6},
		{Attributes: aset(str("tenant", "preassigned"), str("action", "drop")), Value: 3},
	}, metricdatatest.IgnoreTimestamp())
}

func TestSchemaCounters(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []metricdata.DataPoint[int64]
	}{
		{"schema_drop_attribute", []metricdata.DataPoint[int64]{
			{Attributes: aset(str("tenant", "pv-owner"), str("reason", "forbidden_key"), str("action", "drop_attribute")), Value: 2},
			{Attributes: aset(str("tenant", "pv-owner"), str("reason", "key_pattern"), str("action", "drop_attribute")), Value: 1},
			{Attributes: aset(str("tenant", "pv-owner"), str("reason", "value_length"), str("action", "drop_attribute")), Value: 1},
			{Attributes: aset(str("tenant", "pv-owner"), str("reason", "duplicate_after_drop"), str("action", "drop_data")), Value: 1},
		}},
		{"schema_drop_data", []metricdata.DataPoint[int64]{
			// the resource of pv-owner has user.id: dropped as a whole before its points are seen
			{Attributes: aset(str("tenant", "pv-owner"), str("reason", "forbidden_key"), str("action", "drop_data")), Value: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			p := newMetricsProcessor(t, loadProcessorConfig(t, "testdata/golden/"+tc.name+"/config.yaml"), tel, &consumertest.MetricsSink{})
			require.NoError(t, p.ConsumeMetrics(context.Background(), schemaInput()))
			metadatatest.AssertEqualProcessorTenantSchemaViolations(t, tel, tc.want, metricdatatest.IgnoreTimestamp())
		})
	}
}

func TestSchemaDropDataOnPoints(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Schema = SchemaConfig{ForbiddenKeys: []string{"*session.id"}, Action: SchemaDropData}
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, cfg, nil, sink)
	require.NoError(t, p.ConsumeMetrics(context.Background(), schemaInput()))
	got := collected(sink)
	// only the point with http.session.id is gone
	assert.Equal(t, 4, got.DataPointCount())
}

func TestBudgetCounters(t *testing.T) {
	tel := newTelemetry(t)
	p := newMetricsProcessor(t, loadProcessorConfig(t, "testdata/golden/budget_overflow/config.yaml"), tel, &consumertest.MetricsSink{})
	require.NoError(t, p.ConsumeMetrics(context.Background(), budgetInput()))
	metadatatest.AssertEqualProcessorTenantBudgetExceeded(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", "a"), str("action", "overflow")), Value: 4},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorTenantBudgetActiveSeries(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", "a")), Value: 4},
		{Attributes: aset(str("tenant", "b")), Value: 2},
	}, metricdatatest.IgnoreTimestamp())
}

// directProcessor builds the processor without the helper, with a settable clock.
func directProcessor(t *testing.T, cfg *Config, tel *componenttest.Telemetry) (*tenantProcessor, *time.Time) {
	set := processortest.NewNopSettings(metadata.Type).TelemetrySettings
	if tel != nil {
		set = tel.NewTelemetrySettings()
	}
	tp, err := newTenantProcessor(set, cfg)
	require.NoError(t, err)
	now := time.Unix(1_700_000_000, 0)
	tp.now = func() time.Time { return now }
	require.NoError(t, tp.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, tp.shutdown(context.Background())) })
	return tp, &now
}

func budgetConfig(maxSeries int, action BudgetAction) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Budget = configoptional.Some(BudgetConfig{MaxSeries: maxSeries, IdleTimeout: time.Minute, Action: action, MaxTenants: 2})
	return cfg
}

// seriesInput makes one data point for each of the given phases of tenant's device.
func seriesInput(tenant string, ms int64, phases ...string) pmetric.Metrics {
	var pts []pt
	for i, ph := range phases {
		pts = append(pts, pt{attrs: map[string]any{"phase": ph}, value: float64(i), ms: ms})
	}
	return build(res{attrs: map[string]any{"device.id": "d", "tenant.id": tenant}, metrics: []met{{name: "v", points: pts}}})
}

func phasesOf(md pmetric.Metrics) []string {
	var out []string
	for i := range md.ResourceMetrics().Len() {
		rm := md.ResourceMetrics().At(i)
		for j := range rm.ScopeMetrics().Len() {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := range ms.Len() {
				dps := ms.At(k).Gauge().DataPoints()
				for l := range dps.Len() {
					if v, ok := dps.At(l).Attributes().Get("phase"); ok {
						out = append(out, v.Str())
					} else {
						out = append(out, "overflow")
					}
				}
			}
		}
	}
	return out
}

func TestBudgetIdleTimeout(t *testing.T) {
	tel := newTelemetry(t)
	tp, now := directProcessor(t, budgetConfig(2, BudgetDrop), tel)
	process := func(md pmetric.Metrics) []string {
		out, err := tp.processMetrics(context.Background(), md)
		if err != nil {
			return nil
		}
		return phasesOf(out)
	}
	assert.Equal(t, []string{"a", "b"}, process(seriesInput("t", 0, "a", "b", "c")))
	// a and b stay active; c is still refused.
	*now = now.Add(40 * time.Second)
	assert.Equal(t, []string{"a"}, process(seriesInput("t", 1, "a", "c")))
	// b has been idle for 80 s (> 1 min): freed, so c fits; a was seen 40 s ago.
	*now = now.Add(40 * time.Second)
	assert.Equal(t, []string{"c", "a"}, process(seriesInput("t", 2, "c", "a", "d")))
	metadatatest.AssertEqualProcessorTenantBudgetActiveSeries(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", "t")), Value: 2},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorTenantBudgetExceeded(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", "t"), str("action", "drop")), Value: 3},
	}, metricdatatest.IgnoreTimestamp())
}

func TestBudgetMaxTenants(t *testing.T) {
	tp, _ := directProcessor(t, budgetConfig(1, BudgetDrop), nil)
	// max_tenants 2: t1 and t2 have their own budget, t3 and t4 share "_other".
	for _, tc := range []struct {
		tenant string
		want   []string
	}{{"t1", []string{"a"}}, {"t2", []string{"a"}}, {"t3", []string{"a"}}, {"t4", nil}} {
		out, err := tp.processMetrics(context.Background(), seriesInput(tc.tenant, 0, "a"))
		if tc.want == nil {
			require.ErrorIs(t, err, errSkip())
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, phasesOf(out), tc.tenant)
	}
	assert.Len(t, tp.budget.tenants, 3)
	assert.Contains(t, tp.budget.tenants, otherTenant)
}

// Overflow points of later batches must never go back in time (backends reject that).
func TestOverflowTimestampsIncrease(t *testing.T) {
	tp, _ := directProcessor(t, budgetConfig(1, BudgetOverflow), nil)
	var last pcommon.Timestamp
	for i, ms := range []int64{5000, 3000, 3000, 9000} { // a late batch, then a repeat
		out, err := tp.processMetrics(context.Background(), seriesInput("t", ms, "a", "b"))
		require.NoError(t, err)
		var ts pcommon.Timestamp
		for j := range out.ResourceMetrics().Len() {
			rm := out.ResourceMetrics().At(j)
			if _, ok := rm.Resource().Attributes().Get("device.id"); ok {
				continue
			}
			ts = rm.ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Timestamp()
		}
		require.NotZero(t, ts, "batch %d has an overflow point", i)
		assert.Greater(t, ts, last, "batch %d", i)
		last = ts
	}
}

func TestRegistryReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "devices.yaml")
	bump := func() { // a new modification time, whatever the file system's resolution
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.NoError(t, os.Chtimes(path, st.ModTime(), st.ModTime().Add(time.Duration(time.Now().UnixNano()%1e9)+time.Second)))
	}
	write := func(content string) {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		bump()
	}
	first, err := os.ReadFile("testdata/golden/registry_yaml/devices.yaml")
	require.NoError(t, err)
	write(string(first))

	cfg := loadProcessorConfig(t, "testdata/golden/registry_yaml/config.yaml")
	cfg.Registry.Get().Path = path
	cfg.Registry.Get().ReloadInterval = 10 * time.Millisecond
	tel := newTelemetry(t)
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, cfg, tel, sink)

	check := func(expectedFile string) bool {
		require.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
		expected, err := golden.ReadMetrics(expectedFile)
		require.NoError(t, err)
		err = pmetrictest.CompareMetrics(expected, collected(sink), compareOpts()...)
		if err != nil {
			t.Log(err)
		}
		return err == nil
	}
	require.True(t, check("testdata/golden/registry_yaml/expected.yaml"))

	// A valid new file: plc-1 is registered.
	write(string(first) + "plc-1:\n  tenant.id: plant-owner\n  device_group: plcs\n")
	require.Eventually(t, func() bool { return check("testdata/golden/registry_reload/expected.yaml") }, waitFor, tick)

	// An emptied file (`: > devices.yaml`) parses but is refused: the last good registry stays.
	write("")
	require.Eventually(t, func() bool {
		got, err := tel.GetMetric("otelcol_processor_tenant_registry_reloads")
		return err == nil && len(got.Data.(metricdata.Sum[int64]).DataPoints) == 2
	}, waitFor, tick)
	require.True(t, check("testdata/golden/registry_reload/expected.yaml"))

	// An invalid file: the last good registry stays, the failure is counted.
	write("inv-01: [this is not a mapping\n")
	require.Eventually(t, func() bool {
		got, err := tel.GetMetric("otelcol_processor_tenant_registry_reloads")
		return err == nil && len(got.Data.(metricdata.Sum[int64]).DataPoints) == 3
	}, waitFor, tick)
	require.True(t, check("testdata/golden/registry_reload/expected.yaml"))

	// A structurally wrong file (duplicate key) is refused the same way.
	write("inv-01: {tenant.id: x}\ninv-01: {tenant.id: y}\n")
	require.Eventually(t, func() bool {
		got, err := tel.GetMetric("otelcol_processor_tenant_registry_reloads")
		if err != nil {
			return false
		}
		for _, dp := range got.Data.(metricdata.Sum[int64]).DataPoints {
			if v, _ := dp.Attributes.Value("result"); v.AsString() == "error" && dp.Value == 2 {
				return true
			}
		}
		return false
	}, waitFor, tick)
	require.True(t, check("testdata/golden/registry_reload/expected.yaml"))

	// The file removed: also kept.
	require.NoError(t, os.Remove(path))
	require.Eventually(t, func() bool {
		got, err := tel.GetMetric("otelcol_processor_tenant_registry_reloads")
		if err != nil {
			return false
		}
		for _, dp := range got.Data.(metricdata.Sum[int64]).DataPoints {
			if v, _ := dp.Attributes.Value("result"); v.AsString() == "error" && dp.Value == 3 {
				return true
			}
		}
		return false
	}, waitFor, tick)
	require.True(t, check("testdata/golden/registry_reload/expected.yaml"))

	// Back to the first file.
	write(string(first))
	require.Eventually(t, func() bool { return check("testdata/golden/registry_yaml/expected.yaml") }, waitFor, tick)
	metadatatest.AssertEqualProcessorTenantRegistryReloads(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("result", "success")), Value: 3},
		{Attributes: aset(str("result", "error")), Value: 3},
		{Attributes: aset(str("result", "refused"), str("reason", "empty")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}

// A registry that does not exist at start is not fatal: resources are labelled without it
// until the file appears.
func TestRegistryMissingAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "devices.csv")
	cfg := loadProcessorConfig(t, "testdata/golden/registry_csv/config.yaml")
	cfg.Registry.Get().Path = path
	cfg.Registry.Get().ReloadInterval = 10 * time.Millisecond
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, cfg, nil, sink)
	require.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
	got := collected(sink)
	v, _ := got.ResourceMetrics().At(0).Resource().Attributes().Get("tenant.id")
	assert.Equal(t, "site-operator", v.Str(), "rules still apply")

	csv, err := os.ReadFile("testdata/golden/registry_csv/devices.csv")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, csv, 0o600))
	require.Eventually(t, func() bool {
		require.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
		expected, err := golden.ReadMetrics("testdata/golden/registry_csv/expected.yaml")
		require.NoError(t, err)
		return pmetrictest.CompareMetrics(expected, collected(sink), compareOpts()...) == nil
	}, waitFor, tick)
}

func TestRegistryParse(t *testing.T) {
	list := "- {device.id: a, tenant.id: t1}\n- device.id: b\n  site: s\n  empty: null\n"
	reg, err := parseRegistry([]byte(list), "yaml", "device.id")
	require.NoError(t, err)
	assert.Equal(t, map[string][]kv{"a": {{"tenant.id", "t1"}}, "b": {{"site", "s"}}}, reg.entries)

	reg, err = parseRegistry([]byte("7: {tenant.id: numeric-key}\n"), "yaml", "device.id")
	require.NoError(t, err)
	assert.Equal(t, []kv{{"tenant.id", "numeric-key"}}, reg.entries["7"])

	reg, err = parseRegistry(nil, "yaml", "device.id")
	require.NoError(t, err)
	assert.Empty(t, reg.entries)

	for _, bad := range []struct{ format, data, want string }{
		{"yaml", "a: [1, 2]\n", "want a mapping"},
		{"yaml", "a: {x: [1]}\n", "value must be a scalar"},
		{"yaml", "- {tenant.id: t}\n", "entry without device.id"},
		{"yaml", "a: {device.id: b}\n", `also sets device.id to "b"`},
		{"yaml", "just a string\n", "want a mapping"},
		{"csv", "tenant.id,site\nx,y\n", "no device.id column"},
		{"csv", "device.id,site\n,y\n", "line 2: empty device.id"},
		{"csv", "device.id,site\na,y\na,z\n", `duplicate device.id "a"`},
		{"csv", "device.id,site\na,y,extra\n", "wrong number of fields"},
		{"csv", "device.id,device.id\n", "given twice"},
	} {
		_, err := parseRegistry([]byte(bad.data), bad.format, "device.id")
		assert.ErrorContains(t, err, bad.want, bad.data)
	}
}

func TestTraces(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Match: map[string]Condition{"device.id": {Glob: "inv-*"}}, Set: map[string]string{"tenant.id": "pv-owner"}}}
	cfg.JobInstance = JobInstanceConfig{Job: "${device.protocol}", Instance: "${device.id}"}
	cfg.Required = RequiredConfig{Attributes: []string{"tenant.id"}, Action: RequiredDrop}
	cfg.Schema = SchemaConfig{ForbiddenKeys: []string{"user.id"}, Action: SchemaDropAttribute}
	tel := newTelemetry(t)
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := &consumertest.TracesSink{}
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })

	td := ptrace.NewTraces()
	for _, dev := range []string{"inv-01", "plc-1"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("device.id", dev)
		rs.Resource().Attributes().PutStr("device.protocol", "modbus")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("modbus.poll")
		sp.Attributes().PutStr("user.id", "u1")
		sp.Attributes().PutInt("modbus.unit_id", 3)
	}
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	require.Len(t, sink.AllTraces(), 1)
	got := sink.AllTraces()[0]
	require.Equal(t, 1, got.ResourceSpans().Len(), "plc-1 has no tenant: dropped")
	rs := got.ResourceSpans().At(0)
	assert.Equal(t, map[string]any{
		"device.id": "inv-01", "device.protocol": "modbus", "tenant.id": "pv-owner",
		"service.name": "modbus", "service.instance.id": "inv-01",
	}, rs.Resource().Attributes().AsRaw())
	assert.Equal(t, map[string]any{"modbus.unit_id": int64(3)}, rs.ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw())
	metadatatest.AssertEqualProcessorTenantRequiredMissing(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", ""), str("action", "drop")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}

func TestLifecycle(t *testing.T) {
	cfg := loadProcessorConfig(t, "testdata/golden/registry_yaml/config.yaml")
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, p.Shutdown(context.Background()), "shutdown without start")
	require.NoError(t, p.Shutdown(context.Background()), "twice")

	p, err = NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, p.Shutdown(context.Background()))
}

// Concurrent batches (several receivers) share the caches and the budget safely.
func TestConcurrentBatches(t *testing.T) {
	cfg := loadProcessorConfig(t, "testdata/golden/rules/config.yaml")
	cfg.Budget = configoptional.Some(BudgetConfig{MaxSeries: 5, IdleTimeout: time.Minute, Action: BudgetOverflow, MaxTenants: 10})
	cfg.Schema = SchemaConfig{ForbiddenKeys: []string{"user.id"}, Action: SchemaDropAttribute}
	sink := &consumertest.MetricsSink{}
	p := newMetricsProcessor(t, cfg, nil, sink)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				assert.NoError(t, p.ConsumeMetrics(context.Background(), gatewayInput()))
			}
		})
	}
	wg.Wait()
	// Per batch 15 data points: every tenant has 3 series except the tenantless inv-02 and
	// plc-1 (6 series, budget 5): their 6th series is folded into one overflow point.
	assert.Equal(t, 8*50*15, sink.DataPointCount())
}

func errSkip() error { return processorhelper.ErrSkipProcessingData }
