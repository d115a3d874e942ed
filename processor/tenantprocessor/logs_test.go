package tenantprocessor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadatatest"
)

// lres describes one resource of a logs test input: the device's resource and its event records.
type lres struct {
	attrs   map[string]any
	records []rec
}

type rec struct {
	body  string
	sev   plog.SeverityNumber
	attrs map[string]any
	ms    int64 // offset from baseTime
}

func buildLogs(resources ...lres) plog.Logs {
	ld := plog.NewLogs()
	for _, r := range resources {
		rl := ld.ResourceLogs().AppendEmpty()
		_ = rl.Resource().Attributes().FromRaw(r.attrs)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("otelcol-iiot/test")
		for _, e := range r.records {
			lr := sl.LogRecords().AppendEmpty()
			lr.Body().SetStr(e.body)
			lr.SetSeverityNumber(e.sev)
			lr.SetSeverityText(strings.ToUpper(e.sev.String()))
			lr.SetEventName("OffNormalAlarmType")
			_ = lr.Attributes().FromRaw(e.attrs)
			lr.SetTimestamp(baseTime + pcommon.Timestamp(e.ms*1_000_000))
			lr.SetObservedTimestamp(baseTime + pcommon.Timestamp(e.ms*1_000_000+5_000_000))
		}
	}
	return ld
}

// gatewayEvents: the five devices of gatewayInput (same resources), each with an alarm going
// active and an operator's acknowledgement, as the opcua receiver records them.
func gatewayEvents() plog.Logs {
	device := func(attrs map[string]any) lres {
		alarm := func(acked bool, ms int64) rec {
			return rec{body: "Grid fault", sev: plog.SeverityNumberError, ms: ms, attrs: map[string]any{
				"opcua.event.severity": 700, "opcua.condition.name": "GridFault",
				"opcua.condition.active": true, "opcua.condition.acked": acked,
			}}
		}
		return lres{attrs: attrs, records: []rec{alarm(false, 0), alarm(true, 1500)}}
	}
	return buildLogs(
		device(map[string]any{"device.id": "inv-01", "device.protocol": "modbus", "site": "sz-01"}),
		device(map[string]any{"device.id": "inv-02", "device.protocol": "modbus", "site": "gz-03"}),
		device(map[string]any{"device.id": "meter-7", "device.protocol": "dlt645", "site": "sz-01"}),
		device(map[string]any{"device.id": "meter-8", "device.protocol": "dlt645", "tenant.id": "preassigned"}),
		device(map[string]any{"device.id": "plc-1", "device.protocol": "opcua"}),
	)
}

// schemaEvents carries record attributes that break the schema of the schema cases (the resources
// of schemaInput). The two GridFault records are alike but for http.session.id: once it is dropped
// they are identical, and both stay (two events, not a conflicting sample). The body is longer than
// max_value_length: the schema does not look at bodies.
func schemaEvents() plog.Logs {
	return buildLogs(
		lres{attrs: map[string]any{"device.id": "inv-01", "tenant.id": "pv-owner", "user.id": "u-17"}, records: []rec{
			{body: "Grid fault: inverter disconnected from the grid", sev: plog.SeverityNumberError, attrs: map[string]any{"opcua.condition.name": "GridFault"}},
			{body: "Grid fault: inverter disconnected from the grid", sev: plog.SeverityNumberError, attrs: map[string]any{"opcua.condition.name": "GridFault", "http.session.id": "s-9"}},
			{body: "Door opened", sev: plog.SeverityNumberInfo, attrs: map[string]any{"opcua.source.name": "Cabinet", "Operator-Name": "li"}, ms: 10},
			{body: "Note", sev: plog.SeverityNumberInfo, attrs: map[string]any{"opcua.source.name": "Cabinet", "note": "a value much longer than sixteen bytes"}, ms: 20},
		}},
		lres{attrs: map[string]any{"device.id": "meter-7", "tenant.id": "grid-operator"}, records: []rec{
			{body: "Cover opened", sev: plog.SeverityNumberWarn, attrs: map[string]any{"opcua.condition.name": "Cover"}},
		}},
	)
}

// logInputs name the generators of input_logs.yaml (referenced by a case's input_logs.txt).
var logInputs = map[string]func() plog.Logs{
	"gateway": gatewayEvents,
	"schema":  schemaEvents,
}

func newLogsProcessor(t *testing.T, cfg *Config, tel *componenttest.Telemetry, sink *consumertest.LogsSink) processor.Logs {
	t.Helper()
	set := processortest.NewNopSettings(metadata.Type)
	if tel != nil {
		set.TelemetrySettings = tel.NewTelemetrySettings()
	}
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func collectedLogs(sink *consumertest.LogsSink) plog.Logs {
	got := plog.NewLogs()
	for _, ld := range sink.AllLogs() {
		ld.ResourceLogs().MoveAndAppendTo(got.ResourceLogs())
	}
	sink.Reset()
	return got
}

func compareLogsOpts() []plogtest.CompareLogsOption {
	return []plogtest.CompareLogsOption{plogtest.IgnoreResourceLogsOrder(), plogtest.IgnoreLogRecordsOrder()}
}

// TestGoldenLogs runs every case of testdata/golden that has input_logs.txt: its config.yaml applied
// to input_logs.yaml must give expected_logs.yaml (-update rewrites it).
func TestGoldenLogs(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "input_logs.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, namePath := range names {
		dir := filepath.Dir(namePath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			inputPath := filepath.Join(dir, "input_logs.yaml")
			if _, err := os.Stat(inputPath); os.IsNotExist(err) {
				name, err := os.ReadFile(namePath)
				require.NoError(t, err)
				gen, ok := logInputs[string(trimNL(name))]
				require.True(t, ok, "unknown logs input generator %q", name)
				require.NoError(t, golden.WriteLogsToFile(inputPath, gen()))
			}
			input, err := golden.ReadLogs(inputPath)
			require.NoError(t, err)

			sink := &consumertest.LogsSink{}
			p := newLogsProcessor(t, loadProcessorConfig(t, filepath.Join(dir, "config.yaml")), nil, sink)
			require.NoError(t, p.ConsumeLogs(context.Background(), input))
			got := collectedLogs(sink)

			expectedPath := filepath.Join(dir, "expected_logs.yaml")
			if *update {
				require.NoError(t, golden.WriteLogsToFile(expectedPath, got))
			}
			expected, err := golden.ReadLogs(expectedPath)
			require.NoError(t, err)
			require.NoError(t, plogtest.CompareLogs(expected, got, compareLogsOpts()...))
		})
	}
}

// TestLogsResourcesAsMetrics: for every golden case on the gateway's devices, a device's event
// records get exactly the resource its metrics get (tenant, site, job/instance, …), and a device whose
// metrics are dropped has its records dropped too.
func TestLogsResourcesAsMetrics(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "input.txt"))
	require.NoError(t, err)
	n := 0
	for _, namePath := range dirs {
		name, err := os.ReadFile(namePath)
		require.NoError(t, err)
		if string(trimNL(name)) != "gateway" {
			continue
		}
		n++
		dir := filepath.Dir(namePath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg := loadProcessorConfig(t, filepath.Join(dir, "config.yaml"))
			msink, lsink := &consumertest.MetricsSink{}, &consumertest.LogsSink{}
			require.NoError(t, newMetricsProcessor(t, cfg, nil, msink).ConsumeMetrics(context.Background(), gatewayInput()))
			require.NoError(t, newLogsProcessor(t, cfg, nil, lsink).ConsumeLogs(context.Background(), gatewayEvents()))

			fromMetrics := map[string]map[string]any{}
			md := collected(msink)
			for i := range md.ResourceMetrics().Len() {
				a := md.ResourceMetrics().At(i).Resource().Attributes()
				id, _ := a.Get("device.id")
				fromMetrics[id.Str()] = a.AsRaw()
			}
			fromLogs := map[string]map[string]any{}
			ld := collectedLogs(lsink)
			for i := range ld.ResourceLogs().Len() {
				a := ld.ResourceLogs().At(i).Resource().Attributes()
				id, _ := a.Get("device.id")
				fromLogs[id.Str()] = a.AsRaw()
			}
			assert.NotEmpty(t, fromLogs)
			assert.Equal(t, fromMetrics, fromLogs)
		})
	}
	require.GreaterOrEqual(t, n, 5, "gateway cases")
}

func TestLogs(t *testing.T) {
	base := func() *Config {
		cfg := createDefaultConfig().(*Config)
		cfg.Rules = []RuleConfig{{Match: map[string]Condition{"device.id": {Glob: "inv-*"}}, Set: map[string]string{"tenant.id": "pv-owner"}}}
		cfg.JobInstance = JobInstanceConfig{Job: "${device.protocol}", Instance: "${device.id}"}
		return cfg
	}
	// two devices (inv-01: pv-owner by the rule, plc-1: no tenant), two records each; the second
	// record of each carries user.id.
	input := func() plog.Logs {
		ev := func(extra map[string]any) rec {
			attrs := map[string]any{"opcua.condition.name": "GridFault", "opcua.event.severity": 700}
			for k, v := range extra {
				attrs[k] = v
			}
			return rec{body: "Grid fault", sev: plog.SeverityNumberError, attrs: attrs}
		}
		return buildLogs(
			lres{attrs: map[string]any{"device.id": "inv-01", "device.protocol": "opcua"}, records: []rec{ev(nil), ev(map[string]any{"user.id": "u1"})}},
			lres{attrs: map[string]any{"device.id": "plc-1", "device.protocol": "opcua"}, records: []rec{ev(nil), ev(map[string]any{"user.id": "u2"})}},
		)
	}
	type want struct {
		tenants  map[string]string // device.id → tenant.id of the records delivered ("" none)
		records  int
		userIDs  int // records still carrying user.id
		required []metricdata.DataPoint[int64]
		schema   []metricdata.DataPoint[int64]
	}
	for _, tc := range []struct {
		name   string
		config func(*Config)
		want   want
	}{
		{"labels only", func(*Config) {}, want{
			tenants: map[string]string{"inv-01": "pv-owner", "plc-1": ""}, records: 4, userIDs: 2,
		}},
		{"required default_tenant", func(c *Config) {
			c.Required = RequiredConfig{Attributes: []string{"tenant.id"}, Action: RequiredDefaultTenant, DefaultTenant: "site-operator"}
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner", "plc-1": "site-operator"}, records: 4, userIDs: 2,
			required: []metricdata.DataPoint[int64]{{Attributes: aset(str("tenant", "site-operator"), str("action", "default_tenant")), Value: 2}},
		}},
		{"required drop", func(c *Config) {
			c.Required = RequiredConfig{Attributes: []string{"tenant.id"}, Action: RequiredDrop}
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner"}, records: 2, userIDs: 1,
			required: []metricdata.DataPoint[int64]{{Attributes: aset(str("tenant", ""), str("action", "drop")), Value: 2}},
		}},
		{"required pass", func(c *Config) {
			c.Required = RequiredConfig{Attributes: []string{"tenant.id"}, Action: RequiredPass}
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner", "plc-1": ""}, records: 4, userIDs: 2,
			required: []metricdata.DataPoint[int64]{{Attributes: aset(str("tenant", ""), str("action", "pass")), Value: 2}},
		}},
		{"schema drop_attribute", func(c *Config) {
			c.Schema = SchemaConfig{ForbiddenKeys: []string{"user.id"}, Action: SchemaDropAttribute}
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner", "plc-1": ""}, records: 4, userIDs: 0,
			schema: []metricdata.DataPoint[int64]{
				{Attributes: aset(str("tenant", "pv-owner"), str("reason", "forbidden_key"), str("action", "drop_attribute")), Value: 1},
				{Attributes: aset(str("tenant", ""), str("reason", "forbidden_key"), str("action", "drop_attribute")), Value: 1},
			},
		}},
		{"schema drop_data", func(c *Config) {
			c.Schema = SchemaConfig{ForbiddenKeys: []string{"user.id"}, Action: SchemaDropData}
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner", "plc-1": ""}, records: 2, userIDs: 0,
			schema: []metricdata.DataPoint[int64]{
				{Attributes: aset(str("tenant", "pv-owner"), str("reason", "forbidden_key"), str("action", "drop_data")), Value: 1},
				{Attributes: aset(str("tenant", ""), str("reason", "forbidden_key"), str("action", "drop_data")), Value: 1},
			},
		}},
		{"schema values on records", func(c *Config) {
			c.Schema = SchemaConfig{AttributeValues: map[string][]string{"opcua.condition.name": {"DoorOpen"}}, Action: SchemaDropData}
		}, want{
			tenants: map[string]string{}, records: 0,
			schema: []metricdata.DataPoint[int64]{
				{Attributes: aset(str("tenant", "pv-owner"), str("reason", "value_not_allowed"), str("action", "drop_data")), Value: 2},
				{Attributes: aset(str("tenant", ""), str("reason", "value_not_allowed"), str("action", "drop_data")), Value: 2},
			},
		}},
		{"schema on the resource", func(c *Config) {
			c.Schema = SchemaConfig{AttributeValues: map[string][]string{"device.id": {"inv-01"}}, Action: SchemaDropData}
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner"}, records: 2, userIDs: 1,
			schema: []metricdata.DataPoint[int64]{
				{Attributes: aset(str("tenant", ""), str("reason", "value_not_allowed"), str("action", "drop_data")), Value: 1},
			},
		}},
		// Metric checks and the series budget are for metrics: records pass them untouched.
		{"metric checks and budget", func(c *Config) {
			c.Schema = SchemaConfig{Vocabulary: vocabularyElectrical, MetricPrefixes: []string{"opcua."}, Action: SchemaDropData}
			c.Budget = configoptional.Some(BudgetConfig{MaxSeries: 1, IdleTimeout: time.Minute, Action: BudgetDrop, MaxTenants: 1})
		}, want{
			tenants: map[string]string{"inv-01": "pv-owner", "plc-1": ""}, records: 4, userIDs: 2,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.config(cfg)
			tel := newTelemetry(t)
			tp, _ := directProcessor(t, cfg, tel)
			out, err := tp.processLogs(context.Background(), input())
			if tc.want.records == 0 {
				require.ErrorIs(t, err, errSkip(), "nothing left: the batch is not passed on")
			} else {
				require.NoError(t, err)
			}
			tenants := map[string]string{}
			userIDs := 0
			for i := range out.ResourceLogs().Len() {
				rl := out.ResourceLogs().At(i)
				a := rl.Resource().Attributes()
				id, _ := a.Get("device.id")
				tenants[id.Str()] = ""
				if tenant, ok := a.Get("tenant.id"); ok {
					tenants[id.Str()] = tenant.Str()
				}
				job, _ := a.Get("service.name")
				assert.Equal(t, "opcua", job.Str(), "job_instance on %s", id.Str())
				for j := range rl.ScopeLogs().Len() {
					lrs := rl.ScopeLogs().At(j).LogRecords()
					for k := range lrs.Len() {
						if _, ok := lrs.At(k).Attributes().Get("user.id"); ok {
							userIDs++
						}
						assert.Equal(t, "Grid fault", lrs.At(k).Body().Str(), "the record itself is untouched")
					}
				}
			}
			assert.Equal(t, tc.want.tenants, tenants)
			assert.Equal(t, tc.want.records, out.LogRecordCount())
			assert.Equal(t, tc.want.userIDs, userIDs)
			if tc.want.required != nil {
				metadatatest.AssertEqualProcessorTenantRequiredMissing(t, tel, tc.want.required, metricdatatest.IgnoreTimestamp())
			} else {
				_, err := tel.GetMetric("otelcol_processor_tenant_required_missing")
				assert.Error(t, err, "no required_missing counted")
			}
			if tc.want.schema != nil {
				metadatatest.AssertEqualProcessorTenantSchemaViolations(t, tel, tc.want.schema, metricdatatest.IgnoreTimestamp())
			} else {
				_, err := tel.GetMetric("otelcol_processor_tenant_schema_violations")
				assert.Error(t, err, "no schema violation counted")
			}
			_, err = tel.GetMetric("otelcol_processor_tenant_budget_active_series")
			assert.Error(t, err, "logs do not count as series")
		})
	}
}

// Records alike once an attribute is dropped are two events: both are kept (no duplicate_after_drop,
// unlike data points), and the record's body is not subject to max_value_length.
func TestLogsNoDedupe(t *testing.T) {
	tel := newTelemetry(t)
	sink := &consumertest.LogsSink{}
	p := newLogsProcessor(t, loadProcessorConfig(t, "testdata/golden/schema_drop_attribute/config.yaml"), tel, sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), schemaEvents()))
	got := collectedLogs(sink)
	assert.Equal(t, 5, got.LogRecordCount())
	lrs := got.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	assert.Equal(t, lrs.At(0).Attributes().AsRaw(), lrs.At(1).Attributes().AsRaw())
	assert.Equal(t, lrs.At(0).Timestamp(), lrs.At(1).Timestamp())
	assert.Equal(t, "Grid fault: inverter disconnected from the grid", lrs.At(0).Body().Str())
	metadatatest.AssertEqualProcessorTenantSchemaViolations(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("tenant", "pv-owner"), str("reason", "forbidden_key"), str("action", "drop_attribute")), Value: 2},
		{Attributes: aset(str("tenant", "pv-owner"), str("reason", "key_pattern"), str("action", "drop_attribute")), Value: 1},
		{Attributes: aset(str("tenant", "pv-owner"), str("reason", "value_length"), str("action", "drop_attribute")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}

// The registry reload reaches the logs pipeline's processor as it does the metrics one's.
func TestLogsRegistryReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "devices.yaml")
	require.NoError(t, os.WriteFile(path, []byte("plc-1: {tenant.id: first-owner}\n"), 0o600))
	cfg := createDefaultConfig().(*Config)
	cfg.Registry = configoptional.Some(RegistryConfig{Path: path, Key: "device.id", ReloadInterval: 10 * tick, MaxShrink: 1})
	sink := &consumertest.LogsSink{}
	p := newLogsProcessor(t, cfg, nil, sink)
	tenantOfPLC := func() string {
		require.NoError(t, p.ConsumeLogs(context.Background(), gatewayEvents()))
		ld := collectedLogs(sink)
		for i := range ld.ResourceLogs().Len() {
			a := ld.ResourceLogs().At(i).Resource().Attributes()
			if id, _ := a.Get("device.id"); id.Str() == "plc-1" {
				if v, ok := a.Get("tenant.id"); ok {
					return v.Str()
				}
				return ""
			}
		}
		return "<dropped>"
	}
	require.Equal(t, "first-owner", tenantOfPLC())
	require.NoError(t, os.WriteFile(path, []byte("plc-1: {tenant.id: second-owner}\n"), 0o600))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(path, st.ModTime(), st.ModTime().Add(2e9)))
	require.Eventually(t, func() bool { return tenantOfPLC() == "second-owner" }, waitFor, tick)
}

// Concurrent logs batches (the opcua and otlp receivers of the edge default's logs pipeline) share the
// decision cache and the schema's verdict cache safely.
func TestLogsConcurrentBatches(t *testing.T) {
	cfg := loadProcessorConfig(t, "testdata/golden/rules/config.yaml")
	cfg.Schema = SchemaConfig{ForbiddenKeys: []string{"opcua.condition.acked"}, Action: SchemaDropAttribute}
	sink := &consumertest.LogsSink{}
	p := newLogsProcessor(t, cfg, nil, sink)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				assert.NoError(t, p.ConsumeLogs(context.Background(), gatewayEvents()))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8*50*10, sink.LogRecordCount())
	for _, ld := range sink.AllLogs() {
		for i := range ld.ResourceLogs().Len() {
			rl := ld.ResourceLogs().At(i)
			_, ok := rl.Resource().Attributes().Get("env")
			require.True(t, ok, "defaults on every resource")
			lrs := rl.ScopeLogs().At(0).LogRecords()
			for k := range lrs.Len() {
				_, ok := lrs.At(k).Attributes().Get("opcua.condition.acked")
				require.False(t, ok)
			}
		}
	}
}
