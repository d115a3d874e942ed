package opcuareceiver

import (
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

const nsu = "nsu=" + sim.DefaultNamespaceURI + ";"

func plantNodes() []NodeConfig {
	return []NodeConfig{
		{ID: nsu + "s=Temperature", Name: "temperature", Unit: "Cel", Attributes: map[string]string{"line": "1"}},
		{ID: nsu + "s=Pressure", Name: "pressure", Unit: "bar"},
		{ID: nsu + "s=Running", Name: "running"},
		{ID: nsu + "s=Vector", Name: "vector"},
		{ID: nsu + "s=Name", Name: "name"},
		{ID: nsu + "s=Broken", Name: "broken"},
		{ID: nsu + "s=Doubtful", Name: "doubtful"},
		{ID: "nsu=urn:not-on-this-server;s=Ghost", Name: "ghost"},
	}
}

// plantMeter is the simulator's Counter (UInt32, kWh) as a grid meter's import energy in the
// electrical vocabulary: Wh, so scale 1000 (an exact integer).
func plantMeter() []GroupConfig {
	return []GroupConfig{{
		Name:         "grid_meter",
		NodeDefaults: NodeDefaults{MetricPrefix: "electrical.", Attributes: map[string]string{"phase": "total"}},
		Nodes: []NodeConfig{{ID: nsu + "s=Counter", Name: "energy.active", Unit: "Wh", Kind: device.KindSum,
			Scale: device.Ptr(1000.0), Attributes: map[string]string{"direction": "import"}}},
	}}
}

func TestPollReadsEveryKindOfValue(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Nodes = plantNodes()
	cfg.Groups = plantMeter()
	h := startReceiver(t, cfg)

	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 21.5)
	h.waitValue(t, "opcua.pressure", nil, 1.25)
	h.waitValue(t, "electrical.energy.active", importTotal, 1_000_000)
	h.waitValue(t, "opcua.running", nil, 1)
	h.waitValue(t, "opcua.vector", map[string]string{"index": "0"}, 1.5)
	h.waitValue(t, "opcua.vector", map[string]string{"index": "2"}, 3.5)
	h.waitValue(t, "opcua.doubtful", nil, 7)
	h.waitStale(t, "opcua.broken", nil)
	h.waitStale(t, "opcua.ghost", nil)
	p, _ := h.latest("electrical.energy.active", importTotal)
	assert.True(t, p.sum, "kind sum is a cumulative sum")
	assert.Equal(t, "press-7", p.res[device.AttrDeviceID])
	assert.Equal(t, "opcua", p.res[device.AttrDeviceProtocol])
	_, ok := h.latest("opcua.name", nil)
	assert.False(t, ok, "a String node gives no point")

	require.Eventually(t, func() bool {
		return h.errorCount(device.ErrBadStatus) >= 2 && h.errorCount(device.ErrUncertain) >= 1 && h.errorCount(device.ErrUnsupportedType) >= 1
	}, 5*time.Second, 20*time.Millisecond, h.summary())
	up, _ := h.latest(device.MetricUp, nil)
	assert.Equal(t, 1.0, up.value)
	assert.Equal(t, componentstatus.StatusOK, h.host.last())

	// Changes are read at the next poll.
	srv.Set("Temperature", 30.25)
	srv.Set("Vector", []float64{9, 8})
	h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 30.25)
	h.waitValue(t, "opcua.vector", map[string]string{"index": "1"}, 8)

	// The read span names the service, the node count and the bad status.
	var read ptrace.Span
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.read" {
				read = s
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
	attrs := read.Attributes().AsRaw()
	assert.Equal(t, "Read", attrs["opcua.service"])
	assert.EqualValues(t, 8, attrs["opcua.nodes"], "the node of an unknown namespace is not read")
	assert.Contains(t, attrs["opcua.status_codes"], "BadNoCommunication")
	assert.Contains(t, attrs["opcua.status_codes"], "UncertainLastUsableValue")
	assert.Contains(t, attrs["opcua.bad_node_ids"], "s=Broken=BadNoCommunication")
}

func TestSubscriptionDeliversChanges(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Mode = ModeSubscribe
	cfg.Timestamp = TimestampSourceSource
	cfg.Nodes = plantNodes()
	h := startReceiver(t, cfg)

	h.waitValue(t, "opcua.temperature", nil, 21.5)
	h.waitValue(t, "opcua.vector", map[string]string{"index": "1"}, 2.5)
	h.waitStale(t, "opcua.broken", nil)
	ts := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	srv.SetAt("Temperature", 42.0, ua.StatusOK, ts)
	h.waitValue(t, "opcua.temperature", nil, 42)
	p, _ := h.latest("opcua.temperature", nil)
	assert.Equal(t, ts, p.ts.UTC(), "timestamp: source takes the source timestamp")

	srv.SetStatus("Temperature", nil, ua.StatusBadSensorFailure)
	h.waitStale(t, "opcua.temperature", nil)
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.publish" {
				if c, ok := s.Attributes().Get("opcua.status_codes"); ok && c.Str() == "BadSensorFailure" {
					return true
				}
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "a publish span names the bad status")
	srv.Set("Temperature", 43.5)
	h.waitValue(t, "opcua.temperature", nil, 43.5)

	// Heartbeat polls keep coming in subscription mode.
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.heartbeat" {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
}

// TestReconnectAfterServerRestart: the server goes away and comes back on the same port with another
// namespace registered first, so our namespace's index changes; data continues under the same metric
// and attributes, through a new client and session, in both modes.
func TestReconnectAfterServerRestart(t *testing.T) {
	for _, mode := range []Mode{ModePoll, ModeSubscribe} {
		t.Run(string(mode), func(t *testing.T) {
			port := freePort(t)
			srv := startSim(t, sim.Config{Port: port})
			require.EqualValues(t, 1, srv.NamespaceIndex())
			cfg := testConfig(srv.Endpoint())
			cfg.Mode = mode
			cfg.Nodes = plantNodes()[:2]
			cfg.Browse = []BrowseConfig{{Root: nsu + "s=Folder.Bulk", NodeDefaults: NodeDefaults{MetricPrefix: "bulk."}}}
			h := startReceiver(t, cfg)
			h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 21.5)

			srv.Close()
			h.waitStale(t, "opcua.temperature", map[string]string{"line": "1"})
			require.Eventually(t, func() bool {
				up, ok := h.latest(device.MetricUp, nil)
				return ok && up.value == 0
			}, 10*time.Second, 20*time.Millisecond)
			require.Eventually(t, func() bool { return h.host.last() == componentstatus.StatusRecoverableError }, 10*time.Second, 20*time.Millisecond)
			assert.Positive(t, h.errorCount(device.ErrConnection))

			srv2 := startSim(t, sim.Config{Port: port, ExtraNamespaces: []string{"urn:someone-else", "urn:and-another"}, BulkNodes: 2})
			require.EqualValues(t, 3, srv2.NamespaceIndex())
			srv2.Set("Temperature", 55.5)
			h.waitValue(t, "opcua.temperature", map[string]string{"line": "1"}, 55.5)
			srv2.Set("Pressure", float32(2.5))
			h.waitValue(t, "opcua.pressure", nil, 2.5)
			require.Eventually(t, func() bool { return h.host.last() == componentstatus.StatusOK }, 10*time.Second, 20*time.Millisecond)
			// The browse is repeated on reconnect: the new server's variables are found.
			h.waitValue(t, "bulk.Bulk.00001", nil, 1)
			sessions, _ := h.latest("opcua.sessions.established", nil)
			assert.GreaterOrEqual(t, sessions.value, 2.0)
		})
	}
}
