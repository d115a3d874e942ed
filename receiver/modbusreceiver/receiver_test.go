package modbusreceiver

import (
	"math"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

const profilesDir = "../../distributions/otelcol-iiot/profiles/"

// The shipped profiles against the simulated devices over Modbus/TCP: values, scale factors, strings,
// counters, and one read per block of the plan.
func TestReceiverProfilesOverTCP(t *testing.T) {
	bank := modbussim.NewBank(1, 2, 3)
	sdm := &modbussim.SDM630{Bank: bank, Unit: 1}
	sdm.E.ImportKWh = 100
	sdm.Update(10, 1)
	inv := &modbussim.Inverter{Bank: bank, Unit: 2, Serial: "SN-42", DayLength: time.Hour}
	inv.Init()
	inv.Update(900, 1)
	dtsu := &modbussim.DTSU666{Bank: bank, Unit: 3}
	dtsu.Update(10, 1)
	addr := startTCPServer(t, bank)

	cfg := loadConfig(t, `
poll: {interval: 100ms, timeout: 100ms}
traces: {success_sample_ratio: 1}
profile_files: [`+profilesDir+`eastron-sdm630.yaml, `+profilesDir+`chint-dtsu666.yaml, `+profilesDir+`sunspec-inverter-103.yaml]
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - {id: sdm, unit_id: 1, profile: eastron_sdm630, resource_attributes: {site: lab}}
      - {id: inv, unit_id: 2, profile: sunspec_inverter_103, manufacturer: Sim}
      - {id: dtsu, unit_id: 3, profile: chint_dtsu666}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		_, a := latest(pts, "sdm", "electrical.voltage", map[string]string{"phase": "A"})
		_, b := latest(pts, "inv", "electrical.power.active", nil)
		_, c := latest(pts, "dtsu", "electrical.frequency", nil)
		return a && b && c
	}, 5*time.Second, 20*time.Millisecond)
	pts := points(s.metrics.AllMetrics())

	v, _ := latest(pts, "sdm", "electrical.voltage", map[string]string{"phase": "B"})
	assert.Equal(t, float64(float32(sdm.E.Voltage[1])), v.value)
	assert.Equal(t, "lab", v.res["site"])
	assert.Equal(t, "Eastron", v.res["device.manufacturer"])
	assert.Equal(t, "tcp://"+addr+"/1", v.res["device.address"])
	e, _ := latest(pts, "sdm", "electrical.energy.active", map[string]string{"direction": "import", "phase": "total"})
	assert.True(t, e.sum)
	assert.InDelta(t, 100000, e.value, 10, "100 kWh in Wh")

	w, _ := latest(pts, "inv", "electrical.power.active", nil)
	assert.Equal(t, float64(int16(bank.Registers(2, modbussim.Holding, 40084, 1)[0])), w.value)
	hz, _ := latest(pts, "inv", "electrical.frequency", nil)
	assert.InDelta(t, float64(bank.Registers(2, modbussim.Holding, 40086, 1)[0])/100, hz.value, 1e-9)
	assert.Equal(t, "SN-42", hz.res["device.serial_number"], "serial number as resource attribute")
	assert.Equal(t, "Sim", hz.res["device.manufacturer"])
	fw, ok := latest(pts, "inv", "inverter.firmware", nil)
	require.True(t, ok)
	assert.Equal(t, "1.4.2", fw.attrs["version"])
	assert.Equal(t, 1.0, fw.value)
	tr, _ := latest(pts, "inv", "inverter.temperature", map[string]string{"location": "transformer"})
	assert.True(t, tr.stale, "0x8000 is 'not implemented' in SunSpec: stale")
	cab, _ := latest(pts, "inv", "inverter.temperature", map[string]string{"location": "cabinet"})
	assert.False(t, cab.stale)
	_, sfExported := latest(pts, "inv", "power_sf", nil)
	assert.False(t, sfExported, "internal scale factors are not exported")

	f, _ := latest(pts, "dtsu", "electrical.frequency", nil)
	assert.InDelta(t, dtsu.E.Frequency, f.value, 1e-4)
	cur, _ := latest(pts, "dtsu", "electrical.current", map[string]string{"phase": "C"})
	assert.InDelta(t, dtsu.E.Current[2], cur.value, 1e-5)

	// The planner serves each profile in a handful of reads; the request counter shows it.
	r := s.metrics.AllMetrics()
	_ = r
	sp := spans(s.traces.AllTraces())
	reads := map[string]int{}
	polls := map[string]int{}
	for _, x := range sp {
		dev := x.res["device.id"].(string)
		if x.name == "modbus.poll" {
			polls[dev]++
			continue
		}
		reads[dev]++
		assert.Contains(t, []string{"modbus.read_holding_registers", "modbus.read_input_registers"}, x.name)
		assert.Contains(t, x.attrs, "modbus.address")
		assert.Contains(t, x.attrs, "modbus.function_code")
	}
	for dev, want := range map[string]int{"sdm": 4, "inv": 1, "dtsu": 3} {
		require.NotZero(t, polls[dev])
		assert.Equal(t, want, reads[dev]/polls[dev], "reads per poll of %s", dev)
	}
}

// An exception on a merged read marks only the bad field stale; the others keep coming; later polls
// do not pay for the split again.
func TestReceiverIsolatesException(t *testing.T) {
	bank := modbussim.NewBank(1)
	for i := 0; i < 10; i++ {
		bank.SetRegisters(1, modbussim.Holding, 2*i, f32regs(float32(i)+0.5)...)
	}
	bank.Fail(1, modbussim.Holding, 8, 9, modbus.ErrIllegalDataAddress) // field f4
	addr := startTCPServer(t, bank)
	fields := ""
	for i := 0; i < 10; i++ {
		fields += "          - {name: f" + string(rune('0'+i)) + ", address: " + itoa(2*i) + ", type: float32, metric: value, attributes: {n: \"" + itoa(i) + "\"}}\n"
	}
	cfg := loadConfig(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0}
traces: {success_sample_ratio: 1}
requests: {remerge_after: 2s}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: m
        fields:
`+fields)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool { return len(s.metrics.AllMetrics()) >= 6 }, 5*time.Second, 10*time.Millisecond)
	pts := points(s.metrics.AllMetrics())
	for i := 0; i < 10; i++ {
		p, ok := latest(pts, "m", "value", map[string]string{"n": itoa(i)})
		require.True(t, ok)
		if i == 4 {
			assert.True(t, p.stale, "field 4 raises an exception")
			continue
		}
		assert.False(t, p.stale, "field %d", i)
		assert.Equal(t, float64(i)+0.5, p.value)
	}
	errs, ok := latest(pts, "m", device.MetricPollErrors, map[string]string{"error.type": "exception"})
	require.True(t, ok)
	assert.GreaterOrEqual(t, errs.value, 5.0)
	up, _ := latest(pts, "m", device.MetricUp, nil)
	assert.Equal(t, 1.0, up.value, "a device that answers with exceptions is up")

	// After the first poll the plan reads around the refused field, which is not read again until
	// remerge_after: 2 reads (0–7, 10–19) per poll.
	var perPoll []int
	n := 0
	for _, x := range spans(s.traces.AllTraces()) {
		if x.name == "modbus.poll" {
			if n > 0 {
				perPoll = append(perPoll, n)
			}
			n = 0
			continue
		}
		n++
	}
	require.GreaterOrEqual(t, len(perPoll), 3)
	assert.Greater(t, perPoll[0], 3, "the first poll splits")
	for _, k := range perPoll[1:min(len(perPoll), 5)] {
		assert.Equal(t, 2, k)
	}

	// The device fixes the register: the isolated field comes back at the re-probe, without a restart.
	bank.ClearFaults(1)
	require.Eventually(t, func() bool {
		p, _ := latest(points(s.metrics.AllMetrics()), "m", "value", map[string]string{"n": "4"})
		return !p.stale && p.value == 4.5
	}, 5*time.Second, 10*time.Millisecond)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

var _ = math.Pi
