package dlt645receiver

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// freePort returns a loopback address nobody listens on (the receiver binds it itself).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func voltageMeter(t *testing.T, address string, v float64) *sim.Meter {
	return meter(t, address, dlt645.V2007, map[dlt645.DI]float64{0x02010100: v})
}

// lastValue is the latest phase A voltage of a meter, if any.
func lastValue(s sinks, dev string) (float64, bool) {
	p, ok := last(dataPoints(s.metrics.AllMetrics()), dev, dlt645.MetricVoltage, map[string]string{"phase": "A"})
	return p.value, ok && !p.stale
}

func health(s sinks, dev, metric string, attrs map[string]string) float64 {
	p, _ := last(dataPoints(s.metrics.AllMetrics()), dev, metric, attrs)
	return p.value
}

var notConnected = map[string]string{device.AttrErrorType: string(device.ErrNotConnected)}

// Two DTUs dial in on one port, each in front of its own meter (the DL/T 645 simulator): each meter is
// read exactly through its own DTU while heartbeats arrive between polls and in the middle of replies.
// Before they dial in, the meters are down with not_connected; a DTU that drops takes its meters down,
// and they come back when it redials. An unknown DTU is closed.
func TestDTUDialIn(t *testing.T) {
	east := voltageMeter(t, "000000000001", 231.5)
	west := voltageMeter(t, "000000000002", 228.4)
	_, eastDev := startSim(t, sim.Options{Preamble: 4}, east)
	_, westDev := startSim(t, sim.Options{Preamble: 4}, west)
	listen := freePort(t)
	cfg := loadYAML(t, `
poll: {interval: 100ms, timeout: 100ms}
breaker: {failure_threshold: 3, initial_backoff: 1m}
traces: {success_sample_ratio: 1}
dtu:
  endpoint: `+listen+`
  registration: {regex: 'IMEI:(\d{15})'}
  heartbeat: {text: "HB"}
buses:
  - endpoint: dtu://862951034567890
    meters:
      - {id: pv-east, address: "1", identifiers: ["02010100"]}
  - endpoint: dtu://862951034567891
    meters:
      - {id: pv-west, address: "2", identifiers: ["02010100"]}
`)
	s := startReceiver(t, cfg)

	// Nobody has dialled in yet: the meters are down, and their breakers open (a minute of backoff,
	// which the DTU's registration cuts short: the probe sees it connected).
	require.Eventually(t, func() bool {
		return health(s, "pv-east", device.MetricBreakerState, nil) == 2 && health(s, "pv-west", device.MetricBreakerState, nil) == 2
	}, 10*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, health(s, "pv-east", device.MetricPollErrors, notConnected), 3.0)
	assert.Zero(t, health(s, "pv-east", device.MetricUp, nil))
	for _, sp := range allSpans(s.traces.AllTraces()) {
		if !sp.parent {
			assert.Equal(t, "not_connected", sp.attrs["error.type"], "poll span of a meter whose DTU is away")
		}
	}

	dialled := time.Now()
	e := dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("USR IMEI:862951034567890"), Heartbeat: []byte("HB"), MidReply: true, Device: eastDev})
	dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("USR IMEI:862951034567891"), Heartbeat: []byte("HB"), HeartbeatEvery: 5 * time.Millisecond, Device: westDev})
	require.Eventually(t, func() bool {
		_, a := lastValue(s, "pv-east")
		_, b := lastValue(s, "pv-west")
		return a && b
	}, 10*time.Second, 5*time.Millisecond)
	t.Logf("registration to first reading of both meters (poll interval 100ms, breaker open before): %s", time.Since(dialled))
	v, _ := lastValue(s, "pv-east")
	assert.Equal(t, 231.5, v)
	v, _ = lastValue(s, "pv-west")
	assert.Equal(t, 228.4, v)
	assert.Equal(t, 1.0, health(s, "pv-east", device.MetricUp, nil))
	assert.Positive(t, e.Beats(), "heartbeats went through the middle of replies")
	pts := dataPoints(s.metrics.AllMetrics())
	r, _ := last(pts, "pv-east", dlt645.MetricVoltage, nil)
	assert.Equal(t, "dtu://862951034567890/000000000001", r.res["device.address"])
	// No heartbeat byte ever reached the frame splitter or broke a frame.
	for _, dev := range []string{"pv-east", "pv-west"} {
		assert.Zero(t, health(s, dev, device.MetricPollErrors, map[string]string{device.AttrErrorType: string(device.ErrChecksum)}), dev)
		assert.Zero(t, health(s, dev, device.MetricPollErrors, map[string]string{device.AttrErrorType: string(device.ErrProtocol)}), dev)
	}
	for _, sp := range allSpans(s.traces.AllTraces()) {
		assert.Nil(t, sp.attrs[attrNoise], "noise bytes in %s", sp.name)
	}

	// The east DTU loses its link: its meter goes down (not_connected) until its breaker opens, the
	// west one stays up.
	before := health(s, "pv-east", device.MetricPollErrors, notConnected)
	e.Close()
	require.Eventually(t, func() bool {
		return health(s, "pv-east", device.MetricPollErrors, notConnected) > before && health(s, "pv-east", device.MetricBreakerState, nil) == 2
	}, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, health(s, "pv-east", device.MetricUp, nil))
	assert.Equal(t, 1.0, health(s, "pv-west", device.MetricUp, nil))

	// It redials (with a new reading on its meter): the meter comes back.
	require.NoError(t, east.Set(0x02010100, 232.7))
	dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("USR IMEI:862951034567890"), Heartbeat: []byte("HB"), MidReply: true, Device: eastDev})
	require.Eventually(t, func() bool {
		v, ok := lastValue(s, "pv-east")
		return ok && v == 232.7
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1.0, health(s, "pv-east", device.MetricUp, nil))

	// An unknown DTU is closed; the others are untouched.
	u := dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("USR IMEI:999999999999999")})
	select {
	case <-u.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("unknown DTU not closed")
	}
	assert.Equal(t, 1.0, health(s, "pv-west", device.MetricUp, nil))
}

// A DTU that redials while its old socket still looks open (the cellular link died silently) takes
// over at once: the next poll uses the new socket, without a failed poll on the old one.
func TestDTUReplacedSocketNoFailedPoll(t *testing.T) {
	m := voltageMeter(t, "000000000001", 220)
	_, dev := startSim(t, sim.Options{}, m)
	listen := freePort(t)
	cfg := loadYAML(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0}
dtu: {endpoint: `+listen+`}
buses:
  - endpoint: dtu://site-a
    meters:
      - {id: m, address: "1", identifiers: ["02010100"]}
`)
	s := startReceiver(t, cfg)
	first := dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("site-a"), Device: dev})
	require.Eventually(t, func() bool { _, ok := lastValue(s, "m"); return ok }, 10*time.Second, 5*time.Millisecond)
	conn := health(s, "m", device.MetricPollErrors, map[string]string{device.AttrErrorType: string(device.ErrConnection)})
	dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("site-a"), Device: dev})
	<-first.Closed()
	require.NoError(t, m.Set(0x02010100, 221))
	require.Eventually(t, func() bool { v, _ := lastValue(s, "m"); return v == 221 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, conn, health(s, "m", device.MetricPollErrors, map[string]string{device.AttrErrorType: string(device.ErrConnection)}),
		"no poll failed on the replaced socket")
}

func TestDTUConfigResolved(t *testing.T) {
	cfg, err := loadConfig(t, "dtu")
	require.NoError(t, err)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, buses, 2)
	assert.Equal(t, schemeDTU, buses[0].scheme)
	assert.Equal(t, "862951034567890", buses[0].address)
	assert.Equal(t, 11*time.Second/2400, buses[0].charTime, "the DTU's serial side, when given")
	assert.Equal(t, "862951034567891", buses[1].address, "trailing slash dropped")
	assert.Equal(t, []string{"862951034567890", "862951034567891"}, dtuIDs(buses))
	assert.Equal(t, 3*time.Minute, cfg.DTU.IdleTimeout)
	assert.Equal(t, 50, cfg.DTU.MaxConnections)

	def := createDefaultConfig().(*Config)
	assert.Equal(t, 30*time.Second, def.DTU.RegistrationTimeout, "defaults survive a dtu block that leaves them out")
}

// A port in use fails Start with the address.
func TestDTUPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := loadYAML(t, `
dtu: {endpoint: `+busy.Addr().String()+`}
buses:
  - endpoint: dtu://x
    meters:
      - {id: m, address: "1", identifiers: ["02010100"]}
`)
	f := NewFactory()
	r, err := f.CreateMetrics(t.Context(), receivertestSettings(), cfg, nil)
	require.NoError(t, err)
	err = r.Start(t.Context(), nil)
	require.ErrorContains(t, err, "dtu: listen on "+busy.Addr().String())
	require.NoError(t, r.Shutdown(t.Context()))
}
