package tdigestprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/processor/tdigestprocessor/internal/metadata"
)

// NewFactory returns the factory of the tdigest processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	pm, _, err := newMetricsProcessor(ctx, set, cfg.(*Config), next, clock.Real{})
	return pm, err
}

// newMetricsProcessor builds the processor with a given clock (tests pass a fake one).
func newMetricsProcessor(ctx context.Context, set processor.Settings, cfg *Config, next consumer.Metrics, clock clock.Clock) (processor.Metrics, *tdigestProcessor, error) {
	p, err := newProcessor(set, cfg, next, clock)
	if err != nil {
		return nil, nil, err
	}
	pm, err := processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: cfg.mutates()}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
	)
	if err != nil {
		return nil, nil, err
	}
	return pm, p, nil
}
