package modbusreceiver

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

func regs64(v uint64) []uint16 {
	return []uint16{uint16(v >> 48), uint16(v >> 32), uint16(v >> 16), uint16(v)}
}

// Integer registers are integer data points, exact, under a whole scale and offset (device.Scale): a
// 64-bit Wh counter at 2^53+1 keeps its last digit (float64 would make it 2^53), and so do the int64
// and uint64 limits up to 2^63-1; above that a uint64 is the nearest double. A kWh register with
// scale 1000 stays an exact integer in Wh; a fractional scale, a result beyond int64 and a float field
// are doubles.
func TestExactIntegers(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, regs64(1<<53+1)...)
	bank.SetRegisters(1, modbussim.Holding, 4, regs64(math.MaxInt64)...)
	bank.SetRegisters(1, modbussim.Holding, 8, regs64(1<<63)...) // int64 minimum
	bank.SetRegisters(1, modbussim.Holding, 12, regs64(math.MaxUint64)...)
	bank.SetRegisters(1, modbussim.Holding, 16, 0xFFFF, 0xFFFF) // int32 -1
	bank.SetRegisters(1, modbussim.Holding, 18, 0x8000)         // int16 minimum
	bank.SetRegisters(1, modbussim.Holding, 19, regs64(1<<53+1)...)
	bank.SetRegisters(1, modbussim.Holding, 23, regs64(1<<53+1)...)
	bank.SetRegisters(1, modbussim.Holding, 27, regs64(math.MaxUint64)...)
	bank.SetRegisters(1, modbussim.Holding, 31, regs64(1<<53+1)...)       // kWh
	bank.SetRegisters(1, modbussim.Holding, 35, 0xFFFF, 0xFFFF)           // uint32 max, kWh
	bank.SetRegisters(1, modbussim.Holding, 37, 0x8000)                   // int16 minimum
	bank.SetRegisters(1, modbussim.Holding, 38, regs64(math.MaxInt64)...) // overflows ×1000
	bank.SetRegisters(1, modbussim.Holding, 42, 0x3FC0, 0x0000)           // float32 1.5
	addr := startTCPServer(t, bank)
	cfg := loadConfig(t, `
poll: {interval: 2s, timeout: 1s, retries: 0}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: exact
        unit_id: 1
        fields:
          - {name: wh, address: 0, type: uint64, kind: sum, metric: exact.energy, unit: Wh}
          - {name: i64max, address: 4, type: int64, metric: exact.value, attributes: {k: i64max}}
          - {name: i64min, address: 8, type: int64, metric: exact.value, attributes: {k: i64min}}
          - {name: u64max, address: 12, type: uint64, metric: exact.value, attributes: {k: u64max}}
          - {name: u64max_as_i64, address: 27, type: int64, metric: exact.value, attributes: {k: minus1}}
          - {name: i32, address: 16, type: int32, metric: exact.value, attributes: {k: i32}}
          - {name: i16, address: 18, type: int16, metric: exact.value, attributes: {k: i16}}
          - {name: scaled, address: 19, type: uint64, scale: 0.001, metric: exact.value, attributes: {k: scaled}}
          - {name: offset, address: 23, type: uint64, offset: 1, metric: exact.value, attributes: {k: offset}}
          - {name: kwh64, address: 31, type: uint64, scale: 1000, metric: exact.value, attributes: {k: kwh64}}
          - {name: kwh32, address: 35, type: uint32, scale: 1000, offset: -7, metric: exact.value, attributes: {k: kwh32}}
          - {name: neg16, address: 37, type: int16, scale: -1, metric: exact.value, attributes: {k: neg16}}
          - {name: over, address: 38, type: int64, scale: 1000, metric: exact.value, attributes: {k: over}}
          - {name: f32, address: 42, type: float32, scale: 1000, metric: exact.value, attributes: {k: f32}}
`)
	md := devicetest.FirstEmissions(t, startReceiver(t, cfg).metrics, 1)
	got := map[string]pmetric.NumberDataPoint{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			var dps pmetric.NumberDataPointSlice
			switch m.Type() {
			case pmetric.MetricTypeSum:
				dps = m.Sum().DataPoints()
			case pmetric.MetricTypeGauge:
				dps = m.Gauge().DataPoints()
			default:
				continue
			}
			for k := 0; k < dps.Len(); k++ {
				key := ""
				if v, ok := dps.At(k).Attributes().Get("k"); ok {
					key = v.AsString()
				}
				got[m.Name()+"/"+key] = dps.At(k)
			}
		}
	}
	ints := map[string]int64{
		"exact.energy/":      1<<53 + 1,
		"exact.value/i64max": math.MaxInt64,
		"exact.value/i64min": math.MinInt64,
		"exact.value/minus1": -1,
		"exact.value/i32":    -1,
		"exact.value/i16":    math.MinInt16,
		"exact.value/offset": 1<<53 + 2,
		"exact.value/kwh64":  (1<<53 + 1) * 1000,
		"exact.value/kwh32":  math.MaxUint32*1000 - 7,
		"exact.value/neg16":  -math.MinInt16,
	}
	for k, want := range ints {
		dp, ok := got[k]
		require.True(t, ok, k)
		assert.Equal(t, pmetric.NumberDataPointValueTypeInt, dp.ValueType(), k)
		assert.Equal(t, want, dp.IntValue(), k)
	}
	doubles := map[string]float64{
		"exact.value/u64max": float64(math.MaxUint64),
		"exact.value/scaled": float64(1<<53+1) * 0.001,
		"exact.value/over":   float64(math.MaxInt64) * 1000,
		"exact.value/f32":    1500,
	}
	for k, want := range doubles {
		dp, ok := got[k]
		require.True(t, ok, k)
		assert.Equal(t, pmetric.NumberDataPointValueTypeDouble, dp.ValueType(), k)
		assert.Equal(t, want, dp.DoubleValue(), k)
	}
}
