package modbusreceiver

import (
	"io"
	"log"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// A mis-addressed field (the device answers "illegal data address" for it alone) is found once, then
// left out of the reads until remerge_after: later polls make no failing request and their spans are
// not errors, the field stays stale and each poll counts it once as error.type "field". At
// remerge_after it is probed again, and once the device has the register its value comes back.
func TestReceiverRefusedFieldIsNotReadEveryPoll(t *testing.T) {
	bank := modbussim.NewBank(1)
	for i := 0; i < 4; i++ {
		bank.SetRegisters(1, modbussim.Holding, 2*i, f32regs(float32(i)+0.5)...)
	}
	bank.Fail(1, modbussim.Holding, 4, 5, modbus.ErrIllegalDataAddress) // field f2
	addr := startTCPServer(t, bank)
	cfg := loadConfig(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0, jitter: 0}
traces: {success_sample_ratio: 1}
requests: {remerge_after: 3s}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: m
        fields:
          - {name: f0, address: 0, type: float32, metric: value, attributes: {n: "0"}}
          - {name: f1, address: 2, type: float32, metric: value, attributes: {n: "1"}}
          - {name: f2, address: 4, type: float32, metric: value, attributes: {n: "2"}}
          - {name: f3, address: 6, type: float32, metric: value, attributes: {n: "3"}}
`)
	s := startReceiver(t, cfg)

	polls := func() [][]spanInfo {
		var out [][]spanInfo
		for _, sp := range spans(s.traces.AllTraces()) {
			if sp.name == "modbus.poll" {
				out = append(out, []spanInfo{sp})
			} else if len(out) > 0 {
				out[len(out)-1] = append(out[len(out)-1], sp)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(polls()) >= 8 }, 10*time.Second, 10*time.Millisecond)
	all := polls()[:8] // well before remerge_after
	assert.Equal(t, ptrace.StatusCodeError, all[0][0].status, "the first poll finds the refused field")
	for k, pl := range all[1:] {
		assert.NotEqual(t, ptrace.StatusCodeError, pl[0].status, "poll %d: a known refused field does not make the poll an error", k+1)
		assert.EqualValues(t, 1, pl[0].attrs[device.AttrRefusedReadings], "poll %d", k+1)
		for _, req := range pl[1:] {
			assert.NotEqual(t, ptrace.StatusCodeError, req.status, "poll %d: %s %v+%v", k+1, req.name, req.attrs[attrAddress], req.attrs[attrCount])
			assert.NotEqual(t, int64(4), req.attrs[attrAddress], "poll %d: the refused register is not read", k+1)
		}
	}

	pts := points(s.metrics.AllMetrics())
	f2, _ := latest(pts, "m", "value", map[string]string{"n": "2"})
	assert.True(t, f2.stale, "the refused field stays stale")
	for _, n := range []string{"0", "1", "3"} {
		p, _ := latest(pts, "m", "value", map[string]string{"n": n})
		assert.False(t, p.stale, "field %s", n)
	}
	exc, _ := latest(pts, "m", device.MetricPollErrors, map[string]string{device.AttrErrorType: "exception"})
	field, _ := latest(pts, "m", device.MetricPollErrors, map[string]string{device.AttrErrorType: "field"})
	assert.LessOrEqual(t, exc.value, 4.0, "exceptions only while the first poll splits, not at every poll")
	assert.GreaterOrEqual(t, field.value, 6.0, "one field error per later poll")

	// The device gets the register: at the re-probe (remerge_after) the field comes back.
	bank.ClearFaults(1)
	bank.SetRegisters(1, modbussim.Holding, 4, f32regs(2.5)...)
	require.Eventually(t, func() bool {
		p, _ := latest(points(s.metrics.AllMetrics()), "m", "value", map[string]string{"n": "2"})
		return !p.stale && p.value == 2.5
	}, 10*time.Second, 20*time.Millisecond)
}

// A text read as an info metric that changes (a replaced module's serial number) starts a new series
// and marks the series under the old text stale once, in the same poll, instead of leaving both alive.
func TestReceiverInfoStringChangeMarksOldSeriesStale(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, 'A'<<8|'1', 'B'<<8|'2')
	bank.SetRegisters(1, modbussim.Holding, 10, 7)
	addr := startTCPServer(t, bank)
	cfg := loadConfig(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0, jitter: 0}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: m
        fields:
          - {name: sn, address: 0, type: string, length: 2, string_as: info, attribute: serial, metric: module_info}
          - {name: v, address: 10, metric: v}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		_, ok := latest(points(s.metrics.AllMetrics()), "m", "module_info", map[string]string{"serial": "A1B2"})
		return ok
	}, 5*time.Second, 10*time.Millisecond)

	bank.SetRegisters(1, modbussim.Holding, 0, 'C'<<8|'3', 'D'<<8|'4')
	require.Eventually(t, func() bool {
		_, ok := latest(points(s.metrics.AllMetrics()), "m", "module_info", map[string]string{"serial": "C3D4"})
		return ok
	}, 5*time.Second, 10*time.Millisecond)
	// wait for a few more polls, then look at the old series: one stale marker, then nothing
	n := len(s.metrics.AllMetrics())
	require.Eventually(t, func() bool { return len(s.metrics.AllMetrics()) >= n+3 }, 5*time.Second, 10*time.Millisecond)

	var old []point
	for _, p := range points(s.metrics.AllMetrics()) {
		if p.metric == "module_info" && p.attrs["serial"] == "A1B2" {
			old = append(old, p)
		}
	}
	require.NotEmpty(t, old)
	last := old[len(old)-1]
	assert.True(t, last.stale, "the series of the old serial number ends with a stale marker")
	stale := 0
	for _, p := range old {
		if p.stale {
			stale++
		}
	}
	assert.Equal(t, 1, stale, "marked stale once, not at every poll")
	cur, _ := latest(points(s.metrics.AllMetrics()), "m", "module_info", map[string]string{"serial": "C3D4"})
	assert.False(t, cur.stale)
	assert.Equal(t, 1.0, cur.value)
}

// A Modbus TCP device that restarts while its breaker is open (backoff 1 h): each scheduled poll dials
// its endpoint, and polling resumes within an interval or two of its return instead of after the backoff.
func TestReceiverBreakerProbeResumesWhenTheDeviceIsBack(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, 11)
	addr := freeAddr(t)
	start := func() *modbus.ModbusServer {
		srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
		require.NoError(t, err)
		require.NoError(t, srv.Start())
		return srv
	}
	srv := start()
	cfg := loadConfig(t, `
poll: {interval: 100ms, timeout: 100ms, retries: 0, jitter: 0}
breaker: {failure_threshold: 2, initial_backoff: 1h, max_backoff: 1h}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - {id: m, fields: [{name: v, address: 0}]}
`)
	s := startReceiver(t, cfg)
	latestOf := func(metric string) point {
		p, _ := latest(points(s.metrics.AllMetrics()), "m", metric, nil)
		return p
	}
	require.Eventually(t, func() bool { return latestOf("v").value == 11 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, srv.Stop())
	require.Eventually(t, func() bool { return latestOf(device.MetricBreakerState).value == 2 }, 5*time.Second, 10*time.Millisecond)
	n := len(s.metrics.AllMetrics())
	require.Eventually(t, func() bool { return len(s.metrics.AllMetrics()) >= n+2 }, 5*time.Second, 10*time.Millisecond) // probes fail

	bank.SetRegisters(1, modbussim.Holding, 0, 22)
	srv = start()
	t.Cleanup(func() { _ = srv.Stop() })
	require.Eventually(t, func() bool {
		v := latestOf("v")
		return !v.stale && v.value == 22 && latestOf(device.MetricBreakerState).value == 0
	}, 5*time.Second, 10*time.Millisecond, "polling resumes long before the 1 h backoff")
}

// A serial number read into a resource attribute that changes (a replaced module): the series under
// the old serial number end with a stale marker, once.
func TestReceiverResourceStringChangeEndsOldSeries(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, 'A'<<8|'1')
	bank.SetRegisters(1, modbussim.Holding, 10, 7)
	addr := startTCPServer(t, bank)
	cfg := loadConfig(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0, jitter: 0}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: m
        fields:
          - {name: sn, address: 0, type: string, length: 1, string_as: resource, attribute: device.serial_number}
          - {name: v, address: 10, metric: v}
`)
	s := startReceiver(t, cfg)
	withSerial := func(sn string) []point {
		var out []point
		for _, p := range points(s.metrics.AllMetrics()) {
			if p.metric == "v" && p.res["device.serial_number"] == sn {
				out = append(out, p)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(withSerial("A1")) >= 2 }, 5*time.Second, 10*time.Millisecond)
	bank.SetRegisters(1, modbussim.Holding, 0, 'B'<<8|'2')
	require.Eventually(t, func() bool { return len(withSerial("B2")) >= 3 }, 5*time.Second, 10*time.Millisecond)
	old := withSerial("A1")
	stale := 0
	for _, p := range old {
		if p.stale {
			stale++
		}
	}
	assert.Equal(t, 1, stale, "one stale marker under the old serial number")
	assert.True(t, old[len(old)-1].stale, "and it is the last point of that series")
}
