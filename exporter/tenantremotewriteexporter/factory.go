package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"fmt"
	"slices"
	"time"

	prw "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/metadata"
)

// Defaults of the tenant section.
const (
	defaultTenantAttribute = "tenant.id"
	defaultTenantHeader    = "X-Scope-OrgID"
	defaultMaxTenants      = 32
	// defaultMaxSampleAge stays under the 1 h a stock Prometheus accepts behind its newest
	// sample (head chunk range 2 h / 2), with 5 min for clock skew and for the request's own
	// way: a request holding one sample past the limit is refused whole.
	defaultMaxSampleAge = 55 * time.Minute
	// defaultBacklogShare leaves half of the time to live data after an outage (fresh_first).
	defaultBacklogShare = 0.5
)

// NewFactory creates the factory of the tenantremotewrite exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	base := *prw.NewFactory().CreateDefaultConfig().(*prw.Config)
	// No placeholder URL: the endpoint is required.
	base.ClientConfig.Endpoint = ""
	base.HTTP.Endpoint = ""
	// The underlying exporter's in-memory queue is replaced by our sending_queue.
	base.RemoteWriteQueue.Enabled = false
	// One request at a time per tenant: remote-write backends such as Prometheus reject
	// samples older than the newest one of a series, so order matters.
	one := 1
	base.MaxBatchRequestParallelism = &one
	// Retries govern the durable queue: never give up on retryable errors (the queue size
	// bounds what is held), back off up to 30 s.
	base.BackOffConfig = configretry.NewDefaultBackOffConfig()
	base.BackOffConfig.MaxElapsedTime = 0

	// Lean series: the scope's name and version are the same on every series of a receiver and
	// nobody queries by them (disable_scope_info: false brings them back).
	base.DisableScopeInfo = true

	queue := exporterhelper.NewDefaultQueueConfig()
	queue.NumConsumers = 1

	return &Config{
		Config:       base,
		QueueConfig:  configoptional.Some(queue),
		MaxSampleAge: defaultMaxSampleAge,
		Delivery:     DeliveryConfig{Mode: DeliveryInOrder, BacklogShare: defaultBacklogShare},
		// A new slice per config: Unmarshal replaces it, nothing appends to the default.
		PromoteResourceAttributes: slices.Clone(defaultPromoted),
		Tenant: configoptional.Default(TenantConfig{
			Attribute:  defaultTenantAttribute,
			Header:     defaultTenantHeader,
			MaxTenants: defaultMaxTenants,
		}),
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("tenantremotewrite: unexpected config type %T", cfg)
	}
	return newTenantExporter(ctx, set, c)
}
