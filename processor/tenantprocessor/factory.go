package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
)

// NewFactory creates the factory of the tenant processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		TenantAttribute: "tenant.id",
		Registry: configoptional.Default(RegistryConfig{
			Key:            "device.id",
			ReloadInterval: 10 * time.Second,
			MaxShrink:      0.5,
		}),
		Required: RequiredConfig{Action: RequiredPass},
		Schema:   SchemaConfig{Action: SchemaDropAttribute},
		Budget: configoptional.Default(BudgetConfig{
			MaxSeries:   10000,
			IdleTimeout: 15 * time.Minute,
			Action:      BudgetOverflow,
			MaxTenants:  100,
		}),
	}
}

func newFromConfig(set processor.Settings, cfg component.Config) (*tenantProcessor, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("tenant: unexpected config type %T", cfg)
	}
	return newTenantProcessor(set.TelemetrySettings, c)
}

var capabilities = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	tp, err := newFromConfig(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, tp.processMetrics,
		capabilities, processorhelper.WithStart(tp.start), processorhelper.WithShutdown(tp.shutdown))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	tp, err := newFromConfig(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, tp.processTraces,
		capabilities, processorhelper.WithStart(tp.start), processorhelper.WithShutdown(tp.shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	tp, err := newFromConfig(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, tp.processLogs,
		capabilities, processorhelper.WithStart(tp.start), processorhelper.WithShutdown(tp.shutdown))
}
