package tenantremotewriteexporter

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// deviceMetrics is one device resource as the receivers write it, with a reading ("power", its own
// attribute phase) and a reading whose own attribute has the key of a promoted resource attribute.
func deviceMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	for k, v := range map[string]string{
		"service.name": "modbus/plant", "service.instance.id": "inv-1",
		"tenant.id": "pv-owner", "site": "north", "device.id": "inv-1", "device_group": "inverters",
		"device.protocol": "modbus", "device.address": "tcp://10.1.2.3:502/1", "device.manufacturer": "ACME",
	} {
		rm.Resource().Attributes().PutStr(k, v)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver")
	sm.Scope().SetVersion("1.2.3")
	m := sm.Metrics().AppendEmpty()
	m.SetName("power")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(1_000_000_000))
	dp.SetDoubleValue(5)
	dp.Attributes().PutStr("phase", "L1")
	m = sm.Metrics().AppendEmpty()
	m.SetName("energy")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp = sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(1_000_000_000))
	dp.SetDoubleValue(7)
	dp.Attributes().PutStr("site", "roof") // the reading's own label wins
	return md
}

// labelNames of the first series of a metric as the server received it.
func labelsOf(t *testing.T, srv *rwServer, tenant, name string) string {
	t.Helper()
	s := srv.samples(tenant, name)
	require.NotEmpty(t, s, name)
	return s[0].Series
}

func TestLeanSeriesByDefault(t *testing.T) {
	srv := newRWServer(t)
	exp := startExporter(t, withTenants(testConfig(srv.URL+"/api/v1/push"), nil), nil, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), deviceMetrics()))
	require.Eventually(t, func() bool {
		return len(srv.samples("pv-owner", "power")) == 1 && len(srv.samples("pv-owner", "energy_total")) == 1 &&
			len(srv.samples("pv-owner", "target_info")) == 1
	}, waitFor, tick)

	// Only the labels people query by, and the reading's own; no scope labels, no device_address.
	assert.Equal(t, "power{device_group=inverters,device_id=inv-1,device_protocol=modbus,instance=inv-1,job=modbus/plant,phase=L1,site=north,tenant_id=pv-owner}",
		labelsOf(t, srv, "pv-owner", "power"))
	assert.Equal(t, "energy_total{device_group=inverters,device_id=inv-1,device_protocol=modbus,instance=inv-1,job=modbus/plant,site=roof,tenant_id=pv-owner}",
		labelsOf(t, srv, "pv-owner", "energy_total"))
	// The rest stays on target_info, once per resource, joinable on job and instance.
	ti := labelsOf(t, srv, "pv-owner", "target_info")
	assert.Contains(t, ti, "device_address=tcp://10.1.2.3:502/1")
	assert.Contains(t, ti, "device_manufacturer=ACME")
	assert.Contains(t, ti, "job=modbus/plant")
	assert.Contains(t, ti, "instance=inv-1")
}

func TestEverythingOnEverySeries(t *testing.T) {
	srv := newRWServer(t)
	cfg := withTenants(testConfig(srv.URL+"/api/v1/push"), nil)
	cfg.ResourceToTelemetrySettings.Enabled = true
	cfg.DisableScopeInfo = false
	exp := startExporter(t, cfg, nil, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), deviceMetrics()))
	require.Eventually(t, func() bool { return len(srv.samples("pv-owner", "power")) == 1 }, waitFor, tick)

	power := labelsOf(t, srv, "pv-owner", "power")
	for _, l := range []string{"device_address=tcp://10.1.2.3:502/1", "device_manufacturer=ACME", "device_id=inv-1", "tenant_id=pv-owner",
		"otel_scope_name=github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver", "otel_scope_version=1.2.3", "phase=L1"} {
		assert.Contains(t, power, l)
	}
}

func TestPromoteListChosen(t *testing.T) {
	srv := newRWServer(t)
	cfg := testConfig(srv.URL + "/api/v1/write") // no tenant split
	cfg.PromoteResourceAttributes = []string{"device.address", "not.there"}
	exp := startExporter(t, cfg, nil, nil)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), deviceMetrics()))
	require.Eventually(t, func() bool { return len(srv.samples("", "power")) == 1 }, waitFor, tick)
	assert.Equal(t, "power{device_address=tcp://10.1.2.3:502/1,instance=inv-1,job=modbus/plant,phase=L1}", labelsOf(t, srv, "", "power"))
}

// Without a queue the pipeline may hand the same (read-only) data to other consumers: it must not change.
func TestPromoteLeavesSharedDataAlone(t *testing.T) {
	srv := newRWServer(t)
	cfg := testConfig(srv.URL + "/api/v1/write")
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	exp := startExporter(t, cfg, nil, nil)
	assert.True(t, exp.Capabilities().MutatesData)

	md := deviceMetrics()
	md.MarkReadOnly()
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
	assert.Equal(t, 1, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes().Len())
	require.Eventually(t, func() bool { return len(srv.samples("", "power")) == 1 }, waitFor, tick)
	assert.True(t, strings.Contains(labelsOf(t, srv, "", "power"), "device_id=inv-1"))
}

// A retried request is promoted again: nothing doubles or changes.
func TestPromoteIdempotent(t *testing.T) {
	md := deviceMetrics()
	promote(md, defaultPromoted)
	once := pmetric.NewMetrics()
	md.CopyTo(once)
	promote(md, defaultPromoted)
	assert.Equal(t, once, md)
	attrs := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes()
	assert.Equal(t, 6, attrs.Len()) // phase + the five promoted
}

func BenchmarkPromote(b *testing.B) {
	base := deviceMetrics()
	for b.Loop() {
		md := pmetric.NewMetrics()
		base.CopyTo(md)
		promote(md, defaultPromoted)
	}
}
