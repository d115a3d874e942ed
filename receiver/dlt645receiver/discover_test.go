package dlt645receiver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// discovered runs a receiver on cfg with its logs observed; tune changes the resolved buses before
// Start (a rescan interval shorter than the configuration allows, so a test need not wait minutes).
func discovered(t *testing.T, cfg *Config, tune func([]busSpec)) (sinks, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	set := receivertestSettings()
	set.Logger = zap.New(core)
	r, err := newReceiver(context.Background(), cfg, set)
	require.NoError(t, err)
	if tune != nil {
		tune(r.specs)
	}
	s := sinks{metrics: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink)}
	r.SetMetrics(s.metrics)
	r.SetTraces(s.traces)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range logs.All() {
				t.Log(e.Message, e.ContextMap())
			}
		}
	})
	return s, logs
}

// discoverYAML is a bus on the simulator at addr whose meters are found, each read for phase A voltage.
func discoverYAML(addr, extra string) string {
	return `
poll: {interval: 200ms, timeout: 60ms, retries: 0, jitter: 0}
traces: {success_sample_ratio: 1}
buses:
  - endpoint: tcp://` + addr + `
    inter_frame_gap: 1ms
    discover:
      identifiers: ["02010100"]
` + extra
}

func found(s sinks, scan string) (float64, bool) {
	p, ok := last(dataPoints(s.metrics.AllMetrics()), scan, MetricDiscoveryMeters, nil)
	return p.value, ok
}

// TestDiscoverThreeMeters: four meters on one bus, one listed; three of the four share their leading
// digits and two their lowest four, so their answers collide (overlaid frames, as on a bus) down to
// the third byte. The three not listed are found, polled as meter-<address> with their own readings
// and address, counted by dlt645.discovery.meters, and logged once as a device list that loads as the
// bus's meters. The listed meter is polled as listed, not twice.
func TestDiscoverThreeMeters(t *testing.T) {
	_, addr := startSim(t, sim.Options{Preamble: 4},
		voltageMeter(t, "123456780001", 221.1), voltageMeter(t, "123456790001", 222.2),
		voltageMeter(t, "123456780002", 223.3), voltageMeter(t, "000000000042", 230.0))
	s, logs := discovered(t, loadYAML(t, discoverYAML(addr, `    meters:
      - {id: listed, address: "42", identifiers: ["02010100"]}
`)), nil)
	want := map[string]float64{"meter-123456780001": 221.1, "meter-123456790001": 222.2, "meter-123456780002": 223.3, "listed": 230.0}
	require.Eventually(t, func() bool {
		for dev, v := range want {
			if got, ok := lastValue(s, dev); !ok || got != v {
				return false
			}
		}
		n, ok := found(s, "dlt645-bus-0")
		return ok && n == 3
	}, 60*time.Second, 50*time.Millisecond)

	pts := dataPoints(s.metrics.AllMetrics())
	p, _ := last(pts, "meter-123456790001", dlt645.MetricVoltage, nil)
	assert.Equal(t, "123456790001", p.res[attrMeterAddress])
	assert.Equal(t, "tcp://"+addr+"/123456790001", p.res[device.AttrDeviceAddress])
	for _, p := range pts {
		assert.NotEqual(t, "meter-000000000042", p.device, "the listed meter is not polled again")
	}
	up, _ := last(pts, "dlt645-bus-0", "iiot.device.up", nil)
	assert.Equal(t, 1.0, up.value, "the search is a device: up while it runs")

	var search []spanInfo
	for _, sp := range allSpans(s.traces.AllTraces()) {
		if sp.name == spanSearch {
			search = append(search, sp)
		}
	}
	require.Len(t, search, 1, "one search at start, no rescan configured")
	assert.EqualValues(t, 4, search[0].attrs[attrSearchFound])
	assert.EqualValues(t, 3, search[0].attrs[attrSearchNew])
	assert.Greater(t, search[0].attrs[attrFrames], int64(300))

	entries := logs.FilterMessage("Meters found on the bus").All()
	require.Len(t, entries, 1)
	list := entries[0].ContextMap()["meters"].(string)
	assert.Equal(t, `meters:
  - {id: meter-123456780001, address: "123456780001", identifiers: ["02010100"]}
  - {id: meter-123456790001, address: "123456790001", identifiers: ["02010100"]}
  - {id: meter-123456780002, address: "123456780002", identifiers: ["02010100"]}
`, list)
	// The list pastes under the bus: it loads as its meters.
	ret, err := confmap.NewRetrievedFromYAML([]byte(list))
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	var bus BusConfig
	require.NoError(t, conf.Unmarshal(&bus))
	cfg := createDefaultConfig().(*Config)
	bus.Endpoint = "tcp://" + addr
	cfg.Buses = []BusConfig{bus}
	require.NoError(t, cfg.Validate())
	require.Len(t, cfg.Buses[0].Meters, 3)
}

// TestDiscoverOneAndNone: the only meter of a bus answers the read-address command; a bus without
// meters is searched (the search device is up, and counts none) and nothing is polled.
func TestDiscoverOneAndNone(t *testing.T) {
	_, one := startSim(t, sim.Options{}, voltageMeter(t, "000012345678", 229.5))
	_, none := startSim(t, sim.Options{})
	s, logs := discovered(t, loadYAML(t, discoverYAML(one, "")+`
  - endpoint: tcp://`+none+`
    discover: {identifiers: ["02010100"], id: empty-bus}
`), nil)
	require.Eventually(t, func() bool {
		v, ok := lastValue(s, "meter-000012345678")
		n, nok := found(s, "empty-bus")
		return ok && v == 229.5 && nok && n == 0
	}, 20*time.Second, 20*time.Millisecond)
	var frames []any
	for _, sp := range allSpans(s.traces.AllTraces()) {
		if sp.name == spanSearch {
			frames = append(frames, sp.attrs[attrFrames])
		}
	}
	assert.ElementsMatch(t, []any{int64(2), int64(1)}, frames, "an answer (and a read at its address), and silence")
	devices := map[string]bool{}
	for _, p := range dataPoints(s.metrics.AllMetrics()) {
		devices[p.device] = true
	}
	assert.Equal(t, map[string]bool{"meter-000012345678": true, "dlt645-bus-0": true, "empty-bus": true}, devices)
	require.Len(t, logs.FilterMessage("Meters found on the bus").All(), 1)
}

// TestDiscoverRescan: a meter that joins the bus later (switched on) is found by the next search and
// polled; the meter found first goes on being polled, and the device list logged names both.
func TestDiscoverRescan(t *testing.T) {
	late := voltageMeter(t, "000000000207", 225.0)
	late.SetOff(true)
	_, addr := startSim(t, sim.Options{}, voltageMeter(t, "000000000107", 224.0), late)
	s, logs := discovered(t, loadYAML(t, discoverYAML(addr, "      rescan_interval: 1m\n")), func(b []busSpec) {
		b[0].discover.rescan = 300 * time.Millisecond
	})
	require.Eventually(t, func() bool { v, ok := lastValue(s, "meter-000000000107"); return ok && v == 224.0 }, 20*time.Second, 20*time.Millisecond)
	_, ok := lastValue(s, "meter-000000000207")
	require.False(t, ok)
	require.Eventually(t, func() bool { return logs.FilterMessage("Meter search found nothing new").Len() > 0 }, 20*time.Second, 20*time.Millisecond)
	late.SetOff(false)
	require.Eventually(t, func() bool {
		v, ok := lastValue(s, "meter-000000000207")
		n, _ := found(s, "dlt645-bus-0")
		return ok && v == 225.0 && n == 2
	}, 60*time.Second, 20*time.Millisecond)
	entries := logs.FilterMessage("Meters found on the bus").All()
	require.Len(t, entries, 2, "logged when the search finds a meter, not at every rescan")
	assert.Contains(t, entries[1].ContextMap()["meters"], "meter-000000000107")
	assert.Contains(t, entries[1].ContextMap()["meters"], "meter-000000000207")
}

// TestDiscoverAfterSilence: a meter found goes silent and another with a new address takes its place (a
// meter replaced): rescan_after_silence searches the bus again and finds the new one, while the silent
// one stays polled (and shows down), not forgotten.
func TestDiscoverAfterSilence(t *testing.T) {
	old, repl := voltageMeter(t, "000000000011", 226.0), voltageMeter(t, "000000000012", 227.0)
	repl.SetOff(true)
	_, addr := startSim(t, sim.Options{}, old, repl)
	s, logs := discovered(t, loadYAML(t, discoverYAML(addr, "      rescan_after_silence: 1m\n")), func(b []busSpec) {
		b[0].discover.silence = 500 * time.Millisecond
	})
	require.Eventually(t, func() bool { v, ok := lastValue(s, "meter-000000000011"); return ok && v == 226.0 }, 20*time.Second, 20*time.Millisecond)
	old.SetOff(true)
	repl.SetOff(false)
	require.Eventually(t, func() bool { v, ok := lastValue(s, "meter-000000000012"); return ok && v == 227.0 }, 60*time.Second, 20*time.Millisecond)
	assert.NotEmpty(t, logs.FilterMessage("A meter found has been silent for rescan_after_silence: searching the bus again").All())
	require.Eventually(t, func() bool { return health(s, "meter-000000000011", "iiot.device.up", nil) == 0 }, 10*time.Second, 20*time.Millisecond)
}

// TestDiscoverNoise: garbage bursts before replies and in silences neither lose a meter nor invent one.
func TestDiscoverNoise(t *testing.T) {
	srv, addr := startSim(t, sim.Options{NoiseProbability: 0.4, Seed: 3}, voltageMeter(t, "000000000001", 231.0), voltageMeter(t, "000000000002", 232.0))
	s, logs := discovered(t, loadYAML(t, discoverYAML(addr, "")), nil)
	require.Eventually(t, func() bool {
		a, aok := lastValue(s, "meter-000000000001")
		b, bok := lastValue(s, "meter-000000000002")
		n, _ := found(s, "dlt645-bus-0")
		return aok && bok && a == 231.0 && b == 232.0 && n == 2
	}, 60*time.Second, 20*time.Millisecond)
	assert.Positive(t, srv.Stats().NoiseBytes)
	assert.Empty(t, logs.FilterMessage("Meter search stopped early: the list is partial (raise discover.max_frames or max_meters)").All())
	for _, p := range dataPoints(s.metrics.AllMetrics()) {
		assert.True(t, p.device == "dlt645-bus-0" || p.device == "meter-000000000001" || p.device == "meter-000000000002", p.device)
	}
}

// TestDiscoverBounds: a search stopped by max_frames reports its partial result (logged as such, the
// span says which bound) and polls what it found; max_meters polls no more than that many.
func TestDiscoverBounds(t *testing.T) {
	_, addr := startSim(t, sim.Options{},
		voltageMeter(t, "000000000101", 211.0), voltageMeter(t, "000000000201", 212.0), voltageMeter(t, "000000000350", 213.0))
	// 2 for the first request, 1 for 00, 2 for 01, then 00 and 01 under 01, and a read at 01 01's
	// address: the first meter only.
	s, logs := discovered(t, loadYAML(t, discoverYAML(addr, "      max_frames: 8\n")), nil)
	require.Eventually(t, func() bool { v, ok := lastValue(s, "meter-000000000101"); return ok && v == 211.0 }, 20*time.Second, 20*time.Millisecond)
	entries := logs.FilterMessage("Meter search stopped early: the list is partial (raise discover.max_frames or max_meters)").All()
	require.Len(t, entries, 1)
	assert.Equal(t, "max_frames", entries[0].ContextMap()["stopped_at"])
	var stopped []any
	for _, sp := range allSpans(s.traces.AllTraces()) {
		if sp.name == spanSearch {
			stopped = append(stopped, sp.attrs[attrSearchStopped])
		}
	}
	assert.Equal(t, []any{"max_frames"}, stopped)
	n, _ := found(s, "dlt645-bus-0")
	assert.Equal(t, 1.0, n)

	_, addr2 := startSim(t, sim.Options{},
		voltageMeter(t, "000000000101", 211.0), voltageMeter(t, "000000000201", 212.0), voltageMeter(t, "000000000350", 213.0))
	s2, _ := discovered(t, loadYAML(t, discoverYAML(addr2, "      max_meters: 2\n")), nil)
	require.Eventually(t, func() bool {
		n, ok := found(s2, "dlt645-bus-0")
		return ok && n == 2
	}, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { _, ok := lastValue(s2, "meter-000000000201"); return ok }, 10*time.Second, 20*time.Millisecond)
	_, ok := lastValue(s2, "meter-000000000350")
	assert.False(t, ok, "the third meter is beyond max_meters")
}

// TestDiscoverConfigErrors: each discover key's error names it and what is allowed.
func TestDiscoverConfigErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"buses": []any{
			map[string]any{
				"endpoint": "tcp://127.0.0.1:4001",
				"discover": map[string]any{
					"max_meters": 300, "max_frames": -1, "rescan_interval": "10s", "rescan_after_silence": "-1m",
					"profile": "nope", "id": "dup",
				},
				"meters": []any{map[string]any{"id": "dup", "address": "discover", "profile": "single_phase"}},
			},
			map[string]any{
				"endpoint": "tcp://127.0.0.1:4002",
				"discover": map[string]any{},
			},
		},
	}).Unmarshal(cfg))
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"buses[0].discover.max_meters: must be between 1 and 256, got 300",
		"buses[0].discover.max_frames: must be between 1 and 1000000 requests per search, got -1",
		"buses[0].discover.rescan_interval: must be 0 (no rescan) or at least 1m0s, got 10s",
		"buses[0].discover.rescan_after_silence: must be 0 (never) or at least 1m0s, got -1m0s",
		`buses[0].meters[0].address: "discover" is for the only meter of a bus; this bus has discover:`,
		`buses[0].discover "dup": id: "dup" is already used by buses[0].meters[0]`,
		`buses[0].discover.profile: `,
		"buses[1].discover.identifiers: the meter has nothing to read",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "buses[1].meters: at least one meter is required", "discover: stands for the meters")

	ok := loadYAML(t, `
buses:
  - endpoint: tcp://127.0.0.1:4001
    discover: {profile: three_phase}
`)
	specs, err := ok.resolve()
	require.NoError(t, err)
	ds := specs[0].discover
	require.NotNil(t, ds)
	assert.Equal(t, "dlt645-bus-0", ds.id)
	assert.Equal(t, 32, ds.maxMeters)
	assert.Equal(t, 2000, ds.maxFrames)
	assert.Zero(t, ds.rescan)
	a, _ := dlt645.ParseAddress("123")
	m := ds.meterAt(a, "tcp://127.0.0.1:4001")
	assert.Equal(t, "meter-000000000123", m.identity.ID)
	assert.Equal(t, "tcp://127.0.0.1:4001/000000000123", m.identity.Address)
	assert.NotEmpty(t, m.reads)
	assert.True(t, strings.HasPrefix(m.identity.Attributes[attrVersion], "2007"))
}

func TestYAMLScalar(t *testing.T) {
	assert.Equal(t, "meter-000000000001", yamlScalar("meter-000000000001"))
	assert.Equal(t, `"000000000001"`, yamlScalar("000000000001"), "an id of digits stays a string")
	assert.Equal(t, `"a b: c"`, yamlScalar("a b: c"))
	assert.Equal(t, `""`, yamlScalar(""))
}
