// Package devicetest holds test helpers shared by the device receivers: loading a config from YAML
// and running a receiver with both its pipelines into sinks.
package devicetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"gopkg.in/yaml.v3"
)

// LoadConfig unmarshals yml over the factory's default config and validates it.
func LoadConfig(t testing.TB, f receiver.Factory, yml string) component.Config {
	t.Helper()
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(yml), &raw))
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	return cfg
}

// Sinks receive what a receiver emits.
type Sinks struct {
	Metrics *consumertest.MetricsSink
	Traces  *consumertest.TracesSink
}

// StartReceiver runs the factory's receiver on cfg with both a metrics and a traces pipeline (one
// shared poller) and shuts both down when the test ends.
func StartReceiver(t testing.TB, f receiver.Factory, cfg component.Config) Sinks {
	t.Helper()
	s := Sinks{Metrics: new(consumertest.MetricsSink), Traces: new(consumertest.TracesSink)}
	set := receivertest.NewNopSettings(f.Type())
	mr, err := f.CreateMetrics(context.Background(), set, cfg, s.Metrics)
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, s.Traces)
	require.NoError(t, err)
	require.NoError(t, mr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tr.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, tr.Shutdown(context.Background()))
		require.NoError(t, mr.Shutdown(context.Background()))
	})
	return s
}
