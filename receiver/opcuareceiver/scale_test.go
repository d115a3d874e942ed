package opcuareceiver

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

// exactInt and double describe the number a conversion must give.
func exactInt(i int64) number     { return device.IntNumber(i) }
func double(f float64) number     { return device.FloatNumber(f) }
func twoTo53Plus1() int64         { return 1<<53 + 1 }
func kWhToWh() conversion         { return newConversion(1000, 0) }
func celsiusToKelvin() conversion { return newConversion(1, 273.15) }

func TestConversionIdentityKeepsIntegersExact(t *testing.T) {
	c := identityConversion
	tests := []struct {
		in   any
		want number
	}{
		{int8(math.MinInt8), exactInt(math.MinInt8)},
		{int8(math.MaxInt8), exactInt(math.MaxInt8)},
		{uint8(math.MaxUint8), exactInt(math.MaxUint8)},
		{int16(math.MinInt16), exactInt(math.MinInt16)},
		{uint16(math.MaxUint16), exactInt(math.MaxUint16)},
		{int32(math.MinInt32), exactInt(math.MinInt32)},
		{uint32(math.MaxUint32), exactInt(math.MaxUint32)},
		{int64(math.MinInt64), exactInt(math.MinInt64)},
		{int64(math.MaxInt64), exactInt(math.MaxInt64)},
		{twoTo53Plus1(), exactInt(twoTo53Plus1())}, // float64 would round it to 2^53
		{-twoTo53Plus1(), exactInt(-twoTo53Plus1())},
		{uint64(1<<53 + 1), exactInt(twoTo53Plus1())},
		{uint64(math.MaxInt64), exactInt(math.MaxInt64)},
		// Data points hold int64: above it, the nearest double.
		{uint64(math.MaxInt64) + 1, double(9223372036854775808)},
		{uint64(math.MaxUint64), double(18446744073709551615)},
		{float64(21.5), double(21.5)},
		{float32(0.1), double(float64(float32(0.1)))}, // the Float as sent, widened
		{math.Inf(-1), double(math.Inf(-1))},
		{true, double(1)},
		{false, double(0)},
	}
	for _, tt := range tests {
		got, ok := c.convert(tt.in)
		require.True(t, ok, "%T", tt.in)
		assert.Equal(t, tt.want, got, "%T %v", tt.in, tt.in)
	}
	n, ok := c.convert(math.NaN())
	require.True(t, ok)
	assert.True(t, !n.IsInt && math.IsNaN(n.Float), "NaN stays NaN")
	for _, v := range []any{"text", time.Now(), []byte("x"), nil} {
		_, ok := c.convert(v)
		assert.False(t, ok, "%T", v)
	}
}

// An integer value with an integer scale and offset (kWh → Wh × 1000) stays an exact integer as long
// as the result fits an int64; a product that does not becomes the nearest double.
func TestConversionIntegerScale(t *testing.T) {
	c := kWhToWh()
	tests := []struct {
		in   any
		want number
	}{
		{uint8(200), exactInt(200_000)},
		{int16(-5), exactInt(-5000)},
		{uint16(65535), exactInt(65_535_000)},
		{int32(math.MinInt32), exactInt(math.MinInt32 * 1000)},
		{uint32(math.MaxUint32), exactInt(math.MaxUint32 * 1000)},
		{twoTo53Plus1(), exactInt(9007199254740993000)}, // exact beyond 2^53 (a double would give …992000)
		{uint64(1<<53 + 1), exactInt(9007199254740993000)},
		{int64(math.MaxInt64 / 1000), exactInt(math.MaxInt64 / 1000 * 1000)},
		{int64(math.MaxInt64/1000 + 1), double(float64(math.MaxInt64/1000+1) * 1000)}, // overflows int64
		{int64(math.MinInt64), double(-9.223372036854775808e21)},
		{uint64(math.MaxUint64), double(1.8446744073709551615e22)},
		{float64(1.5), double(1500)},
		{float32(2.5), double(2500)},
		{true, double(1000)},
	}
	for _, tt := range tests {
		got, ok := c.convert(tt.in)
		require.True(t, ok, "%T", tt.in)
		assert.Equal(t, tt.want, got, "%T %v", tt.in, tt.in)
	}

	neg := newConversion(-1, 0)
	n, _ := neg.convert(int64(math.MinInt64))
	assert.Equal(t, double(9223372036854775808), n, "-MinInt64 does not fit an int64")
	n, _ = neg.convert(int64(math.MaxInt64))
	assert.Equal(t, exactInt(-math.MaxInt64), n)

	withOffset := newConversion(10, -3)
	n, _ = withOffset.convert(int16(-5))
	assert.Equal(t, exactInt(-53), n, "integer scale and offset")
	n, _ = newConversion(1, 1).convert(int64(math.MaxInt64))
	assert.Equal(t, double(9223372036854775808), n, "an offset that overflows gives a double")
	n, _ = newConversion(1, -1).convert(int64(math.MinInt64))
	assert.Equal(t, double(-9223372036854775808-1.0), n)
}

// Any scale or offset that is not an integer gives a double, as does a scale too large to be an
// exact int64 multiplier.
func TestConversionFractionalScale(t *testing.T) {
	n, _ := newConversion(0.1, 0).convert(int32(1234))
	assert.False(t, n.IsInt)
	assert.InDelta(t, 123.4, n.Float, 1e-12)
	n, _ = newConversion(0.01, 0).convert(uint16(95))
	assert.InDelta(t, 0.95, n.Float, 1e-15)
	n, _ = celsiusToKelvin().convert(int16(20))
	assert.Equal(t, double(293.15), n, "a fractional offset on an integer")
	n, _ = celsiusToKelvin().convert(float64(21.5))
	assert.InDelta(t, 294.65, n.Float, 1e-12)
	n, _ = newConversion(2, 0.5).convert(int8(3))
	assert.Equal(t, double(6.5), n)
	n, _ = newConversion(1e300, 0).convert(int8(2))
	assert.Equal(t, double(2e300), n, "a scale beyond 2^53 is no exact int64 multiplier")
	n, _ = newConversion(-0.001, 0).convert(float64(-1500))
	assert.Equal(t, double(1.5), n)
}

func TestVisitValueConverts(t *testing.T) {
	type pt struct {
		label string
		n     number
	}
	visit := func(v any, c conversion) []pt {
		var out []pt
		shape := visitValue(v, c, func(flat int, label string, n number) { out = append(out, pt{fmt.Sprint(flat, label), n}) })
		require.Equal(t, shapeArray, shape, "%T", v)
		return out
	}
	c := kWhToWh()
	assert.Equal(t, []pt{{"0", exactInt(9007199254740993000)}, {"1", double(1.8446744073709551615e22)}},
		visit([]uint64{1<<53 + 1, math.MaxUint64}, c))
	assert.Equal(t, []pt{{"0", exactInt(-2000)}, {"1", exactInt(3000)}}, visit([]int32{-2, 3}, c))
	assert.Equal(t, []pt{{"0", exactInt(7000)}}, visit(ua.ByteArray{7}, c))
	assert.Equal(t, []pt{{"0", double(1500)}, {"1", double(-250)}}, visit([]float64{1.5, -0.25}, c))
	assert.Equal(t, []pt{{"0", double(500)}}, visit([]float32{0.5}, c))
	assert.Equal(t, []pt{{"0", double(1000)}, {"1", double(0)}}, visit([]bool{true, false}, c))
	assert.Equal(t, []pt{{"00,0", exactInt(1000)}, {"10,1", exactInt(-2000)}, {"21,0", exactInt(3000)}, {"31,1", exactInt(4000)}},
		visit([][]int16{{1, -2}, {3, 4}}, c), "a matrix, converted element by element")
	assert.Equal(t, []pt{{"0", exactInt(math.MinInt64)}, {"1", exactInt(twoTo53Plus1())}},
		visit([]int64{math.MinInt64, 1<<53 + 1}, identityConversion), "identity keeps 64-bit array elements exact")
	assert.Equal(t, []pt{{"0", double(0.5)}}, visit([]int32{5}, newConversion(0.1, 0)))
}

// numberPoints returns the data points of a metric whose attributes include attrs, oldest first.
func (h *harness) numberPoints(name string, attrs map[string]string) []pmetric.NumberDataPoint {
	var out []pmetric.NumberDataPoint
	for _, md := range h.metrics.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					var dps pmetric.NumberDataPointSlice
					switch {
					case m.Name() != name:
						continue
					case m.Type() == pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case m.Type() == pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						continue
					}
					for l := 0; l < dps.Len(); l++ {
						dp := dps.At(l)
						have := map[string]string{}
						for ak, av := range dp.Attributes().All() {
							have[ak] = av.AsString()
						}
						if hasAttrs(have, attrs) {
							out = append(out, dp)
						}
					}
				}
			}
		}
	}
	return out
}

// newestPoint returns the newest data point of a metric whose attributes include attrs.
func (h *harness) newestPoint(name string, attrs map[string]string) (pmetric.NumberDataPoint, bool) {
	pts := h.numberPoints(name, attrs)
	if len(pts) == 0 {
		return pmetric.NumberDataPoint{}, false
	}
	return pts[len(pts)-1], true
}

// waitNumber waits until the newest point of a metric is exactly want: an integer data point of the
// same value, or a double of the same value.
func (h *harness) waitNumber(t *testing.T, name string, attrs map[string]string, want number) {
	t.Helper()
	var last atomic.Value // the condition runs in testify's goroutine
	last.Store("none")
	ok := assert.Eventually(t, func() bool {
		dp, ok := h.newestPoint(name, attrs)
		if !ok || dp.Flags().NoRecordedValue() {
			return false
		}
		switch dp.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			last.Store(fmt.Sprintf("int %d", dp.IntValue()))
			return want.IsInt && dp.IntValue() == want.Int
		case pmetric.NumberDataPointValueTypeDouble:
			last.Store(fmt.Sprintf("double %v", dp.DoubleValue()))
			return !want.IsInt && dp.DoubleValue() == want.Float
		}
		return false
	}, 15*time.Second, 20*time.Millisecond)
	if !ok {
		t.Fatalf("%s%v never became %+v (last: %s)", name, attrs, want, last.Load())
	}
}

// gridMeterConfig reads the simulator's Counter as a grid meter's import energy in kWh, scaled by the
// group to the vocabulary's Wh, Temperature as its power in kW scaled to W, and Counter once more
// without scale (the identity: the value as the server sends it).
func gridMeterConfig(endpoint string, mode Mode) *Config {
	cfg := testConfig(endpoint)
	cfg.Mode = mode
	cfg.Nodes = []NodeConfig{
		{ID: nsu + "s=Counter", Name: "counter", Kind: device.KindSum},
		{ID: nsu + "s=Temperature", Name: "temperature.kelvin", Unit: "K", Offset: device.Ptr(273.15)},
	}
	cfg.Groups = []GroupConfig{{
		Name: "grid_meter",
		NodeDefaults: NodeDefaults{
			MetricPrefix: "electrical.",
			Scale:        device.Ptr(1000.0),
			Attributes:   map[string]string{"phase": "total"},
		},
		Nodes: []NodeConfig{
			{ID: nsu + "s=Counter", Name: "energy.active", Unit: "Wh", Kind: device.KindSum, Attributes: map[string]string{"direction": "import"}},
			{ID: nsu + "s=Temperature", Name: "power.active", Unit: "W"},
		},
	}}
	return cfg
}

var importTotal = map[string]string{"direction": "import", "phase": "total"}

// testScaledNodes checks scale and offset on values the simulator serves, in kWh and kW: integers of
// every width that matters (UInt32, UInt64 and Int64 at their limits and at 2^53+1) and a Double.
func testScaledNodes(t *testing.T, mode Mode) {
	srv := startSim(t, sim.Config{})
	h := startReceiver(t, gridMeterConfig(srv.Endpoint(), mode))

	h.waitNumber(t, "electrical.energy.active", importTotal, exactInt(1_000_000)) // UInt32 1000 kWh
	h.waitNumber(t, "opcua.counter", nil, exactInt(1000))
	h.waitNumber(t, "electrical.power.active", map[string]string{"phase": "total"}, double(21500))
	h.waitNumber(t, "opcua.temperature.kelvin", nil, double(21.5+273.15))
	p, ok := h.latest("electrical.energy.active", importTotal)
	require.True(t, ok)
	assert.True(t, p.sum, "kind sum")

	srv.Set("Counter", uint64(1<<53+1))
	h.waitNumber(t, "opcua.counter", nil, exactInt(twoTo53Plus1()))
	h.waitNumber(t, "electrical.energy.active", importTotal, exactInt(9007199254740993000))

	srv.Set("Counter", int64(math.MinInt64))
	h.waitNumber(t, "opcua.counter", nil, exactInt(math.MinInt64))
	h.waitNumber(t, "electrical.energy.active", importTotal, double(-9.223372036854775808e21))

	srv.Set("Counter", uint64(math.MaxUint64))
	h.waitNumber(t, "opcua.counter", nil, double(18446744073709551615))
	h.waitNumber(t, "electrical.energy.active", importTotal, double(1.8446744073709551615e22))

	srv.Set("Temperature", -0.25)
	h.waitNumber(t, "electrical.power.active", map[string]string{"phase": "total"}, double(-250))
}

func TestScaledNodesPoll(t *testing.T) { testScaledNodes(t, ModePoll) }

func TestScaledNodesSubscription(t *testing.T) { testScaledNodes(t, ModeSubscribe) }

// A held value is repeated as it was converted: an integer stays an exact integer.
func TestScaledNodeRepeatKeepsInteger(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := gridMeterConfig(srv.Endpoint(), ModeSubscribe)
	cfg.Poll.Interval = 100 * time.Millisecond
	cfg.Poll.Timeout = 100 * time.Millisecond
	cfg.Subscription.RepeatInterval = testRepeat
	srv.Set("Counter", uint64(1<<53+1))
	h := startReceiver(t, cfg)
	h.waitNumber(t, "electrical.energy.active", importTotal, exactInt(9007199254740993000))
	require.Eventually(t, func() bool {
		return len(h.series("electrical.energy.active", importTotal)) >= 3
	}, 15*time.Second, 20*time.Millisecond, "the held value is repeated")
	for _, dp := range h.numberPoints("electrical.energy.active", importTotal) {
		require.Equal(t, pmetric.NumberDataPointValueTypeInt, dp.ValueType(), "received and repeated points are integers")
		require.Equal(t, int64(9007199254740993000), dp.IntValue())
	}
}

// The absolute deadband of a scaled node is in the scaled unit: node-opcua (which, unlike the Go
// simulator, applies deadbands) gets 2 kW for 2000 W on a node in kW. A change of 1 kW is held back, one
// of 3.5 kW is sent; the UInt32 counter in kWh arrives as an exact integer in Wh.
func TestScaledDeadbandOnServer(t *testing.T) {
	srv := startNodeServer(t)
	cfg := testConfig(srv.endpoint())
	cfg.Mode = ModeSubscribe
	cfg.Subscription.RepeatInterval = 0 // only what the server sends
	cfg.Groups = []GroupConfig{{
		Name:      "grid_meter",
		Namespace: e2eNS,
		NodeDefaults: NodeDefaults{
			MetricPrefix: "electrical.",
			Scale:        device.Ptr(1000.0),
			Attributes:   map[string]string{"phase": "total"},
		},
		Nodes: []NodeConfig{
			{ID: "s=Temperature", Name: "power.active", Unit: "W", // Double, kW
				MonitoredItemDefaults: MonitoredItemDefaults{Deadband: DeadbandConfig{Type: DeadbandAbsolute, Value: 2000}}},
			{ID: "s=Counter", Name: "energy.active", Unit: "Wh", Kind: device.KindSum, Attributes: map[string]string{"direction": "import"}},
		},
	}}
	h := startReceiver(t, cfg)
	total := map[string]string{"phase": "total"}
	h.waitNumber(t, "electrical.power.active", total, double(21500))
	h.waitNumber(t, "electrical.energy.active", importTotal, exactInt(1_000_000))

	srv.writeNode("Temperature", 22.5) // 1 kW = 1000 W, inside the 2000 W deadband
	// A change of the counter written after it: once it has arrived, so would have the power change.
	srv.writeNode("Counter", uint32(1001))
	h.waitNumber(t, "electrical.energy.active", importTotal, exactInt(1_001_000))
	srv.writeNode("Temperature", 25.0) // 3.5 kW from 21.5: beyond the deadband
	h.waitNumber(t, "electrical.power.active", total, double(25000))
	for _, dp := range h.numberPoints("electrical.power.active", total) {
		assert.NotEqual(t, 22500.0, dp.DoubleValue(), "the change inside the deadband was not sent")
	}
}

// BenchmarkConvert is the cost of turning one value into a number: identity and scaled, Double and
// UInt64 (the path every polled or notified value takes).
func BenchmarkConvert(b *testing.B) {
	for _, bc := range []struct {
		name string
		c    conversion
		v    any
	}{
		{"double/identity", identityConversion, 21.5},
		{"double/scaled", kWhToWh(), 21.5},
		{"uint64/identity", identityConversion, uint64(1<<53 + 1)},
		{"uint64/scaled", kWhToWh(), uint64(1<<53 + 1)},
		{"int32/fractional", newConversion(0.1, 0), int32(1234)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var sink number
			for b.Loop() {
				sink, _ = bc.c.convert(bc.v)
			}
			_ = sink
		})
	}
}

// A browse entry's scale and offset apply to every variable it finds.
func TestScaledBrowse(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Browse = []BrowseConfig{{
		Root:         nsu + "s=Folder.Plant",
		NameFilter:   "^Counter$",
		NodeDefaults: NodeDefaults{MetricPrefix: "meter.", Scale: device.Ptr(1000.0), Offset: device.Ptr(-5.0)},
	}}
	h := startReceiver(t, cfg)
	h.waitNumber(t, "meter.Counter", map[string]string{"opcua.browse_path": "Line1"}, exactInt(999_995))
}
