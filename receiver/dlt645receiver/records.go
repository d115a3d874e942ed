package dlt645receiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Records carry their own time: maximum demand is stamped with when it occurred, a settlement-day
// value with that settlement time, a freeze's values with the freeze time. Such a point is sent once,
// and again only when the meter has a new record; it is never marked stale (it is history).

// recordDescriptions describe the metrics of records.
var recordDescriptions = map[string]string{
	dlt645.MetricMaxDemandActive:   "Maximum active demand of a billing period, at the time it occurred.",
	dlt645.MetricMaxDemandReactive: "Maximum reactive demand of a billing period, at the time it occurred.",
	dlt645.MetricMaxDemandApparent: "Maximum apparent demand of a billing period, at the time it occurred.",
	dlt645.MetricHarmonicVoltage:   "Harmonic content of the phase voltage by order, in percent of the fundamental.",
	dlt645.MetricHarmonicCurrent:   "Harmonic content of the phase current by order, in percent of the fundamental.",
	dlt645.MetricEventCount:        "Events recorded by the meter (power-down, over-voltage, cover opening, programming).",
	dlt645.MetricEventDuration:     "Accumulated duration of an event by phase.",
	dlt645.MetricEventLastTime:     "When the last event of a kind began, as Unix seconds.",
	dlt645.MetricEventLastDuration: "How long the last event of a kind lasted.",
}

// describe is the description of a metric of the catalogue, a settled or frozen value included.
func describe(metric string) string {
	if d, ok := descriptions[metric]; ok {
		return d
	}
	if d, ok := recordDescriptions[metric]; ok {
		return d
	}
	if base, ok := strings.CutSuffix(metric, dlt645.SuffixSettled); ok && describe(base) != "" {
		return describe(base) + " At a settlement day, stamped with its settlement time."
	}
	if base, ok := strings.CutSuffix(metric, dlt645.SuffixFrozen); ok && describe(base) != "" {
		return describe(base) + " In a freeze (attribute freeze), stamped with the freeze time."
	}
	return ""
}

// settlementDaysTTL is how long the meter's settlement days are kept before they are read again.
const settlementDaysTTL = 24 * time.Hour

// stampResult is the time of a record, or why it has none.
type stampResult struct {
	at    time.Time
	empty bool // the meter has no such record (yet): no point
	err   error
}

// recordPart records part i of a read from the decoded fields of its member.
func (m *meterPoller) recordPart(ctx context.Context, p *device.Poll, rs *readState, i int, fields []dlt645.Field) error {
	part := rs.spec.parts[i]
	st := m.stamp(ctx, p, part.entry, fields)
	if st.err != nil {
		rs.markStale(p, i)
		return st.err
	}
	if st.empty {
		return nil
	}
	v, ok, err := outputValue(part.out, fields, m.spec.location)
	if err != nil {
		rs.markStale(p, i)
		return device.NewError(device.ErrDecode, fmt.Errorf("%s: %w", part.out.Name, err))
	}
	if !ok {
		return nil // an event that has not happened yet
	}
	if part.out.Value == dlt645.OutNumber && part.out.Exp != 0 {
		v = dlt645.Rescale(v, numberField(part).Decimals, part.out.Exp)
	}
	v *= part.scale
	if st.at.IsZero() {
		if isCount(part) {
			// BCD holds at most 14 digits (< 2^53): the float64 is exact, the point an integer
			p.RecordInt(rs.series[i], time.Time{}, int64(v))
			return nil
		}
		p.Record(rs.series[i], time.Time{}, v)
		return nil
	}
	if st.at.Equal(rs.lastStamp[i]) && v == rs.lastValue[i] {
		return nil // sent already
	}
	rs.lastStamp[i], rs.lastValue[i] = st.at, v
	p.Record(rs.series[i], st.at, v)
	return nil
}

// isCount reports a counter of whole numbers (event counts, accumulated minutes, energies in Wh): a
// monotonic sum of a number field that has no decimals once rescaled (XXXXXX.XX kWh is a whole number
// of Wh), without a scale. It becomes an integer data point.
func isCount(part partSpec) bool {
	o := part.out
	if o.Kind != dlt645.Sum || o.Value != dlt645.OutNumber || part.scale != 1 {
		return false
	}
	return dlt645.WholeAfter(numberField(part), o.Exp)
}

// numberField is the format of the field a reading takes its number from.
func numberField(part partSpec) dlt645.Format {
	f := part.entry.Format
	if f.Kind == dlt645.Record {
		if o := part.out; o.Field >= 0 && o.Field < len(f.Fields) {
			return f.Fields[o.Field]
		}
		return dlt645.Format{Kind: dlt645.Opaque}
	}
	return f
}

// outputValue is the value of reading o: a number, a time as Unix seconds, or the seconds between
// two times; false when a time is empty (no such event yet).
func outputValue(o dlt645.Output, fields []dlt645.Field, loc *time.Location) (float64, bool, error) {
	field := func(i int) (dlt645.Field, error) {
		if i < 0 || i >= len(fields) {
			return dlt645.Field{}, fmt.Errorf("the record has no field %d", i+1)
		}
		return fields[i], nil
	}
	at := func(i int) (time.Time, bool, error) {
		f, err := field(i)
		if err != nil || f.Empty {
			return time.Time{}, false, err
		}
		t, err := f.Clock.Time(loc)
		return t, err == nil, err
	}
	switch o.Value {
	case dlt645.OutTime:
		t, ok, err := at(o.Field)
		if !ok {
			return 0, false, err
		}
		return float64(t.Unix()), true, nil
	case dlt645.OutDuration:
		start, ok, err := at(o.Field)
		if !ok {
			return 0, false, err
		}
		end, ok, err := at(o.Field2)
		if !ok {
			return 0, false, err
		}
		return end.Sub(start).Seconds(), true, nil
	}
	f, err := field(o.Field)
	if err != nil {
		return 0, false, err
	}
	if f.Kind != dlt645.Number {
		return 0, false, fmt.Errorf("field %d is not a number", o.Field+1)
	}
	return f.Number, true, nil
}

// settleGuard is how near a settlement moment settled values are not read: a meter clock a little
// behind ours has not settled yet.
const settleGuard = 5 * time.Minute

func lastOrZero(days []dlt645.SettlementDay, at time.Time) time.Time {
	t, _ := dlt645.LastSettlement(days, 1, at)
	return t
}

// stamp finds the time of an entry's record.
func (m *meterPoller) stamp(ctx context.Context, p *device.Poll, e dlt645.Entry, fields []dlt645.Field) stampResult {
	switch e.Stamp {
	case dlt645.StampField:
		if e.TimeField >= len(fields) || fields[e.TimeField].Empty {
			return stampResult{empty: true}
		}
		t, err := fields[e.TimeField].Clock.Time(m.spec.location)
		if err != nil {
			return stampResult{err: device.NewError(device.ErrDecode, fmt.Errorf("%s: time: %w", e.Name, err))}
		}
		return stampResult{at: t}
	case dlt645.StampIdentifier:
		return m.freezeTime(ctx, p, e.TimeDI)
	case dlt645.StampSettlement:
		days, err := m.settlementDays(ctx, p)
		if err != nil {
			return stampResult{err: err}
		}
		now := m.clock.Now().In(m.spec.location)
		if a, _ := dlt645.LastSettlement(days, 1, now.Add(-settleGuard)); !a.Equal(lastOrZero(days, now.Add(settleGuard))) {
			// Near a settlement moment the meter's clock (or its settling) may not agree with ours on
			// which side of it we are: the values wait until it is clearly past.
			return stampResult{empty: true}
		}
		t, ok := dlt645.LastSettlement(days, e.History, now)
		if !ok {
			return stampResult{err: device.NewError(device.ErrDecode, fmt.Errorf("%s: the meter has no settlement day set (%s)", e.Name, dlt645.DISettlementDay1.Format(dlt645.V2007)))}
		}
		return stampResult{at: t}
	}
	return stampResult{}
}

// freezeTime reads a freeze's time once per poll.
func (m *meterPoller) freezeTime(ctx context.Context, p *device.Poll, di dlt645.DI) stampResult {
	if r, ok := m.freezeTimes[di]; ok {
		return r
	}
	var r stampResult
	b, err := m.readRaw(ctx, p, di)
	if err == nil {
		e, _ := dlt645.Builtin().Lookup(m.spec.version, di)
		var c dlt645.Clock
		c, err = e.Format.DecodeClock(b)
		switch {
		case errors.Is(err, dlt645.ErrEmpty):
			r.empty, err = true, nil
		case err == nil:
			r.at, err = c.Time(m.spec.location)
		}
		if err != nil {
			err = device.NewError(device.ErrDecode, fmt.Errorf("%s: % X: %w", e.Name, b, err))
		}
	}
	r.err = err
	if m.freezeTimes == nil {
		m.freezeTimes = map[dlt645.DI]stampResult{}
	}
	m.freezeTimes[di] = r
	return r
}

// freezeTimeOf is the identifier of the freeze time that stamps a read's values, if any.
func freezeTimeOf(rs *readSpec) (dlt645.DI, bool) {
	if len(rs.parts) > 0 && rs.parts[0].entry.Stamp == dlt645.StampIdentifier {
		return rs.parts[0].entry.TimeDI, true
	}
	return 0, false
}

// frozeMeanwhile reads the freeze time again after its values and reports whether it moved on since
// before: a freeze between the two reads would otherwise stamp the older freeze's values with the new
// time. The time read after is the one the rest of the poll uses.
func (m *meterPoller) frozeMeanwhile(ctx context.Context, p *device.Poll, di dlt645.DI, before stampResult) bool {
	delete(m.freezeTimes, di)
	after := m.freezeTime(ctx, p, di)
	if before.err != nil || after.err != nil {
		return false // the stamp fails on its own
	}
	return after.empty != before.empty || !after.at.Equal(before.at)
}

// settlementDays reads the meter's settlement days (the first must answer; a meter without the
// second or third answers those with an error word).
func (m *meterPoller) settlementDays(ctx context.Context, p *device.Poll) ([]dlt645.SettlementDay, error) {
	now := m.clock.Now()
	if m.days != nil && now.Before(m.daysAt.Add(settlementDaysTTL)) {
		return m.days, nil
	}
	var days []dlt645.SettlementDay
	for i, di := range []dlt645.DI{dlt645.DISettlementDay1, dlt645.DISettlementDay2, dlt645.DISettlementDay3} {
		b, err := m.readRaw(ctx, p, di)
		var me *dlt645.MeterError
		if i > 0 && errors.As(err, &me) {
			break
		}
		if err != nil {
			return nil, err
		}
		d, err := dlt645.ParseSettlementDay(b)
		if err != nil {
			return nil, device.NewError(device.ErrDecode, fmt.Errorf("settlement day %s: % X: %w", di.Format(dlt645.V2007), b, err))
		}
		days = append(days, d)
	}
	m.days, m.daysAt = days, now
	return days, nil
}

// readRaw reads one identifier as a request of the poll.
func (m *meterPoller) readRaw(ctx context.Context, p *device.Poll, di dlt645.DI) ([]byte, error) {
	v := m.spec.version
	q := p.StartRequestAt(spanRead, m.clock.Now()).
		Attr(attrAddress, m.address.String()).
		Attr(attrControlCode, controlCode(v)).
		Attr(attrDI, di.Format(v))
	var res dlt645.Result
	err := m.transact(ctx, q, func(c *dlt645.Client) error {
		var err error
		res, err = c.Read(ctx, v, m.address, di)
		return err
	})
	var me *dlt645.MeterError
	if errors.As(err, &me) {
		q.Attr(attrErrorWord, fmt.Sprintf("%02X", byte(me.Word)))
		q.Attr(attrErrorText, me.Word.Describe(v))
	}
	q.EndAt(err, m.clock.Now())
	return res.Value, err
}
