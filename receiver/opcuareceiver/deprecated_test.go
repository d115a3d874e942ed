package opcuareceiver

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

func unmarshalYAML(t *testing.T, yml string) *Config {
	t.Helper()
	ret, err := confmap.NewRetrievedFromYAML([]byte(yml))
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	cfg := createDefaultConfig()
	require.NoError(t, conf.Unmarshal(cfg))
	return cfg
}

// The device id key is `id` as in the other receivers; the former `device_id` still works, and the
// receiver (shared by its metrics and traces pipelines) warns once that it is deprecated.
func TestDeprecatedDeviceID(t *testing.T) {
	cfg := unmarshalYAML(t, `
endpoint: opc.tcp://127.0.0.1:4840
device_id: press-7
nodes: [{id: "ns=2;s=T", name: t}]
`)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "press-7", cfg.deviceID())

	core, logs := observer.New(zap.WarnLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	f := NewFactory()
	m, err := f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, m.Shutdown(context.Background()))
	require.NoError(t, tr.Shutdown(context.Background()))
	warned := logs.FilterMessageSnippet("device_id key is deprecated").All()
	require.Len(t, warned, 1, "one warning for the receiver, not one per pipeline")
	assert.Equal(t, "press-7", warned[0].ContextMap()["device_id"])

	// With id, no warning.
	cfg.ID, cfg.DeprecatedDeviceID = "press-7", ""
	m, err = f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, m.Shutdown(context.Background()))
	assert.Len(t, logs.FilterMessageSnippet("device_id key is deprecated").All(), 1)
}

func TestDeviceIDKeys(t *testing.T) {
	for _, tc := range []struct {
		name, keys, wantErr string
	}{
		{"id", "{id: a}", ""},
		{"both equal", "{id: a, device_id: a}", ""},
		{"both differ", "{id: a, device_id: b}", `device_id: "b" contradicts id "a"; device_id is the deprecated name of id: remove it`},
		{"none", "{}", "id: required (the device.id resource attribute)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := "endpoint: opc.tcp://127.0.0.1:4840\nnodes: [{id: \"ns=2;s=T\", name: t}]\n"
			if tc.keys != "{}" {
				yml += "<<: " + tc.keys + "\n"
			}
			cfg := unmarshalYAML(t, yml)
			err := confmap.Validate(cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, "a", cfg.deviceID())
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantErr, err.Error())
		})
	}
}

// enabled: false keeps the server in the configuration (validated) but never connects: a site without
// OPC UA keeps the edge default's pipelines unchanged.
func TestReceiverDisabled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var accepts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	cfg := unmarshalYAML(t, `
endpoint: opc.tcp://`+ln.Addr().String()+`
id: spare-plc
enabled: false
poll: {interval: 10ms, timeout: 5ms}
nodes: [{id: "ns=2;s=T", name: t}]
`)
	require.NoError(t, confmap.Validate(cfg))
	bad := unmarshalYAML(t, "endpoint: opc.tcp://127.0.0.1:4840\nid: x\nenabled: false\n")
	require.Error(t, confmap.Validate(bad), "a disabled server is still validated (no nodes)")

	core, logs := observer.New(zap.InfoLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	sink := new(consumertest.MetricsSink)
	r, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Len(t, logs.FilterMessageSnippet("disabled (enabled: false)").All(), 1)
	assert.Zero(t, accepts.Load(), "no connection to a disabled server")
	assert.Zero(t, sink.DataPointCount(), "no health series for a disabled server")
}
