package dlt645receiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// readClock reads the meter's date and time and records its drift from the collector's clock.
func (m *meterPoller) readClock(ctx context.Context, p *device.Poll) {
	v := m.spec.version
	cs := m.spec.clock
	read := func(di dlt645.DI) (dlt645.Clock, time.Time, error) {
		q := p.StartRequestAt(spanRead, m.clock.Now()).
			Attr(attrAddress, m.address.String()).
			Attr(attrControlCode, controlCode(v)).
			Attr(attrDI, di.Format(v))
		var res dlt645.Result
		var at time.Time
		var charTime time.Duration
		err := m.transact(ctx, q, func(c *dlt645.Client) error {
			var err error
			res, err = c.Read(ctx, v, m.address, di)
			at, charTime = m.clock.Now(), c.CharTime
			return err
		})
		var me *dlt645.MeterError
		if errors.As(err, &me) {
			q.Attr(attrErrorWord, fmt.Sprintf("%02X", byte(me.Word)))
			q.Attr(attrErrorText, me.Word.Describe(v))
		}
		if err != nil {
			q.EndAt(err, m.clock.Now())
			return dlt645.Clock{}, at, err
		}
		e, _ := dlt645.Builtin().Lookup(v, di)
		clk, err := e.Format.DecodeClock(res.Value)
		if err != nil {
			err = device.NewError(device.ErrDecode, fmt.Errorf("%s: % X: %w", e.Name, res.Value, err))
		}
		q.EndAt(err, m.clock.Now())
		// The meter read its clock before sending the reply.
		reply := dlt645.ReadResponse(v, m.address, di, res.Value, false).Len(m.bus.spec.preamble)
		return clk, at.Add(-time.Duration(reply) * charTime), err
	}

	var meter, at time.Time
	if cs.dateTime != 0 {
		c, t, err := read(cs.dateTime)
		if err != nil {
			p.RecordStale(m.drift)
			return
		}
		meter, at = clockTime(c, c, m.spec.location), t
	} else {
		start := m.clock.Now()
		date, _, err := read(cs.date)
		if err != nil {
			p.RecordStale(m.drift)
			return
		}
		tod, t, err := read(cs.time)
		if err != nil {
			p.RecordStale(m.drift)
			return
		}
		// The date may have been read just before the meter's midnight and the time just after:
		// then read the date again.
		sinceMidnight := time.Duration(tod.Hour)*time.Hour + time.Duration(tod.Minute)*time.Minute + time.Duration(tod.Second)*time.Second
		if sinceMidnight <= t.Sub(start)+time.Second {
			if date, _, err = read(cs.date); err != nil {
				p.RecordStale(m.drift)
				return
			}
		}
		meter, at = clockTime(date, tod, m.spec.location), t
	}
	// The meter's clock shows whole seconds: its true time is half a second later on average.
	p.Record(m.drift, time.Time{}, meter.Add(500*time.Millisecond).Sub(at).Seconds())
}

func clockTime(date, tod dlt645.Clock, loc *time.Location) time.Time {
	return time.Date(date.Year, time.Month(date.Month), date.Day, tod.Hour, tod.Minute, tod.Second, 0, loc)
}
