package opcuareceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/sharedcomponent"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

// receivers shares one poller between the metrics, traces and logs pipelines of the same config.
var receivers = sharedcomponent.NewMap[*Config, *opcuaReceiver]()

// NewFactory returns the factory of the opcua receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

// shared creates the receiver of a config once, for the metrics and the traces pipeline.
func shared(cfg component.Config, set receiver.Settings) (*sharedcomponent.Component[*opcuaReceiver], error) {
	c := cfg.(*Config)
	return receivers.LoadOrStore(c, func() (*opcuaReceiver, error) {
		if c.DeprecatedDeviceID != "" {
			set.Logger.Warn("The device_id key is deprecated: rename it to id, as in the other receivers",
				zap.String("device_id", c.DeprecatedDeviceID))
		}
		return newReceiver(c, set)
	})
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := shared(cfg, set)
	if err != nil {
		return nil, err
	}
	r.Value.setMetrics(next)
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := shared(cfg, set)
	if err != nil {
		return nil, err
	}
	r.Value.setTraces(next)
	return r, nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := shared(cfg, set)
	if err != nil {
		return nil, err
	}
	r.Value.setLogs(next)
	return r, nil
}
