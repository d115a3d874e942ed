package device

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// sent is one reading data point of a poll (health metrics left out).
type sent struct {
	metric string
	value  float64
	ival   int64
	isInt  bool
	stale  bool
	ts     pcommon.Timestamp
}

func readingsOf(md pmetric.Metrics) []sent {
	var out []sent
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if healthName(m.Name()) {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				if m.Type() == pmetric.MetricTypeSum {
					dps = m.Sum().DataPoints()
				} else {
					dps = m.Gauge().DataPoints()
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					out = append(out, sent{metric: m.Name(), value: dp.DoubleValue(), ival: dp.IntValue(),
						isInt: dp.ValueType() == pmetric.NumberDataPointValueTypeInt,
						stale: dp.Flags().NoRecordedValue(), ts: dp.Timestamp()})
				}
			}
		}
	}
	return out
}

func healthName(n string) bool {
	switch n {
	case MetricUp, MetricPollDuration, MetricPollErrors, MetricRequests, MetricBreakerState:
		return true
	}
	return false
}

func onChange(deadband, pct float64, silence time.Duration) Report {
	return Report{Enabled: true, Deadband: deadband, DeadbandPercent: pct, MaxSilence: silence}
}

// pollOnce records one reading (stale when value is NaN and stale is asked) and returns what was sent.
func pollOnce(r *Recorder, at time.Time, rec func(p *Poll)) []sent {
	p := r.Begin(at)
	rec(p)
	md, _ := p.End(at, poll.BreakerClosed)
	return readingsOf(md)
}

func TestReportDeadbandAbsolute(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(onChange(0.5, 0, time.Hour))
	var got []float64
	for i, v := range []float64{230.0, 230.3, 230.5, 230.6, 230.2, 229.9, 230.7} {
		for _, pt := range pollOnce(r, t0.Add(time.Duration(i)*10*time.Second), func(p *Poll) { p.Record(s, time.Time{}, v) }) {
			got = append(got, pt.value)
		}
	}
	// moved by more than 0.5 from the value last sent (230.0, then 230.6): exactly 0.5 is held
	assert.Equal(t, []float64{230.0, 230.6, 229.9, 230.7}, got)
}

func TestReportDeadbandPercentWithAbsoluteFloor(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("current", "A", "", KindGauge, nil)
	s.SetReport(onChange(0.2, 1, time.Hour))
	var got []float64
	// 1 % of 100 is 1; near zero the absolute 0.2 holds back noise a bare percentage would send
	for i, v := range []float64{100, 100.9, 101.5, 0, 0.1, 0.15, 0.4, 0.3} {
		for _, pt := range pollOnce(r, t0.Add(time.Duration(i)*time.Second), func(p *Poll) { p.Record(s, time.Time{}, v) }) {
			got = append(got, pt.value)
		}
	}
	assert.Equal(t, []float64{100, 101.5, 0, 0.4}, got)
}

func TestReportZeroDeadbandSendsEveryChange(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("state", "", "", KindGauge, nil)
	s.SetReport(onChange(0, 0, time.Hour))
	var got []float64
	for i, v := range []float64{1, 1, 2, 2, 2, 1, math.NaN(), math.NaN()} {
		for _, pt := range pollOnce(r, t0.Add(time.Duration(i)*time.Second), func(p *Poll) { p.Record(s, time.Time{}, v) }) {
			got = append(got, pt.value)
		}
	}
	require.Len(t, got, 5, "%v", got)
	assert.Equal(t, []float64{1, 2, 1}, got[:3])
	assert.True(t, math.IsNaN(got[3]) && math.IsNaN(got[4]), "NaN is never equal to the value last sent")
}

func TestReportMaxSilenceKeepsSeriesFresh(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(onChange(1, 0, time.Minute))
	var at []time.Duration
	for i := 0; i < 20; i++ {
		off := time.Duration(i) * 10 * time.Second
		if len(pollOnce(r, t0.Add(off), func(p *Poll) { p.Record(s, time.Time{}, 230) })) > 0 {
			at = append(at, off)
		}
	}
	assert.Equal(t, []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute}, at)
}

func TestReportStaleIsNeverHeld(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(onChange(1, 0, time.Hour))
	require.Len(t, pollOnce(r, t0, func(p *Poll) { p.Record(s, time.Time{}, 230) }), 1)
	require.Empty(t, pollOnce(r, t0.Add(time.Second), func(p *Poll) { p.Record(s, time.Time{}, 230) }))
	got := pollOnce(r, t0.Add(2*time.Second), func(p *Poll) { p.RecordStale(s) })
	require.Len(t, got, 1)
	assert.True(t, got[0].stale)
	got = pollOnce(r, t0.Add(3*time.Second), func(p *Poll) { p.RecordStale(s) })
	require.Len(t, got, 1, "every failed reading sends its stale marker")
	got = pollOnce(r, t0.Add(4*time.Second), func(p *Poll) { p.Record(s, time.Time{}, 230) })
	require.Len(t, got, 1, "the first good reading after a stale marker is sent, unchanged or not")
	assert.False(t, got[0].stale)
	assert.Empty(t, pollOnce(r, t0.Add(5*time.Second), func(p *Poll) { p.Record(s, time.Time{}, 230.5) }))
}

func TestReportHealthIsNeverHeld(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(onChange(1, 0, time.Hour))
	for i := 0; i < 3; i++ {
		p := r.Begin(t0.Add(time.Duration(i) * time.Second))
		p.StartRequestAt("read", t0).EndAt(nil, t0)
		p.Record(s, time.Time{}, 230)
		md, _ := p.End(t0.Add(time.Duration(i)*time.Second), poll.BreakerClosed)
		_, _, ms, _ := metricsByName(t, md)
		for _, n := range []string{MetricUp, MetricPollDuration, MetricRequests, MetricBreakerState} {
			assert.Contains(t, ms, n, "poll %d", i)
		}
		_, has := ms["voltage"]
		assert.Equal(t, i == 0, has, "poll %d", i)
	}
}

func TestReportSumNeverGoesBackwards(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("energy", "kWh", "", KindSum, nil)
	s.SetReport(onChange(0.5, 0, time.Hour))
	var got []float64
	for i, v := range []float64{100, 100.2, 100.4, 100.6, 100.6, 100.9, 101.2, 0.1, 0.2} {
		p := r.Begin(t0.Add(time.Duration(i) * time.Second))
		p.Record(s, time.Time{}, v)
		md, _ := p.End(t0.Add(time.Duration(i)*time.Second), poll.BreakerClosed)
		_, _, ms, _ := metricsByName(t, md)
		if m, ok := ms["energy"]; ok {
			require.True(t, m.Sum().IsMonotonic())
			require.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality())
			dp := m.Sum().DataPoints().At(0)
			require.Equal(t, pcommon.NewTimestampFromTime(t0), dp.StartTimestamp(), "one start time for the whole series")
			got = append(got, dp.DoubleValue())
		}
	}
	// a reset (0.1 after 101.2) is sent at once, whatever the deadband
	assert.Equal(t, []float64{100, 100.6, 101.2, 0.1}, got)
	for i := 1; i < 3; i++ {
		assert.Greater(t, got[i], got[i-1])
	}
}

func TestReportExactIntegers(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("energy", "Wh", "", KindSum, nil)
	s.SetReport(onChange(0, 0, time.Hour))
	big := int64(1) << 53
	var got []int64
	for i, v := range []int64{big, big, big + 1, big + 1, math.MaxInt64 - 1, math.MaxInt64} {
		for _, pt := range pollOnce(r, t0.Add(time.Duration(i)*time.Second), func(p *Poll) { p.RecordInt(s, time.Time{}, v) }) {
			require.True(t, pt.isInt)
			got = append(got, pt.ival)
		}
	}
	// 2^53+1 is one above 2^53: a float64 comparison would have held it
	assert.Equal(t, []int64{big, big + 1, math.MaxInt64 - 1, math.MaxInt64}, got)

	g := r.Series("offset", "", "", KindGauge, nil)
	g.SetReport(onChange(10, 0, time.Hour))
	var gi []int64
	// the difference of the int64 extremes overflows int64; it is taken in uint64
	for i, v := range []int64{math.MinInt64, math.MaxInt64, math.MaxInt64 - 5} {
		for _, pt := range pollOnce(r, t0.Add(time.Duration(i)*time.Second), func(p *Poll) { p.RecordInt(g, time.Time{}, v) }) {
			gi = append(gi, pt.ival)
		}
	}
	assert.Equal(t, []int64{math.MinInt64, math.MaxInt64}, gi)
}

func TestReportOwnTimestampIsANewReading(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("demand", "kW", "", KindGauge, nil)
	s.SetReport(onChange(1, 0, time.Hour))
	rec1 := t0.Add(-time.Hour)
	assert.Len(t, pollOnce(r, t0, func(p *Poll) { p.Record(s, rec1, 5) }), 1)
	assert.Empty(t, pollOnce(r, t0.Add(time.Second), func(p *Poll) { p.Record(s, rec1, 5) }))
	got := pollOnce(r, t0.Add(2*time.Second), func(p *Poll) { p.Record(s, t0, 5) })
	require.Len(t, got, 1, "a record with a new time is a new reading, whatever its value")
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), got[0].ts)
}

func TestReportResourceChangeSendsEverySeries(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(onChange(1, 0, time.Hour))
	require.Len(t, pollOnce(r, t0, func(p *Poll) { p.Record(s, time.Time{}, 230) }), 1)
	r.SetResourceAttribute("firmware", "2.0")
	got := pollOnce(r, t0.Add(time.Second), func(p *Poll) { p.Record(s, time.Time{}, 230) })
	// the series starts under the new resource, and ends (stale marker) under the old one
	require.Len(t, got, 2)
	assert.False(t, got[0].stale)
	assert.True(t, got[1].stale)
	assert.Empty(t, pollOnce(r, t0.Add(2*time.Second), func(p *Poll) { p.Record(s, time.Time{}, 230) }))
}

func TestReportHeldReadingsOnTheSpan(t *testing.T) {
	r := newTestRecorder(1)
	a := r.Series("a", "", "", KindGauge, nil)
	b := r.Series("b", "", "", KindGauge, nil)
	a.SetReport(onChange(0, 0, time.Hour))
	b.SetReport(onChange(0, 0, time.Hour))
	for i := 0; i < 2; i++ {
		p := r.Begin(t0.Add(time.Duration(i) * time.Second))
		p.Record(a, time.Time{}, 1)
		p.Record(b, time.Time{}, float64(i))
		_, td := p.End(t0.Add(time.Duration(i)*time.Second), poll.BreakerClosed)
		root := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		v, ok := root.Attributes().Get(AttrHeldReadings)
		if i == 0 {
			assert.False(t, ok)
			continue
		}
		require.True(t, ok)
		assert.Equal(t, int64(1), v.Int())
	}
}

func TestReportDisabledSendsEveryPoll(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(Report{Deadband: 100, MaxSilence: time.Hour}) // not enabled
	for i := 0; i < 3; i++ {
		assert.Len(t, pollOnce(r, t0.Add(time.Duration(i)*time.Second), func(p *Poll) { p.Record(s, time.Time{}, 1) }), 1)
	}
}

func TestResolveReportLayers(t *testing.T) {
	interval := 10 * time.Second
	assert.Equal(t, Report{MaxSilence: 280 * time.Second}, ResolveReport(interval))
	assert.Equal(t, 3*time.Minute, DefaultMaxSilence(time.Minute))
	assert.Equal(t, 5*time.Minute, DefaultMaxSilence(5*time.Minute), "at least one interval")
	receiver := ReportConfig{Enabled: Ptr(true), Deadband: Ptr(1.0)}
	profile := ReportConfig{DeadbandPercent: Ptr(2.0), MaxSilence: Ptr(time.Minute)}
	dev := ReportConfig{Deadband: Ptr(0.0)}
	field := ReportConfig{Enabled: Ptr(false)}
	assert.Equal(t, Report{Enabled: true, Deadband: 0, DeadbandPercent: 2, MaxSilence: time.Minute},
		ResolveReport(interval, receiver, profile, dev), "a level that sets 0 means 0")
	assert.Equal(t, Report{Enabled: false, Deadband: 0, DeadbandPercent: 2, MaxSilence: time.Minute},
		ResolveReport(interval, receiver, profile, dev, field))
}

func TestReportConfigValidate(t *testing.T) {
	require.NoError(t, ReportConfig{}.Validate("report."))
	require.NoError(t, ReportConfig{Enabled: Ptr(true), Deadband: Ptr(0.0), DeadbandPercent: Ptr(100.0), MaxSilence: Ptr(time.Second)}.Validate("report."))
	err := ReportConfig{Deadband: Ptr(-1.0), DeadbandPercent: Ptr(math.NaN()), MaxSilence: Ptr(time.Duration(0))}.Validate(`fields[1] "v": report.`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `fields[1] "v": report.deadband: must be a number >= 0`)
	assert.Contains(t, err.Error(), `fields[1] "v": report.deadband_percent: must be between 0 and 100, got NaN`)
	assert.Contains(t, err.Error(), `fields[1] "v": report.max_silence: must be > 0`)
	assert.Error(t, ReportConfig{Deadband: Ptr(math.Inf(1))}.Validate(""))
	assert.Error(t, ReportConfig{DeadbandPercent: Ptr(101.0)}.Validate(""))
}

// steadyMeterHour polls a steady three-phase meter (3 voltages, 3 currents, power, frequency and an
// energy counter that creeps) every 10 s for an hour, and returns the reading points sent and the
// bytes of the OTLP metrics (health included).
func steadyMeterHour(enabled bool, health HealthMetrics) (points map[string]int, bytes int) {
	r := NewRecorder(testIdentity(), RecorderSettings{Scope: Scope{Name: "otelcol-iiot/modbus", Version: "1.2.3"}, Health: health, Start: t0})
	points = map[string]int{}
	var series []*Series
	for _, ph := range []string{"L1", "L2", "L3"} {
		series = append(series, r.Series("voltage", "V", "", KindGauge, map[string]string{"phase": ph}))
	}
	for _, ph := range []string{"L1", "L2", "L3"} {
		series = append(series, r.Series("current", "A", "", KindGauge, map[string]string{"phase": ph}))
	}
	series = append(series, r.Series("power", "W", "", KindGauge, nil), r.Series("frequency", "Hz", "", KindGauge, nil))
	energy := r.Series("energy", "kWh", "", KindSum, nil)
	// deadbands above the noise, and 0.1 kWh for the energy
	silence := DefaultMaxSilence(10 * time.Second)
	for i, db := range []float64{0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 50, 0.05, 0.1} {
		s := append(series, energy)[i]
		s.SetReport(Report{Enabled: enabled, Deadband: db, MaxSilence: silence})
	}
	var m pmetric.ProtoMarshaler
	const interval = 10 * time.Second
	for at := time.Duration(0); at < time.Hour; at += interval {
		now := t0.Add(at)
		p := r.Begin(now)
		p.StartRequestAt("read", now).EndAt(nil, now)
		// noise well inside the deadband: ±0.1 V, ±0.01 A, ±5 W, ±0.01 Hz
		n := float64(int(at/interval)%3 - 1)
		for i, base := range []float64{230, 231, 229, 10, 10, 10, 6900, 50} {
			p.Record(series[i], time.Time{}, base+n*[]float64{0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 5, 0.01}[i])
		}
		// 6.9 kW: 0.01917 kWh per 10 s, on a register of 0.01 kWh resolution
		p.Record(energy, time.Time{}, math.Floor((1000+6.9*at.Hours())*100)/100)
		md, _ := p.End(now, poll.BreakerClosed)
		for _, pt := range readingsOf(md) {
			points[pt.metric]++
			points[""]++
		}
		bytes += m.MetricsSize(md)
	}
	return points, bytes
}

// TestReportSteadyMeterPointsPerHour is the figure of the README: points sent per hour for a steady
// meter polled every 10 s, before and after report by exception.
func TestReportSteadyMeterPointsPerHour(t *testing.T) {
	before, beforeBytes := steadyMeterHour(false, AllHealthMetrics())
	after, afterBytes := steadyMeterHour(true, AllHealthMetrics())
	_, beforeBare := steadyMeterHour(false, HealthMetrics{})
	_, afterBare := steadyMeterHour(true, HealthMetrics{})
	t.Logf("readings per hour: %d before, %d after", before[""], after[""])
	t.Logf("OTLP bytes per hour, health metrics included: %d before, %d after (%.0f%% saved)",
		beforeBytes, afterBytes, 100*(1-float64(afterBytes)/float64(beforeBytes)))
	t.Logf("OTLP bytes per hour, health metrics off: %d before, %d after (%.0f%% saved)",
		beforeBare, afterBare, 100*(1-float64(afterBare)/float64(beforeBare)))
	assert.Equal(t, 9*360, before[""])
	// each gauge: at 0 and every 280 s (the default max_silence at 10 s), 13 an hour
	for _, m := range []string{"voltage", "current", "power", "frequency"} {
		n := 13
		if m == "voltage" || m == "current" {
			n = 3 * 13
		}
		assert.Equal(t, n, after[m], m)
	}
	// the energy (6.9 kWh an hour): each time it moved by more than 0.1 kWh, about once a minute
	assert.GreaterOrEqual(t, after["energy"], 60)
	assert.LessOrEqual(t, after["energy"], 69)
	// what is left is mostly the resource and scope every poll carries, points or not
	assert.Less(t, afterBare, beforeBare/2)
	// the health metrics (5 a poll) are always sent: they are most of what is left
	assert.Less(t, afterBytes, beforeBytes*3/4)
}

// A poll that wakes a little after its tick does not put the max_silence send off by one poll.
func TestReportMaxSilenceToleratesWakeUpDelay(t *testing.T) {
	r := newTestRecorder(0)
	s := r.Series("voltage", "V", "", KindGauge, nil)
	s.SetReport(onChange(1, 0, 5*time.Second))
	var sent []int
	for i := 0; i < 12; i++ {
		late := time.Duration(0)
		if i == 0 {
			late = 3 * time.Millisecond // the first poll wakes late, the ones after it on time
		}
		at := t0.Add(time.Duration(i)*time.Second + late)
		if len(pollOnce(r, at, func(p *Poll) { p.Record(s, time.Time{}, 230) })) > 0 {
			sent = append(sent, i)
		}
	}
	assert.Equal(t, []int{0, 5, 10}, sent)
}
