package dlt645receiver

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// A meter that refuses block identifiers (it answers …FF… with an error word) read with the built-in
// three_phase profile: its first block is tried once, then the members of every block are read one by
// one, in that poll already, so no reading stays stale; members the meter does not have (reactive
// power) are asked once and dropped; later polls make no failing request.
func TestReceiverFallsBackToSingleIdentifiers(t *testing.T) {
	m := threePhase2007(t, "000000000002")
	m.SetRefuseBlocks(true)
	_, addr := startSim(t, sim.Options{}, m)
	cfg := loadYAML(t, `
poll: {interval: 300ms, timeout: 200ms, jitter: 0}
traces: {success_sample_ratio: 1}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: m2, address: "2", profile: three_phase}
`)
	s := startReceiver(t, cfg)
	polls := func() [][]spanInfo {
		var out [][]spanInfo
		for _, x := range allSpans(s.traces.AllTraces()) {
			if x.name == "dlt645.poll" {
				out = append(out, []spanInfo{x})
			} else if len(out) > 0 {
				out[len(out)-1] = append(out[len(out)-1], x)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(polls()) >= 3 }, 10*time.Second, 20*time.Millisecond)

	pts := dataPoints(s.metrics.AllMetrics())
	for tariff, want := range map[string]float64{"total": 12345670, "1": 4000120, "2": 5000550, "3": 3345000, "4": 0} {
		v, ok := last(pts, "m2", dlt645.MetricActiveEnergy, map[string]string{"direction": "import", "tariff": tariff})
		require.True(t, ok, tariff)
		assert.False(t, v.stale, tariff)
		assert.Equal(t, want, v.value, tariff)
	}
	for phase, want := range map[string]float64{"A": 220.1, "B": 221.3, "C": 219.8} {
		v, _ := last(pts, "m2", dlt645.MetricVoltage, map[string]string{"phase": phase})
		assert.False(t, v.stale, phase)
		assert.Equal(t, want, v.value, phase)
	}
	pfc, _ := last(pts, "m2", dlt645.MetricPowerFactor, map[string]string{"phase": "C"})
	assert.Equal(t, -0.999, pfc.value)
	_, ok := last(pts, "m2", dlt645.MetricActiveEnergy, map[string]string{"direction": "import", "tariff": "5"})
	assert.False(t, ok, "a member the meter does not have makes no series")
	_, ok = last(pts, "m2", dlt645.MetricReactivePower, nil)
	assert.False(t, ok, "the meter has no reactive power")

	// The first block was asked once; after its refusal no block is asked of this meter again, and the
	// members are read every poll.
	assert.Equal(t, 1, m.Reads(0x0001FF00))
	for _, di := range []dlt645.DI{0x0002FF00, 0x0201FF00, 0x0202FF00, 0x0203FF00, 0x0204FF00, 0x0206FF00} {
		assert.Equal(t, 0, m.Reads(di), "%s is not asked", di.Format(dlt645.V2007))
	}
	all := polls()
	blockReads := 0
	for _, x := range all[0][1:] {
		if dlt645.IsBlock(dlt645.V2007, mustDI(t, x.attrs["dlt645.di"])) {
			blockReads++
			assert.Equal(t, ptrace.StatusCodeError, x.status)
		}
	}
	assert.Equal(t, 1, blockReads, "the first poll tries one block")
	for k, pl := range all[1:] {
		assert.NotEqual(t, ptrace.StatusCodeError, pl[0].status, "poll %d", k+1)
		for _, x := range pl[1:] {
			assert.False(t, dlt645.IsBlock(dlt645.V2007, mustDI(t, x.attrs["dlt645.di"])), "poll %d reads %v", k+1, x.attrs["dlt645.di"])
		}
	}
	assert.Positive(t, m.Reads(0x00010300), "tariff 3 is read on its own")
}

// A meter that answers block reads but lacks one block's data (no reactive power) is not switched to
// single identifiers: that block keeps failing with an error word, the others are read as blocks.
func TestReceiverKeepsBlocksOfAMeterThatReadsThem(t *testing.T) {
	m := threePhase2007(t, "000000000002")
	_, addr := startSim(t, sim.Options{}, m)
	cfg := loadYAML(t, `
poll: {interval: 200ms, timeout: 200ms, jitter: 0}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: m2, address: "2", profile: three_phase, exclude_identifiers: ["04000101", "04000102"]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool { return m.Reads(0x0204FF00) >= 3 }, 10*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, m.Reads(0x0201FF00), 3)
	assert.Zero(t, m.Reads(0x02010100), "no single identifier is read")
	v, _ := last(dataPoints(s.metrics.AllMetrics()), "m2", dlt645.MetricVoltage, map[string]string{"phase": "B"})
	assert.Equal(t, 221.3, v.value)
}

func mustDI(t testing.TB, s any) dlt645.DI {
	t.Helper()
	str, _ := s.(string)
	di, err := dlt645.ParseDI(dlt645.V2007, str)
	require.NoError(t, err, "%v", s)
	return di
}

// A TCP serial server that restarts while the meter's breaker is open (backoff 1 h): each scheduled
// poll dials it, and polling resumes within an interval or two of its return.
func TestReceiverBreakerProbeResumesWhenTheLineIsBack(t *testing.T) {
	m := threePhase2007(t, "000000000001")
	serve := func(addr string) func() {
		srv := sim.NewServer(sim.Options{}, m)
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(l)
		}()
		return func() { srv.Close(); <-done }
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	stop := serve(addr)
	cfg := loadYAML(t, `
poll: {interval: 100ms, timeout: 100ms, retries: 0, jitter: 0}
breaker: {failure_threshold: 2, initial_backoff: 1h, max_backoff: 1h}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: m1, address: "1", identifiers: ["02800002"]}
`)
	s := startReceiver(t, cfg)
	get := func(metric string) dataPoint {
		p, _ := last(dataPoints(s.metrics.AllMetrics()), "m1", metric, nil)
		return p
	}
	require.Eventually(t, func() bool { return get(dlt645.MetricFrequency).value == 50.01 }, 5*time.Second, 10*time.Millisecond)

	stop()
	require.Eventually(t, func() bool { return get("iiot.device.breaker.state").value == 2 }, 5*time.Second, 10*time.Millisecond)
	n := len(s.metrics.AllMetrics())
	require.Eventually(t, func() bool { return len(s.metrics.AllMetrics()) >= n+2 }, 5*time.Second, 10*time.Millisecond) // probes fail

	require.NoError(t, m.Set(0x02800002, 49.98))
	t.Cleanup(serve(addr))
	require.Eventually(t, func() bool {
		f := get(dlt645.MetricFrequency)
		return !f.stale && f.value == 49.98 && get("iiot.device.breaker.state").value == 0
	}, 5*time.Second, 10*time.Millisecond, "polling resumes long before the 1 h backoff")
}
