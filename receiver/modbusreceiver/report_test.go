package modbusreceiver

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// hourOfPolls runs the receiver on a manual clock for polls polls of interval (the first poll of a
// device comes within its first interval: each step of one interval makes one poll), calling at(i)
// before poll i (to change the simulator's registers). Each step waits until every connection's goroutine
// is parked on the clock and the poll's emissions arrived (counted by their up points: the polls of a
// tick reach the pipeline in one call), so the count is the schedule's.
func hourOfPolls(t *testing.T, cfg *Config, goroutines, polls int, interval time.Duration, at func(i int)) sinks {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	s := startReceiverOn(t, cfg, clk)
	for i := 0; i < polls; i++ {
		require.Eventually(t, func() bool {
			return clk.Waiters() == goroutines && pollCount(s.metrics.AllMetrics()) >= i*goroutines
		}, 10*time.Second, 100*time.Microsecond, "poll %d", i)
		if at != nil {
			at(i)
		}
		clk.Advance(interval)
	}
	require.Eventually(t, func() bool { return pollCount(s.metrics.AllMetrics()) >= polls*goroutines }, 10*time.Second, time.Millisecond)
	return s
}

// pollCount counts the polls in md by their up points.
func pollCount(md []pmetric.Metrics) int {
	n := 0
	for _, p := range points(md) {
		if p.metric == device.MetricUp {
			n++
		}
	}
	return n
}

// A steady meter polled every 10 s for an hour, once with report by exception and once without (two
// devices on the simulator): the readings sent per hour, before and after. The voltage jumps once,
// and its register fails for one poll: both are sent at once.
func TestReportByExceptionSteadyMeter(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, f32regs(230.0)...)
	bank.SetRegisters(1, modbussim.Holding, 2, f32regs(50.0)...)
	bank.SetRegisters(1, modbussim.Holding, 4, 0, 1000) // energy, uint32 Wh
	bank.SetRegisters(1, modbussim.Holding, 10, 7)      // status: report disabled on the field
	addr := startTCPServer(t, bank)
	fields := `
        fields:
          - {name: voltage, address: 0, type: float32, unit: V}
          - {name: frequency, address: 2, type: float32, unit: Hz, report: {deadband: 0.05}}
          - {name: energy, address: 4, type: uint32, unit: Wh, kind: sum}
          - {name: status, address: 10, report: {enabled: false}}
`
	cfg := loadConfig(t, `
poll: {interval: 10s, timeout: 2s, retries: 0, jitter: 0}
report: {deadband: 0.5}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: plain
        unit_id: 1`+fields+`
  - endpoint: tcp://`+addr+`
    devices:
      - id: rbe
        unit_id: 1
        report: {enabled: true}`+fields)
	const polls = 360
	s := hourOfPolls(t, cfg, 2, polls, 10*time.Second, func(i int) {
		// wobble inside the deadbands; the energy creeps by 1 Wh a minute
		bank.SetRegisters(1, modbussim.Holding, 0, f32regs(230.0+0.2*float32(i%2))...)
		bank.SetRegisters(1, modbussim.Holding, 2, f32regs(50.0+0.01*float32(i%3))...)
		switch i {
		case 100:
			bank.SetRegisters(1, modbussim.Holding, 0, f32regs(240)...)
		case 101, 102:
			bank.SetRegisters(1, modbussim.Holding, 0, f32regs(240.1)...)
		case 200:
			bank.Fail(1, modbussim.Holding, 0, 1, modbus.ErrServerDeviceFailure)
		case 201:
			bank.ClearFaults(1)
		}
		if i%6 == 0 {
			bank.SetRegisters(1, modbussim.Holding, 4, 0, uint16(1000+i/6)) // 1 Wh a minute
		}
	})
	count := map[string]map[string]int{"plain": {}, "rbe": {}}
	var voltage []point
	for _, p := range points(s.metrics.AllMetrics()) {
		count[p.device][p.metric]++
		if p.device == "rbe" && p.metric == "voltage" {
			voltage = append(voltage, p)
		}
	}
	var before, after int
	for _, m := range []string{"voltage", "frequency", "energy"} {
		before += count["plain"][m]
		after += count["rbe"][m]
	}
	t.Logf("readings per hour of one device: %d before, %d after (%v)", before, after, count["rbe"])
	assert.Equal(t, 3*polls, before)
	// health metrics are never held
	assert.Equal(t, polls, count["rbe"][device.MetricUp])
	assert.Equal(t, polls, count["rbe"][device.MetricPollDuration])
	// status: report disabled on the field, sent every poll
	assert.Equal(t, polls, count["rbe"]["status"])
	// energy: every change (1 Wh > the 0.5 deadband), once a minute: 60
	assert.Equal(t, 60, count["rbe"]["energy"])
	// frequency: its own deadband 0.05 holds the 0.01 wobble: at 0 and every 280 s (max_silence at 10 s)
	assert.Equal(t, 13, count["rbe"]["frequency"])

	// voltage: the first; max_silence (280 s: polls 28, 56, 84); the jump at poll 100; 240.1 held;
	// 230.x at 103 (a move); max_silence at 131, 159, 187; the failure at 200 (stale marker) and the
	// first good reading after it at 201, whatever its value; then 229, 257, 285, 313, 341.
	var idx []int
	start := voltage[0].ts
	for _, p := range voltage {
		i := int(p.ts.Sub(start) / (10 * time.Second))
		idx = append(idx, i)
		if i == 200 {
			assert.True(t, p.stale, "the failed reading's stale marker")
		} else {
			assert.False(t, p.stale, "poll %d", i)
		}
	}
	assert.Equal(t, []int{0, 28, 56, 84, 100, 103, 131, 159, 187, 200, 201, 229, 257, 285, 313, 341}, idx)
	assert.InDelta(t, 240, voltage[4].value, 1e-6)
	for i := 1; i < len(voltage); i++ {
		assert.Less(t, voltage[i].ts.Sub(voltage[i-1].ts), device.LookbackDelta, "no gap reaches Prometheus' lookback")
	}
	assert.Less(t, after, before/10)
}

func TestReportConfigErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, loadInto(cfg, `
report: {deadband: -1}
profiles:
  m:
    report: {deadband_percent: 200}
    fields: [{name: a, address: 0, report: {max_silence: 0s}}]
connections:
  - endpoint: tcp://127.0.0.1:502
    devices:
      - id: d
        report: {max_silence: -1s}
        fields: [{name: v, address: 0, report: {deadband: .nan}}]
`))
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"report.deadband: must be a number >= 0",
		"profiles::m: report.deadband_percent: must be between 0 and 100, got 200",
		`profiles::m: fields[0] "a": report.max_silence: must be > 0`,
		`connections[0].devices[0] "d": report.max_silence: must be > 0`,
		`connections[0].devices[0] "d": fields[0] "v": report.deadband: must be a number >= 0`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Equal(t, 5, strings.Count(err.Error(), "report."), err.Error())
}

// The layers: receiver, profile, device, then the field (the profile's field patched by the device's).
func TestReportLayers(t *testing.T) {
	cfg := loadConfig(t, `
poll: {interval: 30s, timeout: 2s}
report: {enabled: true, deadband: 1}
profiles:
  m:
    report: {deadband_percent: 2}
    fields:
      - {name: a, address: 0, report: {deadband: 3}}
      - {name: b, address: 1}
      - {name: c, address: 2, report: {max_silence: 1m}}
connections:
  - endpoint: tcp://127.0.0.1:502
    devices:
      - id: d
        profile: m
        report: {deadband: 5}
        fields:
          - {name: c, report: {enabled: false}}
`)
	conns, err := cfg.resolve()
	require.NoError(t, err)
	dev := conns[0].devices[0]
	got := map[string]device.Report{}
	for _, f := range dev.fields {
		got[f.name] = device.ResolveReport(dev.poll.Interval, f.report)
	}
	silence := 4 * time.Minute // 5m − 2 × 30s
	assert.Equal(t, device.Report{Enabled: true, Deadband: 3, DeadbandPercent: 2, MaxSilence: silence}, got["a"])
	assert.Equal(t, device.Report{Enabled: true, Deadband: 5, DeadbandPercent: 2, MaxSilence: silence}, got["b"])
	assert.Equal(t, device.Report{Enabled: false, Deadband: 5, DeadbandPercent: 2, MaxSilence: time.Minute}, got["c"])
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

// The README's example of report by exception is a valid configuration, over the shipped profile.
func TestReportReadmeExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(b)
	start := strings.Index(readme, "  modbus/cellular:\n")
	require.Positive(t, start)
	end := strings.Index(readme[start:], "```")
	require.Positive(t, end)
	src := strings.ReplaceAll(readme[start:start+end], "/etc/otelcol-iiot/profiles/", "../../distributions/otelcol-iiot/profiles/")
	var doc map[string]map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(src), &doc))
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(doc["modbus/cellular"]).Unmarshal(cfg))
	conns, err := cfg.resolve()
	require.NoError(t, err)
	dev := conns[0].devices[0]
	got := map[string]device.Report{}
	for _, f := range dev.fields {
		got[f.name] = device.ResolveReport(dev.poll.Interval, f.report)
	}
	silence := 280 * time.Second
	assert.Equal(t, device.Report{Enabled: true, Deadband: 0.2, DeadbandPercent: 0.5, MaxSilence: silence}, got["voltage_l1"])
	assert.Equal(t, device.Report{Enabled: true, Deadband: 0.02, MaxSilence: silence}, got["frequency"])
	assert.Equal(t, device.Report{Enabled: true, Deadband: 100, DeadbandPercent: 0.5, MaxSilence: silence}, got["energy_active_import"])
	assert.False(t, got["power_factor_total"].Enabled)
}
