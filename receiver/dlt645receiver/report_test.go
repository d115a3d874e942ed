package dlt645receiver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

const (
	diEnergy    dlt645.DI = 0x00010000 // XXXXXX.XX kWh, sum: read as Wh
	diVoltage   dlt645.DI = 0x02010100 // XXX.X V
	diCurrent   dlt645.DI = 0x02020100 // XXX.XXX A
	diPower     dlt645.DI = 0x02030000 // XX.XXXX kW: read as W
	diFrequency dlt645.DI = 0x02800002 // XX.XX Hz
)

// meterHour polls the first meter of cfg every 10 s for an hour on a manual clock, against the
// simulator (over loopback TCP), calling at(i) before poll i; it returns each poll's points.
func meterHour(t *testing.T, cfg *Config, at func(i int)) [][]dataPoint {
	t.Helper()
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	clk := clock.NewManual(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	ms := &buses[0].meters[0]
	rec := device.NewRecorder(ms.identity, device.RecorderSettings{
		Scope: device.Scope{Name: metadata.ScopeName, Version: "test"}, Health: device.AllHealthMetrics(), Start: clk.Now(),
	})
	mp := newMeterPoller(ms, b, rec, clk, zap.NewNop())
	var out [][]dataPoint
	for i := 0; i < 360; i++ {
		at(i)
		p := rec.Begin(clk.Now())
		mp.Poll(context.Background(), p)
		md, _ := p.End(clk.Now(), poll.BreakerClosed)
		out = append(out, dataPoints(append([]pmetricMetrics{}, md)))
		clk.Advance(10 * time.Second)
	}
	return out
}

// A steady three-phase meter polled every 10 s for an hour, without and with report by exception:
// the readings sent per hour, before and after. Its voltage steps once and fails for one poll; the
// energy creeps; every failure still sends its stale marker, and the health metrics are all sent.
func TestReportByExceptionSteadyMeter(t *testing.T) {
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{
		diEnergy: 1000, diVoltage: 230, diCurrent: 10, diPower: 2.3, diFrequency: 50,
	})
	_, addr := startSim(t, sim.Options{}, m)
	setup := func(i int) {
		// noise inside the deadbands
		require.NoError(t, m.Set(diVoltage, 230+0.2*float64(i%2)))
		require.NoError(t, m.Set(diCurrent, 10+0.01*float64(i%3)))
		require.NoError(t, m.Set(diPower, 2.3+0.001*float64(i%2)))
		require.NoError(t, m.Set(diFrequency, 50+0.01*float64(i%2)))
		// 2.3 kW: 0.01 kWh every 15.65 s; the register counts hundredths
		require.NoError(t, m.Set(diEnergy, 1000+float64(int(float64(i)*10*2.3/36))/100))
		switch i {
		case 100:
			require.NoError(t, m.Set(diVoltage, 240))
		case 200:
			m.SetError(diVoltage, 0x02)
		case 201:
			m.SetError(diVoltage, 0)
		}
	}
	ids := `["00010000", "02010100", "02020100", "02030000", {di: "02800002", report: {deadband: 0.05}}]`
	plain := meterHour(t, loadYAML(t, `
poll: {interval: 10s, timeout: 1s, retries: 0, jitter: 0}
buses:
  - endpoint: tcp://`+addr+`
    inter_frame_gap: 1ms
    meters: [{id: m, address: "1", identifiers: `+ids+`}]
`), setup)
	rbe := meterHour(t, loadYAML(t, `
poll: {interval: 10s, timeout: 1s, retries: 0, jitter: 0}
report: {enabled: true}
buses:
  - endpoint: tcp://`+addr+`
    inter_frame_gap: 1ms
    meters:
      - id: m
        address: "1"
        report: {deadband: 0.5, deadband_percent: 1}
        identifiers: `+ids+`
`), setup)

	count := func(polls [][]dataPoint) (map[string]int, int) {
		c := map[string]int{}
		n := 0
		for _, pts := range polls {
			for _, p := range pts {
				c[p.metric]++
				if !strings.HasPrefix(p.metric, "iiot.device.") {
					n++
				}
			}
		}
		return c, n
	}
	before, nBefore := count(plain)
	after, nAfter := count(rbe)
	t.Logf("readings per hour: %d before, %d after (%v)", nBefore, nAfter, after)
	assert.Equal(t, 5*360, nBefore)
	for _, h := range []string{device.MetricUp, device.MetricPollDuration, device.MetricRequests, device.MetricBreakerState} {
		assert.Equal(t, before[h], after[h], h)
		assert.Equal(t, 360, after[h], h)
	}
	// current, power: held by the meter's deadbands (0.5 and 1 %); sent at 0 and every 280 s (28 polls)
	assert.Equal(t, 13, after[dlt645.MetricCurrent])
	assert.Equal(t, 13, after[dlt645.MetricActivePower])
	// frequency: its own deadband 0.05 (over the meter's 0.5 and 1 % of 50, both larger: a change must
	// exceed both), so its 0.01 noise is held too
	assert.Equal(t, 13, after[dlt645.MetricFrequency])
	// energy: 2.3 kWh an hour in steps of 0.01; sent when it moved by more than 0.5 kWh (and 1 % of
	// 1000 = 10 kWh: the percentage wins) or every 280 s: 13
	assert.Equal(t, 13, after[dlt645.MetricActiveEnergy])

	var vpolls []int
	for i, pts := range rbe {
		for _, p := range pts {
			if p.metric == dlt645.MetricVoltage {
				vpolls = append(vpolls, i)
				assert.Equal(t, i == 200, p.stale, "poll %d: only the failed reading is a stale marker", i)
				if i == 100 {
					assert.InDelta(t, 240, p.value, 1e-9)
				}
			}
		}
	}
	// the first; max_silence; the step to 240 at 100 and back at 101 (2.3 V ≥ 1 % of 240); the failure
	// at 200 and the first good reading after it; max_silence from there
	assert.Equal(t, []int{0, 28, 56, 84, 100, 101, 129, 157, 185, 200, 201, 229, 257, 285, 313, 341}, vpolls)
	assert.Less(t, nAfter, nBefore/10)
}

// Energy registers keep monotonic cumulative semantics: the points sent of a sum never go down, and
// hold one start time.
func TestReportSumStaysMonotonic(t *testing.T) {
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{diEnergy: 1000})
	_, addr := startSim(t, sim.Options{}, m)
	polls := meterHour(t, loadYAML(t, `
poll: {interval: 10s, timeout: 1s, retries: 0, jitter: 0}
buses:
  - endpoint: tcp://`+addr+`
    inter_frame_gap: 1ms
    meters:
      - id: m
        address: "1"
        identifiers: [{di: "00010000", report: {enabled: true, deadband: 100}}]
`), func(i int) {
		require.NoError(t, m.Set(diEnergy, 1000+float64(i)*0.03))
	})
	var vals []float64
	for _, pts := range polls {
		for _, p := range pts {
			if p.metric == dlt645.MetricActiveEnergy {
				require.True(t, p.sum && p.monotonic)
				vals = append(vals, p.value)
			}
		}
	}
	// 0.03 kWh (30 Wh) a poll: moved by more than 100 Wh every 4th poll
	assert.Len(t, vals, 90)
	for i := 1; i < len(vals); i++ {
		assert.Greater(t, vals[i], vals[i-1])
		assert.Equal(t, 120.0, vals[i]-vals[i-1], "exact: whole Wh")
	}
}

func TestReportConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, loadInto(cfg, `
report: {deadband_percent: -1}
profiles:
  p:
    report: {max_silence: 0s}
    identifiers: [{di: "02010100", report: {deadband: -2}}]
buses:
  - endpoint: tcp://127.0.0.1:1
    meters:
      - id: m
        address: "1"
        report: {deadband: -3}
        identifiers: [{di: "00010000", report: {deadband_percent: 101}}, {di: "04000101", report: {enabled: true}}]
`))
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"report.deadband_percent: must be between 0 and 100, got -1",
		"profiles::p: report.max_silence: must be > 0",
		"profiles::p: identifiers[0] 02010100: report.deadband: must be a number >= 0 (in the reading's unit), got -2",
		`buses[0].meters[0] "m": report.deadband: must be a number >= 0 (in the reading's unit), got -3`,
		`buses[0].meters[0] "m": identifiers[0] 00010000: report.deadband_percent: must be between 0 and 100, got 101`,
		`buses[0].meters[0] "m": identifiers[1] 04000101: the meter clock yields the dlt645.meter.clock.drift metric and takes no overrides (its report is the meter's)`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	// layers: receiver, profile, meter, identifier
	cfg = loadYAML(t, `
poll: {interval: 1m}
report: {enabled: true, deadband: 1}
profiles:
  p:
    report: {deadband_percent: 2}
    identifiers: [{di: "02010100", report: {deadband: 3}}, "02020100"]
buses:
  - endpoint: tcp://127.0.0.1:1
    meters:
      - id: m
        address: "1"
        profile: p
        report: {max_silence: 2m}
        identifiers: [{di: "02020100", report: {enabled: false}}]
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	ms := &buses[0].meters[0]
	got := map[dlt645.DI]device.Report{}
	for _, r := range ms.reads {
		got[r.di] = device.ResolveReport(ms.poll.Interval, ms.report.Over(r.parts[0].report))
	}
	assert.Equal(t, device.Report{Enabled: true, Deadband: 3, DeadbandPercent: 2, MaxSilence: 2 * time.Minute}, got[diVoltage])
	assert.Equal(t, device.Report{Enabled: false, Deadband: 1, DeadbandPercent: 2, MaxSilence: 2 * time.Minute}, got[diCurrent])
}

func loadInto(cfg *Config, yml string) error {
	ret, err := confmap.NewRetrievedFromYAML([]byte(yml))
	if err != nil {
		return err
	}
	conf, err := ret.AsConf()
	if err != nil {
		return err
	}
	return conf.Unmarshal(cfg)
}
