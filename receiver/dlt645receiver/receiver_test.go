package dlt645receiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

func threePhase2007(t testing.TB, address string) *sim.Meter {
	return meter(t, address, dlt645.V2007, map[dlt645.DI]float64{
		0x00010000: 12345.67, 0x00010100: 4000.12, 0x00010200: 5000.55, 0x00010300: 3345, 0x00010400: 0,
		0x00020000: 12.5,
		0x02010100: 220.1, 0x02010200: 221.3, 0x02010300: 219.8,
		0x02020100: 5.5, 0x02020200: -5.25, 0x02020300: 4.75,
		0x02030000: -1.2345, 0x02030100: -0.4115, 0x02030200: -0.4115, 0x02030300: -0.4115,
		0x02060000: -0.866, 0x02060100: 0.5, 0x02060200: 1, 0x02060300: -0.999,
		0x02800002: 50.01,
	})
}

// Values of every kind through a TCP serial server: energy (monotonic sums), voltage, signed
// current, power and power factor, frequency; blocks split into their parts; an error word makes a
// stale reading and a counted exception; health metrics and spans.
func TestReceiverOverTCP(t *testing.T) {
	m1 := threePhase2007(t, "000000000001")
	m2 := threePhase2007(t, "000000000002")
	m2.SetError(0x02800002, 0x02)
	srv, addr := startSim(t, sim.Options{Preamble: 4}, m1, m2)

	cfg := loadYAML(t, `
poll: {interval: 200ms, timeout: 200ms}
traces: {success_sample_ratio: 1}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - id: m1
        address: "000000000001"
        identifiers: ["00010000", "0201FF00", "0202FF00", "02030000", "02060000", "02800002"]
        resource_attributes: {site: lab}
      - id: m2
        address: "2"
        profile: three_phase
        exclude_identifiers: ["0204FF00", "04000101", "04000102"]
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := dataPoints(s.metrics.AllMetrics())
		_, a := last(pts, "m1", dlt645.MetricFrequency, nil)
		_, b := last(pts, "m2", dlt645.MetricFrequency, nil)
		return a && b
	}, 10*time.Second, 20*time.Millisecond)
	pts := dataPoints(s.metrics.AllMetrics())

	e, _ := last(pts, "m1", dlt645.MetricActiveEnergy, map[string]string{"direction": "import", "phase": "total", "tariff": "total"})
	assert.Equal(t, 12345670.0, e.value, "12345.67 kWh in Wh")
	assert.True(t, e.isInt, "XXXXXX.XX kWh is a whole number of Wh: an exact integer point")
	assert.True(t, e.sum && e.monotonic, "energy is a monotonic sum")
	assert.Equal(t, "Wh", e.unit)
	assert.Equal(t, "lab", e.res["site"])
	assert.Equal(t, "dlt645", e.res["device.protocol"])
	assert.Equal(t, "tcp://"+addr+"/000000000001", e.res["device.address"])
	assert.Equal(t, "000000000001", e.res["dlt645.meter.address"])
	assert.Equal(t, "2007", e.res["dlt645.version"])

	for phase, want := range map[string]float64{"A": 220.1, "B": 221.3, "C": 219.8} {
		v, ok := last(pts, "m1", dlt645.MetricVoltage, map[string]string{"phase": phase})
		require.True(t, ok, phase)
		assert.Equal(t, want, v.value, phase)
		assert.Equal(t, "V", v.unit)
	}
	for phase, want := range map[string]float64{"A": 5.5, "B": -5.25, "C": 4.75} {
		v, _ := last(pts, "m1", dlt645.MetricCurrent, map[string]string{"phase": phase})
		assert.Equal(t, want, v.value, phase)
	}
	p, _ := last(pts, "m1", dlt645.MetricActivePower, map[string]string{"phase": "total"})
	assert.Equal(t, -1234.5, p.value, "-1.2345 kW in W")
	assert.Equal(t, "W", p.unit)
	assert.False(t, p.sum)
	pf, _ := last(pts, "m1", dlt645.MetricPowerFactor, map[string]string{"phase": "total"})
	assert.Equal(t, -0.866, pf.value)
	hz, _ := last(pts, "m1", dlt645.MetricFrequency, nil)
	assert.Equal(t, 50.01, hz.value)
	assert.Equal(t, "Hz", hz.unit)

	// m2: the three_phase profile reads blocks.
	for tariff, want := range map[string]float64{"total": 12345670, "1": 4000120, "2": 5000550, "3": 3345000, "4": 0} {
		v, ok := last(pts, "m2", dlt645.MetricActiveEnergy, map[string]string{"direction": "import", "tariff": tariff})
		require.True(t, ok, tariff)
		assert.Equal(t, want, v.value, tariff)
	}
	_, ok := last(pts, "m2", dlt645.MetricActiveEnergy, map[string]string{"direction": "import", "tariff": "5"})
	assert.False(t, ok, "the meter has 4 tariffs")
	pfc, _ := last(pts, "m2", dlt645.MetricPowerFactor, map[string]string{"phase": "C"})
	assert.Equal(t, -0.999, pfc.value)
	f2, _ := last(pts, "m2", dlt645.MetricFrequency, nil)
	assert.True(t, f2.stale, "an error word makes the reading stale")
	errs, ok := last(pts, "m2", "iiot.device.poll.errors", map[string]string{"error.type": "exception"})
	require.True(t, ok)
	assert.GreaterOrEqual(t, errs.value, 1.0)
	up, _ := last(pts, "m2", "iiot.device.up", nil)
	assert.Equal(t, 1.0, up.value, "a meter that answers with an error word is up")
	_, ok = last(pts, "m1", "iiot.device.poll.errors", nil)
	assert.False(t, ok, "m1 has no errors")
	req, _ := last(pts, "m1", "iiot.device.requests", nil)
	assert.GreaterOrEqual(t, req.value, 6.0)

	// Spans: one poll span per poll, one read per identifier with the protocol details.
	sp := allSpans(s.traces.AllTraces())
	var sawError, sawBlock bool
	for _, x := range sp {
		if x.name == "dlt645.poll" {
			assert.False(t, x.parent)
			assert.Contains(t, x.res["service.name"], "dlt645")
			continue
		}
		require.Equal(t, "dlt645.read", x.name)
		assert.True(t, x.parent)
		assert.Equal(t, "11", x.attrs["dlt645.control_code"])
		assert.Contains(t, x.attrs, "dlt645.di")
		assert.Contains(t, x.attrs, "dlt645.bytes_sent")
		if x.attrs["dlt645.di"] == "02800002" && x.res["device.id"] == "m2" {
			sawError = true
			assert.Equal(t, ptrace.StatusCodeError, x.status)
			assert.Equal(t, "02", x.attrs["dlt645.error_word"])
			assert.Equal(t, "no requested data", x.attrs["dlt645.error"])
			assert.Equal(t, "exception", x.attrs["error.type"])
		}
		if x.attrs["dlt645.di"] == "0001FF00" {
			sawBlock = true
			assert.Equal(t, int64(5), x.attrs["dlt645.values"])
		}
	}
	assert.True(t, sawError)
	assert.True(t, sawBlock)
	assert.Equal(t, uint64(1), srv.Stats().Accepted, "one connection for every poll of every meter")
}

func TestReceiver1997(t *testing.T) {
	m := meter(t, "000000001997", dlt645.V1997, map[dlt645.DI]float64{
		0x9010: 2345.6, 0x9020: 1.25, 0xB611: 231, 0xB621: 4.35, 0xB630: 1.0005, 0xB650: 0.987,
	})
	_, addr := startSim(t, sim.Options{}, m)
	cfg := loadYAML(t, `
poll: {interval: 200ms, timeout: 200ms}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: old, address: "000000001997", version: "1997", profile: single_phase, exclude_identifiers: [C010, C011]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		_, ok := last(dataPoints(s.metrics.AllMetrics()), "old", dlt645.MetricPowerFactor, nil)
		return ok
	}, 10*time.Second, 20*time.Millisecond)
	pts := dataPoints(s.metrics.AllMetrics())
	for _, c := range []struct {
		metric string
		attrs  map[string]string
		want   float64
	}{
		{dlt645.MetricActiveEnergy, map[string]string{"direction": "import", "tariff": "total"}, 2345600},
		{dlt645.MetricActiveEnergy, map[string]string{"direction": "export", "tariff": "total"}, 1250},
		{dlt645.MetricVoltage, map[string]string{"phase": "A"}, 231},
		{dlt645.MetricCurrent, map[string]string{"phase": "A"}, 4.35},
		{dlt645.MetricActivePower, map[string]string{"phase": "total"}, 1000.5},
		{dlt645.MetricPowerFactor, map[string]string{"phase": "total"}, 0.987},
	} {
		v, ok := last(pts, "old", c.metric, c.attrs)
		require.True(t, ok, c.metric)
		assert.Equal(t, c.want, v.value, c.metric)
		assert.Equal(t, "1997", v.res["dlt645.version"])
	}
}

// A meter found by broadcast read-address, its reads split into follow-up frames.
func TestReceiverDiscoveryAndFollowUps(t *testing.T) {
	for _, v := range []dlt645.Version{dlt645.V2007, dlt645.V1997} {
		t.Run(v.String(), func(t *testing.T) {
			values := map[dlt645.DI]float64{0x00010000: 100, 0x00010100: 10, 0x00010200: 20, 0x00010300: 30, 0x00010400: 40}
			block, addr := "0001FF00", "202301150099"
			if v == dlt645.V1997 {
				values = map[dlt645.DI]float64{0x9010: 100, 0x9011: 10, 0x9012: 20, 0x9013: 30, 0x9014: 40}
				block = "901F"
			}
			m := meter(t, addr, v, values)
			m.SetMaxData(6) // 20 value bytes: 4 frames
			_, ep := startSim(t, sim.Options{}, m)
			cfg := loadYAML(t, `
poll: {interval: 200ms, timeout: 200ms}
traces: {success_sample_ratio: 1}
buses:
  - endpoint: tcp://`+ep+`
    meters:
      - {id: found, address: discover, version: "`+v.String()+`", identifiers: ["`+block+`"]}
`)
			s := startReceiver(t, cfg)
			require.Eventually(t, func() bool {
				_, ok := last(dataPoints(s.metrics.AllMetrics()), "found", dlt645.MetricActiveEnergy, map[string]string{"tariff": "4"})
				return ok
			}, 10*time.Second, 20*time.Millisecond)
			pts := dataPoints(s.metrics.AllMetrics())
			for tariff, want := range map[string]float64{"total": 100000, "1": 10000, "2": 20000, "3": 30000, "4": 40000} {
				x, _ := last(pts, "found", dlt645.MetricActiveEnergy, map[string]string{"tariff": tariff})
				assert.Equal(t, want, x.value)
				assert.Equal(t, addr, x.res["dlt645.meter.address"])
				assert.Equal(t, "tcp://"+ep, x.res["device.address"])
			}
			var discovered, frames bool
			for _, x := range allSpans(s.traces.AllTraces()) {
				if x.name == "dlt645.read_address" {
					discovered = true
					assert.Equal(t, addr, x.attrs["dlt645.address"])
				}
				if x.name == "dlt645.read" && x.attrs["dlt645.frames"] == int64(4) {
					frames = true
				}
			}
			assert.True(t, discovered)
			assert.True(t, frames, "20 bytes in frames of 6: the first and 3 follow-ups")
		})
	}
}

// Noise on the line (before every reply) costs no reading.
func TestReceiverNoise(t *testing.T) {
	m := threePhase2007(t, "1")
	srv, addr := startSim(t, sim.Options{NoiseProbability: 1, NoiseBytes: 16, Seed: 3}, m)
	cfg := loadYAML(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: m, address: "1", identifiers: ["0201FF00", "0202FF00", "02800002"]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool { return srv.Stats().Requests >= 60 }, 20*time.Second, 20*time.Millisecond)
	pts := dataPoints(s.metrics.AllMetrics())
	n := 0
	for _, p := range pts {
		if p.metric == dlt645.MetricVoltage {
			require.False(t, p.stale)
			n++
		}
	}
	assert.GreaterOrEqual(t, n, 30)
	_, errs := last(pts, "m", "iiot.device.poll.errors", nil)
	assert.False(t, errs, "no request failed")
	assert.Positive(t, srv.Stats().NoiseBytes)
}

// A meter that is switched off costs the bus one timeout (not one per identifier), then its
// breaker opens and it costs nothing; the other meter keeps being read.
func TestReceiverDeadMeter(t *testing.T) {
	alive := threePhase2007(t, "1")
	dead := threePhase2007(t, "2")
	dead.SetOff(true)
	_, addr := startSim(t, sim.Options{}, alive, dead)
	cfg := loadYAML(t, `
poll: {interval: 200ms, timeout: 150ms, retries: 1}
breaker: {failure_threshold: 2, initial_backoff: 1m, max_backoff: 1m}
traces: {success_sample_ratio: 1}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: alive, address: "1", profile: three_phase, exclude_identifiers: ["04000101", "04000102"]}
      - {id: dead, address: "2", profile: three_phase, exclude_identifiers: ["04000101", "04000102"]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		st, ok := last(dataPoints(s.metrics.AllMetrics()), "dead", "iiot.device.breaker.state", nil)
		return ok && st.value == 2
	}, 10*time.Second, 20*time.Millisecond)
	reads := alive.Reads(0x0201FF00)
	require.Eventually(t, func() bool { return alive.Reads(0x0201FF00) >= reads+5 }, 10*time.Second, 20*time.Millisecond)

	pts := dataPoints(s.metrics.AllMetrics())
	up, _ := last(pts, "alive", "iiot.device.up", nil)
	assert.Equal(t, 1.0, up.value)
	downUp, _ := last(pts, "dead", "iiot.device.up", nil)
	assert.Equal(t, 0.0, downUp.value)
	v, _ := last(pts, "dead", dlt645.MetricVoltage, map[string]string{"phase": "A"})
	assert.True(t, v.stale)
	hz, _ := last(pts, "dead", dlt645.MetricFrequency, nil)
	assert.True(t, hz.stale, "readings after the first timeout are stale without being asked")
	to, _ := last(pts, "dead", "iiot.device.poll.errors", map[string]string{"error.type": "timeout"})
	assert.Equal(t, 4.0, to.value, "two polls before the breaker opened, each: one request, two attempts")

	// The dead meter's polls each made one request (two attempts), not one per identifier.
	for _, x := range allSpans(s.traces.AllTraces()) {
		if x.name == "dlt645.poll" && x.res["device.id"] == "dead" {
			assert.Equal(t, int64(1), x.attrs["iiot.poll.requests"])
		}
		if x.name == "dlt645.read" && x.res["device.id"] == "dead" {
			assert.Equal(t, int64(2), x.attrs["iiot.request.attempts"])
			assert.Equal(t, "timeout", x.attrs["error.type"])
		}
	}
}

func TestReceiverShutdownWithoutStart(t *testing.T) {
	cfg := loadYAML(t, `
buses:
  - endpoint: tcp://127.0.0.1:1
    meters: [{id: m, address: "1", identifiers: ["00010000"]}]
`)
	r, err := newReceiver(context.Background(), cfg, receivertestSettings())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}

// The serial server drops the connection (a reboot): the receiver reconnects and keeps reading; the
// failed attempt is counted as a connection error.
func TestReceiverReconnects(t *testing.T) {
	m := threePhase2007(t, "1")
	srv, addr := startSim(t, sim.Options{Echo: true}, m)
	cfg := loadYAML(t, `
poll: {interval: 100ms, timeout: 100ms, retries: 1}
buses:
  - endpoint: tcp://`+addr+`
    meters: [{id: m, address: "1", identifiers: ["02010100"]}]
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool { return m.Reads(0x02010100) >= 3 }, 10*time.Second, 10*time.Millisecond)
	srv.DropConnections()
	n := m.Reads(0x02010100)
	require.Eventually(t, func() bool { return m.Reads(0x02010100) >= n+3 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, uint64(2), srv.Stats().Accepted)
	require.Eventually(t, func() bool {
		e, ok := last(dataPoints(s.metrics.AllMetrics()), "m", "iiot.device.poll.errors", map[string]string{"error.type": "connection"})
		return ok && e.value >= 1
	}, 5*time.Second, 10*time.Millisecond)
	for _, p := range dataPoints(s.metrics.AllMetrics()) {
		if p.metric == dlt645.MetricVoltage {
			assert.False(t, p.stale, "the retry on a new connection got the value")
		}
	}
}
