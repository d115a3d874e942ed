package dlt645receiver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/faultproxy"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// stampedPoint is a reading with its timestamp.
type stampedPoint struct {
	ts    time.Time
	value float64
	stale bool
}

// pointsOf lists the points of a metric whose attributes are attrs, exactly, by "metric{k=v,...}".
func pointsOf(md pmetric.Metrics) map[string][]stampedPoint {
	out, _ := pointsAndInts(md)
	return out
}

// pointsAndInts is pointsOf and the series whose points are integers.
func pointsAndInts(md pmetric.Metrics) (map[string][]stampedPoint, map[string]bool) {
	out := map[string][]stampedPoint{}
	ints := map[string]bool{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					var attrs []dlt645.Attribute
					dp.Attributes().Range(func(k string, v pcommon.Value) bool {
						attrs = append(attrs, dlt645.Attribute{Key: k, Value: v.AsString()})
						return true
					})
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
						ints[m.Name()+"{"+attrString(attrs)+"}"] = true
					}
					key := m.Name() + "{" + attrString(attrs) + "}"
					out[key] = append(out[key], stampedPoint{ts: dp.Timestamp().AsTime().UTC(), value: v, stale: dp.Flags().NoRecordedValue()})
				}
			}
		}
	}
	return out, ints
}

// Records reach the pipeline with their own time: maximum demand at when it occurred (a block of
// total and tariffs; a period without a maximum sends nothing), settlement-day energies at their
// settlement times, a daily freeze's energies with their tariffs at the freeze time, harmonics by
// order, event counts and the last power-down as Unix seconds and seconds, and a record format
// declared in the config. A second poll sends no record again; after the next settlement day and
// freeze, only the new records are sent.
func TestRecordsWithTheirOwnTime(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	m := meter(t, "000000000001", dlt645.V2007, map[dlt645.DI]float64{
		0x00010000: 1000, 0x00010100: 400, 0x00010200: 600,
		0x00010001: 900, 0x00010002: 800,
		0x020A0101: 99.5, 0x020A0102: 3.25, 0x020A0103: 0.07,
		0x03110000: 7,
	})
	m.SetClock(0, loc)
	at := func(mo time.Month, d, h, mi, s int) time.Time { return time.Date(2024, mo, d, h, mi, s, 0, loc).UTC() }
	require.NoError(t, m.SetRecord(0x01010000, []float64{12.3456}, []time.Time{at(3, 5, 14, 30, 0)}))
	require.NoError(t, m.SetRecord(0x01010100, []float64{10}, []time.Time{at(3, 4, 9, 15, 0)}))
	require.NoError(t, m.SetRecord(0x01010200, []float64{12.3456}, []time.Time{at(3, 5, 14, 30, 0)}))
	require.NoError(t, m.SetRecord(0x01020000, []float64{0}, nil)) // no reverse maximum in this period
	require.NoError(t, m.SetRecord(0x03110001, nil, []time.Time{at(3, 4, 8, 0, 0), at(3, 4, 8, 1, 30)}))
	m.SetRaw(0x03030000, []byte{0x03, 0, 0, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0x05, 0, 0})
	m.SetRaw(0x04A00101, []byte{0x00, 0x50, 0x02, 0x45, 0x13, 0x02, 0x03, 0x24}) // 2.5 kW at 2024-03-02 13:45
	m.SetSettlementDays(dlt645.SettlementDay{Day: 1})
	require.NoError(t, m.Freeze(0x06, at(3, 5, 0, 0, 0)))
	_, addr := startSim(t, sim.Options{}, m)

	cfg := loadYAML(t, `
time_zone: Asia/Shanghai
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - id: rec
        address: "1"
        identifiers:
          - "0101FF00"
          - "01020000"
          - "00010001"
          - "00010002"
          - "05060101"
          - "020A01FF"
          - "03110000"
          - "03110001"
          - "03030000"
          - {di: "04A00101", format: "XX.XXXX,YYMMDDhhmm", metric: acme.peak, unit: kW}
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	clk := clock.NewManual(at(3, 5, 14, 35, 0))
	ms := &buses[0].meters[0]
	rec := device.NewRecorder(ms.identity, device.RecorderSettings{
		Scope: device.Scope{Name: metadata.ScopeName, Version: "test"}, Start: clk.Now(),
	})
	mp := newMeterPoller(ms, b, rec, clk, zap.NewNop())
	var ints map[string]bool
	pollOnce := func() (map[string][]stampedPoint, error) {
		p := rec.Begin(clk.Now())
		mp.Poll(context.Background(), p)
		err := p.Err()
		md, _ := p.End(clk.Now(), poll.BreakerClosed)
		var pts map[string][]stampedPoint
		pts, ints = pointsAndInts(md)
		return pts, err
	}
	pollTime := clk.Now().UTC()
	pts, err := pollOnce()
	require.NoError(t, err)
	one := func(ts time.Time, v float64) []stampedPoint { return []stampedPoint{{ts: ts, value: v}} }
	want := map[string][]stampedPoint{
		"electrical.demand.max.active{direction=import,phase=total,tariff=total}":                 one(at(3, 5, 14, 30, 0), 12345.6),
		"electrical.demand.max.active{direction=import,phase=total,tariff=1}":                     one(at(3, 4, 9, 15, 0), 10000),
		"electrical.demand.max.active{direction=import,phase=total,tariff=2}":                     one(at(3, 5, 14, 30, 0), 12345.6),
		"electrical.energy.active.settled{direction=import,phase=total,tariff=total}":             {{ts: at(3, 1, 0, 0, 0), value: 900000}, {ts: at(2, 1, 0, 0, 0), value: 800000}},
		"electrical.energy.active.frozen{direction=import,freeze=daily,phase=total,tariff=total}": one(at(3, 5, 0, 0, 0), 1000000),
		"electrical.energy.active.frozen{direction=import,freeze=daily,phase=total,tariff=1}":     one(at(3, 5, 0, 0, 0), 400000),
		"electrical.energy.active.frozen{direction=import,freeze=daily,phase=total,tariff=2}":     one(at(3, 5, 0, 0, 0), 600000),
		"electrical.voltage.harmonic{order=1,phase=A}":                                            one(pollTime, 99.5),
		"electrical.voltage.harmonic{order=2,phase=A}":                                            one(pollTime, 3.25),
		"electrical.voltage.harmonic{order=3,phase=A}":                                            one(pollTime, 0.07),
		"dlt645.event.count{event=power_down}":                                                    one(pollTime, 7),
		"dlt645.event.last.time{event=power_down}":                                                one(pollTime, float64(at(3, 4, 8, 0, 0).Unix())),
		"dlt645.event.last.duration{event=power_down}":                                            one(pollTime, 90),
		"dlt645.event.count{event=over_voltage,phase=A}":                                          one(pollTime, 3),
		"dlt645.event.duration{event=over_voltage,phase=A}":                                       one(pollTime, 120),
		"dlt645.event.count{event=over_voltage,phase=B}":                                          one(pollTime, 0),
		"dlt645.event.duration{event=over_voltage,phase=B}":                                       one(pollTime, 0),
		"dlt645.event.count{event=over_voltage,phase=C}":                                          one(pollTime, 1),
		"dlt645.event.duration{event=over_voltage,phase=C}":                                       one(pollTime, 5),
		"acme.peak{}": one(at(3, 2, 13, 45, 0), 2.5),
	}
	assert.Equal(t, want, pts)
	assert.Equal(t, map[string]bool{
		"dlt645.event.count{event=power_down}": true, "dlt645.event.count{event=over_voltage,phase=A}": true,
		"dlt645.event.duration{event=over_voltage,phase=A}": true, "dlt645.event.count{event=over_voltage,phase=B}": true,
		"dlt645.event.duration{event=over_voltage,phase=B}": true, "dlt645.event.count{event=over_voltage,phase=C}": true,
		"dlt645.event.duration{event=over_voltage,phase=C}": true,
	}, ints, "counts are integer data points")
	assert.Equal(t, 2, m.Reads(0x05060001), "the freeze time is read before and after the freeze's values")
	assert.Equal(t, 1, m.Reads(dlt645.DISettlementDay1))

	// Nothing new: no record again, only the live readings.
	clk.Advance(time.Minute)
	pts, err = pollOnce()
	require.NoError(t, err)
	var keys []string
	for k, ps := range pts {
		if !ps[0].ts.Equal(clk.Now()) {
			keys = append(keys, fmt.Sprintf("%s %v", k, ps))
		}
	}
	assert.Empty(t, keys, "records already sent")
	assert.Len(t, pts, 12, "harmonics and events")
	assert.Equal(t, 1, m.Reads(dlt645.DISettlementDay1), "settlement days are kept")

	// Near the next settlement moment (a meter clock a little behind ours has not settled yet),
	// settled values wait.
	clk.Advance(at(4, 1, 0, 0, 0).Sub(clk.Now()) + 2*time.Minute) // 2024-04-01 00:02
	require.NoError(t, m.Set(0x00010000, 1500))
	pts, err = pollOnce()
	require.NoError(t, err)
	assert.Empty(t, pts["electrical.energy.active.settled{direction=import,phase=total,tariff=total}"], "within 5 minutes of a settlement")

	// The next settlement day and a freeze: the meter moves its values; only the new ones are sent.
	m.Settle()
	require.NoError(t, m.Freeze(0x06, at(4, 1, 0, 0, 0)))
	clk.Advance(14*time.Hour + 34*time.Minute) // 2024-04-01 14:36
	pts, err = pollOnce()
	require.NoError(t, err)
	assert.Equal(t, []stampedPoint{{ts: at(4, 1, 0, 0, 0), value: 1500000}, {ts: at(3, 1, 0, 0, 0), value: 900000}},
		pts["electrical.energy.active.settled{direction=import,phase=total,tariff=total}"])
	assert.Equal(t, one(at(4, 1, 0, 0, 0), 1500000), pts["electrical.energy.active.frozen{direction=import,freeze=daily,phase=total,tariff=total}"])
	assert.Empty(t, pts["electrical.demand.max.active{direction=import,phase=total,tariff=total}"], "the new period has no maximum yet")
}

// Several values with one time: a daily freeze's active and reactive power, total and phases, all
// stamped with the freeze time; the freeze before it adds points to the same series.
func TestRecordsFrozenPower(t *testing.T) {
	m := meter(t, "000000000001", dlt645.V2007, map[dlt645.DI]float64{
		0x02030000: 3.5, 0x02030100: 1.5, 0x02030200: 1, 0x02030300: 1,
		0x02040000: -0.75, 0x02040100: -0.25, 0x02040200: -0.25, 0x02040300: -0.25,
	})
	m.SetClock(0, time.UTC)
	day := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	require.NoError(t, m.Freeze(0x06, day))
	require.NoError(t, m.Set(0x02030000, 4))
	require.NoError(t, m.Freeze(0x06, day.AddDate(0, 0, 1)))
	_, addr := startSim(t, sim.Options{}, m)
	cfg := loadYAML(t, `
time_zone: UTC
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: f, address: "1", identifiers: ["05061001", "05061002"]}
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	rec := device.NewRecorder(buses[0].meters[0].identity, device.RecorderSettings{Start: time.Now()})
	mp := newMeterPoller(&buses[0].meters[0], b, rec, clock.Real{}, zap.NewNop())
	p := rec.Begin(time.Now())
	mp.Poll(context.Background(), p)
	require.NoError(t, p.Err())
	md, _ := p.End(time.Now(), poll.BreakerClosed)
	pts := pointsOf(md)
	d1, d2 := day.AddDate(0, 0, 1), day
	assert.Equal(t, []stampedPoint{{ts: d1, value: 4000}, {ts: d2, value: 3500}}, pts["electrical.power.active.frozen{freeze=daily,phase=total}"])
	assert.Equal(t, []stampedPoint{{ts: d1, value: 1500}, {ts: d2, value: 1500}}, pts["electrical.power.active.frozen{freeze=daily,phase=A}"])
	assert.Equal(t, []stampedPoint{{ts: d1, value: -750}, {ts: d2, value: -750}}, pts["electrical.power.reactive.frozen{freeze=daily,phase=total}"])
	assert.Len(t, pts, 8)
}

// Records of a meter that does not answer are not marked stale (they are history); a freeze whose
// time the meter does not have sends nothing and counts the error word.
func TestRecordsStaleAndErrors(t *testing.T) {
	m := meter(t, "000000000001", dlt645.V2007, map[dlt645.DI]float64{0x00010001: 900, 0x02010100: 220})
	require.NoError(t, m.SetRepeat(0x05060101, 1000, 400))
	m.SetSettlementDays(dlt645.SettlementDay{Day: 1})
	_, addr := startSim(t, sim.Options{}, m)
	cfg := loadYAML(t, `
poll: {timeout: 200ms, retries: 0}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - id: rec
        address: "1"
        identifiers: ["00010001", "05060101", "02010100"]
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	rec := device.NewRecorder(buses[0].meters[0].identity, device.RecorderSettings{Start: time.Now()})
	mp := newMeterPoller(&buses[0].meters[0], b, rec, clock.Real{}, zap.NewNop())

	p := rec.Begin(time.Now())
	mp.Poll(context.Background(), p)
	require.Error(t, p.Err(), "05060001 is missing: the freeze has no time")
	md, _ := p.End(time.Now(), poll.BreakerClosed)
	pts := pointsOf(md)
	assert.Len(t, pts["electrical.energy.active.settled{direction=import,phase=total,tariff=total}"], 1)
	assert.Empty(t, pts["electrical.energy.active.frozen{direction=import,freeze=daily,phase=total,tariff=total}"])
	assert.Len(t, pts["electrical.voltage{phase=A}"], 1)

	m.SetOff(true)
	p = rec.Begin(time.Now())
	mp.Poll(context.Background(), p)
	require.Error(t, p.Err())
	md, _ = p.End(time.Now(), poll.BreakerClosed)
	pts = pointsOf(md)
	assert.Empty(t, pts["electrical.energy.active.settled{direction=import,phase=total,tariff=total}"], "history is not marked stale")
	require.Len(t, pts["electrical.voltage{phase=A}"], 1)
	assert.True(t, pts["electrical.voltage{phase=A}"][0].stale)
}

func TestRecordIdentifierErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Buses = []BusConfig{{Endpoint: "tcp://127.0.0.1:1", Meters: []MeterConfig{{ID: "m", Address: "1", MeterKeys: MeterKeys{Identifiers: []IdentifierConfig{
		{DI: "05060001"},
		{DI: "06000001"},
		{DI: "03110001", Metric: "x.y"},
		{DI: "04A00101", Format: "YYMMDDhhmm,hhmmss", Metric: "x.z"},
		{DI: "0101FF00"},
		{DI: "01010100"},
		{DI: "00010001"},
		{DI: "00010002"},
	}}}}}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"05060001: a freeze time stamps the values of its freeze: list those (e.g. 05060101)",
		"06000001: load-profile records are not read as identifiers",
		"03110001: a record of 2 readings takes no metric",
		`04A00101: format: record "YYMMDDhhmm,hhmmss" has no number field`,
		"01010100: metric electrical.demand.max.active{direction=import,phase=total,tariff=1} is already read by 0101FF00",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "00010002", "settlement days 1 and 2 are points of one series")
}

// The demo meters of the simulator, from its YAML (records, settlement days), through the receiver
// as the collector runs it: the demand arrives once at the time it occurred, the settled energies at
// their settlement times, the last power-down as Unix seconds.
func TestRecordsFromDemoSimulator(t *testing.T) {
	scfg, err := sim.ParseConfig([]byte(sim.DemoConfig))
	require.NoError(t, err)
	meters, _, err := scfg.BuildMeters()
	require.NoError(t, err)
	_, addr := startSim(t, sim.Options{}, meters[0])
	cfg := loadYAML(t, `
poll: {interval: 200ms, timeout: 200ms}
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - {id: demo-meter-1, address: "000000000001", identifiers: ["01010000", "00010001", "00010002", "03110000", "03110001"]}
`)
	s := startReceiver(t, cfg)
	all := func() map[string][]stampedPoint {
		out := map[string][]stampedPoint{}
		for _, md := range s.metrics.AllMetrics() {
			for k, v := range pointsOf(md) {
				out[k] = append(out[k], v...)
			}
		}
		return out
	}
	require.Eventually(t, func() bool {
		return len(all()["dlt645.event.count{event=power_down}"]) >= 3
	}, 10*time.Second, 20*time.Millisecond)
	pts := all()
	assert.Equal(t, []stampedPoint{{ts: time.Date(2026, 1, 15, 10, 45, 0, 0, time.UTC), value: 7532.1}},
		pts["electrical.demand.max.active{direction=import,phase=total,tariff=total}"], "sent once, at when it occurred")
	now := time.Now()
	last1, _ := dlt645.LastSettlement([]dlt645.SettlementDay{{Day: 1}}, 1, now)
	last2, _ := dlt645.LastSettlement([]dlt645.SettlementDay{{Day: 1}}, 2, now)
	assert.Equal(t, []stampedPoint{{ts: last1.UTC(), value: 12000500}, {ts: last2.UTC(), value: 11000250}},
		pts["electrical.energy.active.settled{direction=import,phase=total,tariff=total}"])
	lt := pts["dlt645.event.last.time{event=power_down}"]
	require.NotEmpty(t, lt)
	assert.Equal(t, float64(time.Date(2026, 1, 10, 3, 12, 0, 0, time.FixedZone("", 8*3600)).Unix()), lt[0].value)
	assert.Equal(t, 150.0, pts["dlt645.event.last.duration{event=power_down}"][0].value)
}

// A freeze between the read of a freeze's values and the read of its time would stamp the older
// freeze's values with the newer time. The time is read before and after the values: when it moved,
// the values wait for the next poll, which reads the new freeze with its own time.
func TestRecordsFreezeBetweenReads(t *testing.T) {
	m := meter(t, "000000000001", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 1000})
	m.SetClock(0, time.UTC)
	day := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	require.NoError(t, m.Freeze(0x06, day))
	require.NoError(t, m.Set(0x00010000, 1100))
	_, addr := startSim(t, sim.Options{}, m)
	px, err := faultproxy.New(addr, faultproxy.WithFramer(faultproxy.DLT645Frames))
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	var froze atomic.Bool
	px.SetPolicy(func() faultproxy.Fault {
		// as the values' reply passes: the meter freezes before the receiver asks for the time again
		if m.Reads(0x05060101) == 1 && froze.CompareAndSwap(false, true) {
			assert.NoError(t, m.Freeze(0x06, day.AddDate(0, 0, 1)))
		}
		return faultproxy.Fault{}
	})
	cfg := loadYAML(t, `
time_zone: UTC
buses:
  - endpoint: tcp://`+px.Addr()+`
    meters:
      - {id: f, address: "1", identifiers: ["05060101"]}
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	rec := device.NewRecorder(buses[0].meters[0].identity, device.RecorderSettings{Start: time.Now()})
	mp := newMeterPoller(&buses[0].meters[0], b, rec, clock.Real{}, zap.NewNop())
	series := "electrical.energy.active.frozen{direction=import,freeze=daily,phase=total,tariff=total}"
	pollOnce := func() map[string][]stampedPoint {
		p := rec.Begin(time.Now())
		mp.Poll(context.Background(), p)
		require.NoError(t, p.Err())
		md, _ := p.End(time.Now(), poll.BreakerClosed)
		return pointsOf(md)
	}
	assert.Empty(t, pollOnce()[series], "the values of 03-05 are not sent as 03-06's")
	assert.True(t, froze.Load())
	assert.Equal(t, 2, m.Reads(0x05060001), "the time before and after the values")
	assert.Equal(t, []stampedPoint{{ts: day.AddDate(0, 0, 1), value: 1100000}}, pollOnce()[series])
}
