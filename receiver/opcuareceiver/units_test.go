package opcuareceiver

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

func TestParseNodeRef(t *testing.T) {
	tests := []struct {
		in, nsu, text string
		wantNSU       string
		wantNS        uint16
		err           string
	}{
		{in: "ns=2;s=Temperature", text: "ns=2;s=Temperature", wantNS: 2},
		{in: "ns=0;i=2258", text: "ns=0;i=2258"},
		{in: "i=85", text: "ns=0;i=85"},
		{in: "nsu=urn:a:b;i=1001", text: "nsu=urn:a:b;i=1001", wantNSU: "urn:a:b"},
		{in: "nsu=urn:a%3Bb;s=X", text: "nsu=urn:a%3Bb;s=X", wantNSU: "urn:a;b"},
		{in: "s=Motor.Current", nsu: "urn:plant", text: "nsu=urn:plant;s=Motor.Current", wantNSU: "urn:plant"},
		{in: "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a", text: "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a", wantNS: 3},
		{in: "ns=4;b=aGVsbG8=", text: "ns=4;b=aGVsbG8=", wantNS: 4},
		{in: "", err: "empty"},
		{in: "ns=70000;i=1", err: "0..65535"},
		{in: "nsu=urn:x", err: "want nsu="},
		{in: "nsu=;i=1", err: "namespace URI"},
		{in: "ns=2;q=1", err: "identifier must be"},
		{in: "ns=2;i=abc", err: "invalid numeric"},
		{in: "ns=2;b=!!!", err: "invalid opaque"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := parseNodeRef(tt.in, tt.nsu)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.text, r.text)
			assert.Equal(t, tt.wantNSU, r.nsURI)
			assert.Equal(t, tt.wantNS, r.ns)
		})
	}
}

func TestResolveNodeRef(t *testing.T) {
	ns := []string{"http://opcfoundation.org/UA/", "urn:server", "urn:extra", "urn:plant"}
	r, err := parseNodeRef("nsu=urn:plant;s=Temperature", "")
	require.NoError(t, err)
	id, err := r.resolve(ns)
	require.NoError(t, err)
	assert.Equal(t, "ns=3;s=Temperature", id.String())
	_, err = r.resolve(ns[:3])
	assert.ErrorContains(t, err, `namespace "urn:plant" is not in the server's NamespaceArray`)

	r, err = parseNodeRef("nsu=urn:plant;i=70000", "")
	require.NoError(t, err)
	id, err = r.resolve(ns)
	require.NoError(t, err)
	assert.Equal(t, "ns=3;i=70000", id.String())

	back := nodeRefFromExpanded(id, ns)
	assert.Equal(t, "nsu=urn:plant;i=70000", back.text, "browsed nodes are named by namespace URI")
	assert.Equal(t, "ns=0;i=2258", nodeRefFromExpanded(ua.NewNumericNodeID(0, 2258), ns).text)
}

func TestVisitValue(t *testing.T) {
	type pt struct {
		flat  int
		label string
		f     float64
	}
	visit := func(v any) ([]pt, valueShape) {
		var out []pt
		shape := visitValue(v, identityConversion, func(flat int, label string, n number) { out = append(out, pt{flat, label, n.Value()}) })
		return out, shape
	}
	for _, v := range []any{int8(-3), uint8(3), int16(-3), uint16(3), int32(-3), uint32(3), int64(-3), uint64(3), float32(-3), float64(3)} {
		got, shape := visit(v)
		assert.Equal(t, shapeScalar, shape, "%T", v)
		require.Len(t, got, 1)
		assert.InDelta(t, 3, got[0].f*sign(got[0].f), 0, "%T", v)
	}
	got, _ := visit(true)
	assert.Equal(t, []pt{{-1, "", 1}}, got)
	got, _ = visit(false)
	assert.Equal(t, []pt{{-1, "", 0}}, got)
	got, shape := visit([]float64{1.5, 2.5})
	assert.Equal(t, shapeArray, shape)
	assert.Equal(t, []pt{{0, "", 1.5}, {1, "", 2.5}}, got)
	got, _ = visit([]bool{true, false})
	assert.Equal(t, []pt{{0, "", 1}, {1, "", 0}}, got)
	got, _ = visit([]uint16{7, 8})
	assert.Equal(t, []pt{{0, "", 7}, {1, "", 8}}, got)
	got, _ = visit([][]int32{{1, 2}, {3, 4}})
	assert.Equal(t, []pt{{0, "0,0", 1}, {1, "0,1", 2}, {2, "1,0", 3}, {3, "1,1", 4}}, got, "a matrix gives one point per element, index row,column")
	for _, v := range []any{"text", time.Now(), []string{"a"}, ua.NewLocalizedText("x"), &ua.ExtensionObject{}, []byte("bytes")} {
		_, shape := visit(v)
		assert.Equal(t, shapeUnsupported, shape, "%T", v)
	}
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

func TestStatusHelpers(t *testing.T) {
	assert.True(t, isBad(ua.StatusBadNoCommunication))
	assert.False(t, isBad(ua.StatusUncertainLastUsableValue))
	assert.True(t, isUncertain(ua.StatusUncertainLastUsableValue))
	assert.False(t, isUncertain(ua.StatusOK))
	assert.Equal(t, "BadNoCommunication", statusName(ua.StatusBadNoCommunication))
	assert.Equal(t, "BadNoCommunication", statusName(ua.StatusBadNoCommunication|0x0400), "info bits are ignored")
	assert.Equal(t, "0x80FF0000", statusName(0x80FF0000))
}

func TestPointTime(t *testing.T) {
	src := time.Date(2024, 1, 1, 0, 0, 1, 0, time.UTC)
	srv := time.Date(2024, 1, 1, 0, 0, 2, 0, time.UTC)
	col := time.Date(2024, 1, 1, 0, 0, 3, 0, time.UTC)
	both := &ua.DataValue{EncodingMask: ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp, SourceTimestamp: src, ServerTimestamp: srv}
	onlyServer := &ua.DataValue{EncodingMask: ua.DataValueServerTimestamp, ServerTimestamp: srv}
	none := &ua.DataValue{}
	assert.Equal(t, src, pointTime(TimestampSourceSource, both, col))
	assert.Equal(t, srv, pointTime(TimestampSourceSource, onlyServer, col), "source falls back to server")
	assert.Equal(t, col, pointTime(TimestampSourceSource, none, col), "then to the collector")
	assert.Equal(t, srv, pointTime(TimestampServer, both, col))
	assert.Equal(t, col, pointTime(TimestampServer, none, col))
	assert.Equal(t, col, pointTime(TimestampCollector, both, col))
	assert.Equal(t, ua.TimestampsToReturnBoth, timestampsToReturn(TimestampSourceSource))
	assert.Equal(t, ua.TimestampsToReturnServer, timestampsToReturn(TimestampServer))
	assert.Equal(t, ua.TimestampsToReturnNeither, timestampsToReturn(TimestampCollector))
}

func TestDataChangeFilter(t *testing.T) {
	assert.Nil(t, dataChangeFilter(MonitoredItemDefaults{Trigger: TriggerStatusValue, Deadband: DeadbandConfig{Type: DeadbandNone}}), "the server default needs no filter")
	f := dataChangeFilter(MonitoredItemDefaults{Trigger: TriggerStatusValueTimestamp, Deadband: DeadbandConfig{Type: DeadbandAbsolute, Value: 0.5}})
	assert.Equal(t, &ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValueTimestamp, DeadbandType: 1, DeadbandValue: 0.5}, f)
	f = dataChangeFilter(MonitoredItemDefaults{Trigger: TriggerStatus, Deadband: DeadbandConfig{Type: DeadbandPercent, Value: 10}})
	assert.Equal(t, &ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatus, DeadbandType: 2, DeadbandValue: 10}, f)

	it := &item{spec: &readingSpec{conv: identityConversion, item: MonitoredItemDefaults{SamplingInterval: device.Ptr(250 * time.Millisecond), QueueSize: device.Ptr(uint32(4)), Deadband: DeadbandConfig{Type: DeadbandAbsolute, Value: 1}}},
		rv: &ua.ReadValueID{NodeID: ua.NewStringNodeID(2, "T"), AttributeID: ua.AttributeIDValue}}
	req := monitoredItemRequest(it, 7)
	assert.Equal(t, uint32(7), req.RequestedParameters.ClientHandle)
	assert.Equal(t, 250.0, req.RequestedParameters.SamplingInterval)
	assert.Equal(t, uint32(4), req.RequestedParameters.QueueSize)
	assert.NotNil(t, req.RequestedParameters.Filter)
	it.spec.item.SamplingInterval = device.Ptr(time.Duration(0))
	assert.Equal(t, 0.0, monitoredItemRequest(it, 7).RequestedParameters.SamplingInterval, "0: the server's fastest rate")
	it.spec.item.SamplingInterval, it.spec.item.QueueSize = nil, nil
	assert.Equal(t, -1.0, monitoredItemRequest(it, 7).RequestedParameters.SamplingInterval, "unset: the publishing interval")
	assert.Equal(t, uint32(1), monitoredItemRequest(it, 7).RequestedParameters.QueueSize)
}

func TestTrustStore(t *testing.T) {
	der, _, err := sim.GenerateCertificate("urn:s", []string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	now := time.Now()
	assert.NoError(t, newTrustStore(SecurityConfig{InsecureAcceptAnyServerCertificate: true}).verify(der, now))
	assert.NoError(t, newTrustStore(SecurityConfig{ServerCertificateFingerprints: []string{"sha256:" + fingerprintSHA256(der)}}).verify(der, now))
	err = newTrustStore(SecurityConfig{ServerCertificateFingerprints: []string{fingerprintSHA256([]byte("other"))}}).verify(der, now)
	assert.ErrorContains(t, err, "server certificate not trusted")
	assert.ErrorContains(t, newTrustStore(SecurityConfig{InsecureAcceptAnyServerCertificate: true}).verify(nil, now), "no certificate")
	assert.ErrorContains(t, newTrustStore(SecurityConfig{InsecureAcceptAnyServerCertificate: true}).verify([]byte("junk"), now), "does not parse")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.der"), der, 0o600))
	ts := newTrustStore(SecurityConfig{TrustedCertificatesDir: dir})
	assert.NoError(t, ts.verify(der, now))
	assert.ErrorContains(t, ts.verify(der, now.Add(2*time.Hour)), "expired")
	assert.ErrorContains(t, newTrustStore(SecurityConfig{TrustedCertificatesDir: filepath.Join(dir, "missing")}).verify(der, now), "cannot read trusted_certificates_dir")
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	cfg := testConfig("opc.tcp://127.0.0.1:1")
	cfg.Nodes = plantNodes()[:1]
	r, err := newReceiver(cfg, receiverSettings())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()), "a Start after Shutdown does nothing")
}

// TestStartDoesNotWaitForAnUnreachableServer: Start returns at once; polls report the device down.
func TestStartDoesNotWaitForAnUnreachableServer(t *testing.T) {
	cfg := testConfig("opc.tcp://127.0.0.1:" + itoa(freePort(t)))
	cfg.Nodes = plantNodes()[:1]
	start := time.Now()
	h := startReceiver(t, cfg)
	assert.Less(t, time.Since(start), time.Second)
	require.Eventually(t, func() bool {
		up, ok := h.latest(device.MetricUp, nil)
		return ok && up.value == 0 && h.errorCount(device.ErrConnection) > 0
	}, 10*time.Second, 20*time.Millisecond)
	h.waitStale(t, "opcua.temperature", map[string]string{"line": "1"})
	require.Eventually(t, func() bool { return h.host.last() == componentstatus.StatusRecoverableError }, 5*time.Second, 10*time.Millisecond)
	// The breaker opens after three failed polls and reports it.
	require.Eventually(t, func() bool {
		b, ok := h.latest(device.MetricBreakerState, nil)
		return ok && b.value > 0
	}, 10*time.Second, 20*time.Millisecond)
}

func TestFactoryCreatesOneReceiverPerConfig(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Endpoint, cfg.ID = "opc.tcp://127.0.0.1:1", "x"
	cfg.Nodes = []NodeConfig{{ID: "ns=1;s=A", Name: "a"}}
	m, err := f.CreateMetrics(context.Background(), receiverSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), receiverSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, m, tr, "the metrics and traces pipelines share one receiver")
	require.NoError(t, m.Shutdown(context.Background()))
	cfg2 := *cfg
	m2, err := f.CreateMetrics(context.Background(), receiverSettings(), &cfg2, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotSame(t, m, m2)
	require.NoError(t, m2.Shutdown(context.Background()))
}

func itoa(i int) string { return strconv.Itoa(i) }
