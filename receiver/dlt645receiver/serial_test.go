package dlt645receiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// startPTYSim serves the meters on one end of a socat pty pair and returns the other end.
func startPTYSim(t *testing.T, opts sim.Options, meters ...*sim.Meter) (*sim.Server, string) {
	t.Helper()
	pair, err := sim.NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no socat pty pair (make test installs socat): %v", err)
	}
	srv := sim.NewServer(opts, meters...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeSerial(ctx, dlt645.DefaultSerialConfig(pair.A))
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
		pair.Close()
	})
	return srv, pair.B
}

// Three meters on one RS-485 bus (a pty pair), with line noise, 2400 baud 8E1 settings.
func TestReceiverOverSerial(t *testing.T) {
	m1 := threePhase2007(t, "000000000001")
	m2 := threePhase2007(t, "000000000002")
	m3 := meter(t, "000000001997", dlt645.V1997, map[dlt645.DI]float64{0x9010: 2345.6, 0xB611: 231, 0xB621: 4.35})
	require.NoError(t, m2.Set(0x02020100, -12.345))
	srv, dev := startPTYSim(t, sim.Options{Preamble: 4, NoiseProbability: 0.3, Seed: 9}, m1, m2, m3)
	cfg := loadYAML(t, `
poll: {interval: 300ms, timeout: 300ms}
traces: {success_sample_ratio: 1}
buses:
  - endpoint: serial://`+dev+`
    baud_rate: 9600
    parity: even
    meters:
      - {id: m1, address: "000000000001", identifiers: ["00010000", "0201FF00", "02030000", "02800002"]}
      - {id: m2, address: "000000000002", identifiers: ["0202FF00", "02060000"]}
      - {id: m3, address: "000000001997", version: "1997", identifiers: ["9010", "B61F", "B621"]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := dataPoints(s.metrics.AllMetrics())
		_, a := last(pts, "m1", dlt645.MetricFrequency, nil)
		_, b := last(pts, "m2", dlt645.MetricPowerFactor, nil)
		_, c := last(pts, "m3", dlt645.MetricCurrent, nil)
		return a && b && c && srv.Stats().NoiseBytes > 0
	}, 15*time.Second, 20*time.Millisecond)
	pts := dataPoints(s.metrics.AllMetrics())
	e, _ := last(pts, "m1", dlt645.MetricActiveEnergy, map[string]string{"direction": "import"})
	assert.Equal(t, 12345670.0, e.value)
	assert.Equal(t, "serial://"+dev+"/000000000001", e.res["device.address"])
	v, _ := last(pts, "m1", dlt645.MetricVoltage, map[string]string{"phase": "C"})
	assert.Equal(t, 219.8, v.value)
	p, _ := last(pts, "m1", dlt645.MetricActivePower, nil)
	assert.Equal(t, -1234.5, p.value)
	hz, _ := last(pts, "m1", dlt645.MetricFrequency, nil)
	assert.Equal(t, 50.01, hz.value)
	c, _ := last(pts, "m2", dlt645.MetricCurrent, map[string]string{"phase": "A"})
	assert.Equal(t, -12.345, c.value)
	pf, _ := last(pts, "m2", dlt645.MetricPowerFactor, nil)
	assert.Equal(t, -0.866, pf.value)
	old, _ := last(pts, "m3", dlt645.MetricActiveEnergy, nil)
	assert.Equal(t, 2345600.0, old.value)
	ua, _ := last(pts, "m3", dlt645.MetricVoltage, map[string]string{"phase": "A"})
	assert.Equal(t, 231.0, ua.value)
	for _, dev := range []string{"m1", "m2", "m3"} {
		_, failed := last(pts, dev, "iiot.device.poll.errors", nil)
		assert.False(t, failed, "%s: noise cost no request", dev)
	}
}
