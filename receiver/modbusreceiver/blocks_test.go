package modbusreceiver

import (
	"fmt"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// requestsPerPoll groups the request spans of each poll: "table address+count", and whether it failed.
type pollRequest struct {
	read   string
	failed bool
}

func requestsPerPoll(all []spanInfo) [][]pollRequest {
	var out [][]pollRequest
	for _, s := range all {
		if s.name == "modbus.poll" {
			out = append(out, nil)
			continue
		}
		if len(out) == 0 {
			continue
		}
		r := pollRequest{read: fmt.Sprintf("%s %v+%v", s.name, s.attrs[attrAddress], s.attrs[attrCount])}
		r.failed = s.attrs[attrExceptionCode] != nil
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	return out
}

// A device whose firmware answers only exact blocks: the configured blocks are read as given (the
// planner would merge 0–27 into one read the device refuses); when a block raises an exception it is
// not split, its fields are stale and the other blocks' fields keep coming; when it answers again
// its fields come back.
func TestReceiverExplicitBlocks(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, f32regs(1.5)...)
	bank.SetRegisters(1, modbussim.Holding, 6, f32regs(2.5)...)
	bank.SetRegisters(1, modbussim.Holding, 20, f32regs(3.5)...)
	bank.SetRegisters(1, modbussim.Holding, 26, 42)
	bank.SetRegisters(1, modbussim.Input, 0, f32regs(4.5)...)
	bank.ExactBlocks(1, modbussim.Holding, [2]int{0, 10}, [2]int{20, 8}, [2]int{40, 4})
	bank.ExactBlocks(1, modbussim.Input, [2]int{0, 2})
	addr := startTCPServer(t, bank)

	cfg := loadConfig(t, `
poll: {interval: 50ms, timeout: 50ms, retries: 0}
traces: {success_sample_ratio: 1}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: m
        requests:
          blocks:
            - {address: 0, count: 10}
            - {address: 20, count: 8}
            - {table: input, address: 0, count: 2}
            - {address: 40, count: 4}          # no field left in it: not read
        fields:
          - {name: a0, address: 0, type: float32, metric: v, attributes: {f: a0}}
          - {name: a1, address: 6, type: float32, metric: v, attributes: {f: a1}}
          - {name: b0, address: 20, type: float32, metric: v, attributes: {f: b0}}
          - {name: b1, address: 26, metric: v, attributes: {f: b1}}
          - {name: c0, table: input, address: 0, type: float32, metric: v, attributes: {f: c0}}
`)
	s := startReceiver(t, cfg)
	want := map[string]float64{"a0": 1.5, "a1": 2.5, "b0": 3.5, "b1": 42, "c0": 4.5}
	fresh := func(f string) (point, bool) {
		p, ok := latest(points(s.metrics.AllMetrics()), "m", "v", map[string]string{"f": f})
		return p, ok && !p.stale
	}
	require.Eventually(t, func() bool {
		for f := range want {
			if _, ok := fresh(f); !ok {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	for f, v := range want {
		p, _ := fresh(f)
		assert.Equal(t, v, p.value, f)
	}
	blocks := []pollRequest{
		{read: "modbus.read_holding_registers 0+10"},
		{read: "modbus.read_holding_registers 20+8"},
		{read: "modbus.read_input_registers 0+2"},
	}
	polls := requestsPerPoll(spans(s.traces.AllTraces()))
	require.NotEmpty(t, polls)
	for i, reqs := range polls {
		assert.Equal(t, blocks, reqs, "poll %d reads exactly the configured blocks", i)
	}

	// The second block raises an exception (server device failure).
	before := len(s.traces.AllTraces())
	bank.Fail(1, modbussim.Holding, 26, 26, modbus.ErrServerDeviceFailure)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		b0, _ := latest(pts, "m", "v", map[string]string{"f": "b0"})
		b1, _ := latest(pts, "m", "v", map[string]string{"f": "b1"})
		return b0.stale && b1.stale
	}, 5*time.Second, 10*time.Millisecond)
	for _, f := range []string{"a0", "a1", "c0"} {
		p, ok := fresh(f)
		assert.True(t, ok, "%s is read by another block", f)
		assert.Equal(t, want[f], p.value, f)
	}
	pts := points(s.metrics.AllMetrics())
	errs, ok := latest(pts, "m", device.MetricPollErrors, map[string]string{"error.type": "exception"})
	require.True(t, ok, "the failed block is counted")
	assert.GreaterOrEqual(t, errs.value, 1.0)
	up, _ := latest(pts, "m", device.MetricUp, nil)
	assert.Equal(t, 1.0, up.value, "a device answering with an exception is up")
	failedPolls := 0
	for _, reqs := range requestsPerPoll(spans(s.traces.AllTraces()[before:])) {
		if len(reqs) == 3 && reqs[1].failed {
			failedPolls++
			assert.Equal(t, []pollRequest{blocks[0], {read: blocks[1].read, failed: true}, blocks[2]}, reqs, "no split: the same three reads")
		}
		assert.LessOrEqual(t, len(reqs), 3, "an explicit block is never split")
	}
	assert.Positive(t, failedPolls)
	for _, sp := range spans(s.traces.AllTraces()[before:]) {
		if sp.attrs[attrExceptionCode] != nil {
			assert.Equal(t, int64(4), sp.attrs[attrExceptionCode])
			assert.Equal(t, int64(20), sp.attrs[attrAddress])
		}
	}

	// The device answers the block again: its fields come back.
	bank.ClearFaults(1)
	require.Eventually(t, func() bool {
		b0, ok0 := fresh("b0")
		b1, ok1 := fresh("b1")
		return ok0 && ok1 && b0.value == 3.5 && b1.value == 42
	}, 5*time.Second, 10*time.Millisecond)
}
