package modbusreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/sharedcomponent"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

// receivers shares one poller between the metrics and traces pipelines of a receiver.
var receivers = sharedcomponent.NewMap[*Config, *modbusReceiver]()

// NewFactory returns the factory of the modbus receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
		receiver.WithTraces(createTraces, metadata.TracesStability))
}

func createDefaultConfig() component.Config {
	return &Config{Settings: device.NewDefaultSettings(), Metrics: metadata.DefaultMetricsConfig(), DTU: *dtu.NewDefaultConfig()}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	c, err := receivers.LoadOrStore(cfg.(*Config), func() (*modbusReceiver, error) { return newReceiver(cfg.(*Config), set) })
	if err != nil {
		return nil, err
	}
	c.Value.SetMetrics(next)
	return c, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	c, err := receivers.LoadOrStore(cfg.(*Config), func() (*modbusReceiver, error) { return newReceiver(cfg.(*Config), set) })
	if err != nil {
		return nil, err
	}
	c.Value.SetTraces(next)
	return c, nil
}
