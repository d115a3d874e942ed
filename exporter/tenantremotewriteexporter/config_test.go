package tenantremotewriteexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	storageID := component.MustNewID("file_storage")

	tests := []struct {
		name      string
		check     func(t *testing.T, cfg *Config)
		errs      []string // every one must be reported
		unmarshal string   // error at unmarshal
	}{
		{
			name: "",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "http://prometheus:9090/api/v1/write", cfg.HTTP.Endpoint)
				assert.False(t, cfg.Tenant.HasValue())
				require.True(t, cfg.QueueConfig.HasValue())
				q := cfg.QueueConfig.Get()
				assert.Equal(t, &storageID, q.StorageID)
				assert.Equal(t, int64(5000), q.QueueSize)
				assert.Equal(t, 1, q.NumConsumers)
				assert.True(t, cfg.BackOffConfig.Enabled)
				assert.Equal(t, time.Second, cfg.BackOffConfig.InitialInterval)
				assert.Equal(t, 10*time.Second, cfg.BackOffConfig.MaxInterval)
				assert.Zero(t, cfg.BackOffConfig.MaxElapsedTime)
				assert.False(t, cfg.RemoteWriteQueue.Enabled)
				// Lean series by default.
				assert.Equal(t, []string{"tenant.id", "site", "device.id", "device_group", "device.protocol"}, cfg.PromoteResourceAttributes)
				assert.False(t, cfg.ResourceToTelemetrySettings.Enabled)
				assert.True(t, cfg.DisableScopeInfo)
			},
		},
		{
			name: "mimir",
			check: func(t *testing.T, cfg *Config) {
				require.True(t, cfg.Tenant.HasValue())
				assert.Equal(t, TenantConfig{Attribute: "tenant.id", Header: "X-Scope-OrgID", DefaultTenant: "site-operator", MaxTenants: 8}, *cfg.Tenant.Get())
				assert.True(t, cfg.ResourceToTelemetrySettings.Enabled)
				assert.Equal(t, &storageID, cfg.QueueConfig.Get().StorageID)
				assert.Equal(t, 2*time.Hour, cfg.MaxSampleAge)
				assert.Equal(t, []string{"tenant.id", "device.id", "meter.phase_count"}, cfg.PromoteResourceAttributes)
				assert.False(t, cfg.DisableScopeInfo)
			},
		},
		{
			name: "thanos",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "https://thanos:19291/api/v1/receive", cfg.HTTP.Endpoint)
				v, ok := cfg.HTTP.Headers.Get("X-Source")
				assert.True(t, ok)
				assert.Equal(t, configopaque.String("edge"), v)
				assert.Equal(t, "THANOS-TENANT", cfg.Tenant.Get().Header)
				assert.Equal(t, "tenant.id", cfg.Tenant.Get().Attribute)
				assert.Equal(t, defaultMaxTenants, cfg.Tenant.Get().MaxTenants)
			},
		},
		{
			name: "vm",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "http://vminsert:8480/insert/{tenant}/prometheus/api/v1/write", cfg.HTTP.Endpoint)
				assert.Empty(t, cfg.Tenant.Get().Header)
				assert.Equal(t, "grid.owner", cfg.Tenant.Get().Attribute)
				assert.Equal(t, "iiot", cfg.Namespace)
				assert.Equal(t, map[string]string{"gateway": "gw-17"}, cfg.ExternalLabels)
				assert.Equal(t, DeliveryFreshFirst, cfg.Delivery.Mode)
				assert.Equal(t, 0.25, cfg.Delivery.BacklogShare)
			},
		},
		{
			name: "bad",
			errs: []string{
				`endpoint: "ftp://x/{tenant}" is not an http(s) URL`,
				"remote_write_queue: must stay disabled",
				"tenant::attribute: must not be empty",
				`tenant::header: "Bad Header" is not a valid HTTP header name`,
				"tenant::max_tenants: 0, must be at least 1",
				`tenant::default_tenant: "a b" is not a valid tenant id`,
				"max_sample_age: -1m0s, must be 0 (keep every sample) or positive",
				"max_queue_bytes: -1, must be 0 (no budget) or positive",
				`delivery::mode: "newest", must be in_order (any backend) or fresh_first`,
				"delivery::backlog_share: 1.5, must be in (0, 1]",
				"promote_resource_attributes[1]: empty",
			},
		},
		{
			name: "budget_in_memory",
			errs: []string{"max_queue_bytes: needs a persistent queue (sending_queue::storage)"},
		},
		{
			name: "budget_above_queue_size",
			check: func(t *testing.T, cfg *Config) {
				assert.True(t, cfg.budgetShadowed(), "valid, with a warning at start")
			},
		},
		{
			name: "budget",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, int64(200000000), cfg.MaxQueueBytes)
				assert.False(t, cfg.budgetShadowed())
			},
		},
		{
			name: "template_without_tenant",
			errs: []string{"endpoint: contains {tenant} but the tenant section is not configured"},
		},
		{
			name: "no_way_to_tell",
			errs: []string{"endpoint: required", "tenant::header: empty and endpoint has no {tenant}"},
		},
		{
			name: "batched",
			check: func(t *testing.T, cfg *Config) {
				q := cfg.QueueConfig.Get()
				assert.Equal(t, &storageID, q.StorageID)
				assert.Equal(t, exporterhelper.RequestSizerTypeBytes, q.Sizer)
				assert.Equal(t, int64(268435456), q.QueueSize)
				require.True(t, q.Batch.HasValue(), "batch: enables batching in the queue")
				assert.Equal(t, exporterhelper.BatchConfig{FlushTimeout: 5 * time.Second, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 2048, MaxSize: 8192}, *q.Batch.Get())
			},
		},
		{
			name: "batch_inherits_sizer",
			check: func(t *testing.T, cfg *Config) {
				q := cfg.QueueConfig.Get()
				require.True(t, q.Batch.HasValue())
				assert.Equal(t, exporterhelper.RequestSizerTypeBytes, q.Batch.Get().Sizer)
				assert.Equal(t, int64(100000), q.Batch.Get().MinSize)
				assert.Positive(t, q.Batch.Get().FlushTimeout, "defaults fill what is not set")
			},
		},
		{
			name:      "typo",
			unmarshal: "atribute", //nolint:misspell // the typo is the test
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := component.NewIDWithName(metadata.Type, tt.name)
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := createDefaultConfig().(*Config)
			err = sub.Unmarshal(cfg)
			if tt.unmarshal != "" {
				require.ErrorContains(t, err, tt.unmarshal)
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				tt.check(t, cfg)
				return
			}
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	// The endpoint is the only required setting.
	require.ErrorContains(t, confmap.Validate(cfg), "endpoint: required")
	cfg.HTTP.Endpoint = "http://127.0.0.1:9090/api/v1/write"
	require.NoError(t, confmap.Validate(cfg))

	assert.False(t, cfg.Tenant.HasValue(), "no tenant split unless configured")
	tenant := cfg.Tenant
	assert.Equal(t, TenantConfig{Attribute: defaultTenantAttribute, Header: defaultTenantHeader, MaxTenants: defaultMaxTenants}, *tenant.GetOrInsertDefault())
	assert.True(t, cfg.QueueConfig.HasValue())
	assert.Equal(t, 1, cfg.QueueConfig.Get().NumConsumers, "one request at a time per tenant keeps samples in order")
	assert.Nil(t, cfg.QueueConfig.Get().StorageID)
	assert.False(t, cfg.RemoteWriteQueue.Enabled)
	assert.Zero(t, cfg.BackOffConfig.MaxElapsedTime, "retry until the queue delivers")
	require.NotNil(t, cfg.MaxBatchRequestParallelism)
	assert.Equal(t, 1, *cfg.MaxBatchRequestParallelism)
	assert.Equal(t, 55*time.Minute, cfg.MaxSampleAge, "under a stock Prometheus' 1 h")
	assert.Equal(t, DeliveryInOrder, cfg.Delivery.Mode, "in order suits every backend")
	assert.Zero(t, cfg.MaxQueueBytes)

	// An empty tenant section enables the split with defaults.
	conf := confmap.NewFromStringMap(map[string]any{"endpoint": "http://h/w", "tenant": nil})
	cfg = createDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(cfg))
	require.True(t, cfg.Tenant.HasValue())
	assert.Equal(t, defaultTenantHeader, cfg.Tenant.Get().Header)
	require.NoError(t, confmap.Validate(cfg))

	// sending_queue can be switched off (not durable, but allowed).
	conf = confmap.NewFromStringMap(map[string]any{"endpoint": "http://h/w", "sending_queue": map[string]any{"enabled": false}})
	cfg = createDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(cfg))
	assert.False(t, cfg.QueueConfig.HasValue())
}

func TestValidTenant(t *testing.T) {
	for _, ok := range []string{"acme", "0:1", "grid-operator_2", "A.b", "x*'()!"} {
		assert.True(t, validTenant(ok), ok)
	}
	long := make([]byte, maxTenantLength+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", ".", "..", "a b", "a/b", "ä", "a\nb", string(long)} {
		assert.False(t, validTenant(bad), "%q", bad)
	}
}
