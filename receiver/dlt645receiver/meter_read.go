package dlt645receiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Reading a meter's identifiers: single ones, blocks, and blocks the meter refuses read member by
// member.

// readValues reads one identifier (or block) and records its values.
func (m *meterPoller) readValues(ctx context.Context, p *device.Poll, rs *readState) error {
	if rs.fallback {
		return m.readSingles(ctx, p, rs, false)
	}
	if rs.spec.block && m.noBlocks {
		m.fallBack(rs)
		return m.readSingles(ctx, p, rs, true)
	}
	v := m.spec.version
	q := p.StartRequestAt(spanRead, m.clock.Now()).
		Attr(attrAddress, m.address.String()).
		Attr(attrControlCode, controlCode(v)).
		Attr(attrDI, rs.spec.di.Format(v))
	var res dlt645.Result
	err := m.transact(ctx, q, func(c *dlt645.Client) error {
		var err error
		res, err = c.Read(ctx, v, m.address, rs.spec.di)
		return err
	})
	if res.Frames > 0 {
		q.Attr(attrFrames, res.Frames)
	}
	var me *dlt645.MeterError
	if errors.As(err, &me) {
		q.Attr(attrErrorWord, fmt.Sprintf("%02X", byte(me.Word)))
		q.Attr(attrErrorText, me.Word.Describe(v))
	}
	if err != nil && rs.spec.block && me != nil && !m.blocksOK {
		// The meter answers its first block read with an error word: many meters read only single
		// identifiers. Read the members one by one, in this poll already, and ask this meter for no
		// block again. (A meter that answered a block before just lacks this block's data.)
		q.EndAt(err, m.clock.Now())
		m.noBlocks = true
		m.logger.Info("The meter refuses block reads: reading the single identifiers of its blocks instead",
			zap.String("di", rs.spec.di.Format(v)), zap.String(attrErrorWord, fmt.Sprintf("%02X", byte(me.Word))))
		m.fallBack(rs)
		return m.readSingles(ctx, p, rs, true)
	}
	if err == nil && rs.spec.block {
		m.blocksOK = true
	}
	if err != nil {
		m.stale(p, rs)
		q.EndAt(err, m.clock.Now())
		return err
	}
	err = m.record(p, rs, res.Value)
	q.Attr(attrParts, rs.last)
	q.EndAt(err, m.clock.Now())
	return err
}

// fallBack switches a block to reading its members one by one.
func (m *meterPoller) fallBack(rs *readState) {
	rs.fallback = true
	rs.singles = make([]int, len(rs.spec.parts))
	for i := range rs.singles {
		rs.singles[i] = i
	}
}

// readSingles reads the members of a block the meter refuses one identifier at a time. At the first
// round, a member the meter answers with an error word is dropped: it does not have it (as a block
// reply holds only the tariffs the meter has), so its reading is marked stale once and not asked for
// again. It returns the last error.
func (m *meterPoller) readSingles(ctx context.Context, p *device.Poll, rs *readState, first bool) error {
	v := m.spec.version
	var last error
	kept := rs.singles[:0]
	for k, i := range rs.singles {
		part := rs.spec.parts[i]
		if ctx.Err() != nil || (last != nil && !m.answered && !device.Classify(last).Answered()) {
			// shutting down, or the meter has not said a word this poll: the rest is stale
			for _, j := range rs.singles[k:] {
				p.RecordStale(rs.series[j])
			}
			kept = append(kept, rs.singles[k:]...)
			break
		}
		q := p.StartRequestAt(spanRead, m.clock.Now()).
			Attr(attrAddress, m.address.String()).
			Attr(attrControlCode, controlCode(v)).
			Attr(attrDI, part.entry.DI.Format(v))
		var res dlt645.Result
		err := m.transact(ctx, q, func(c *dlt645.Client) error {
			var err error
			res, err = c.Read(ctx, v, m.address, part.entry.DI)
			return err
		})
		var me *dlt645.MeterError
		if errors.As(err, &me) {
			q.Attr(attrErrorWord, fmt.Sprintf("%02X", byte(me.Word)))
			q.Attr(attrErrorText, me.Word.Describe(v))
		}
		if err == nil {
			var x float64
			if x, err = part.entry.Format.Decode(res.Value); err != nil {
				err = device.NewError(device.ErrDecode, fmt.Errorf("%s: % X as %s: %w", part.entry.Name, res.Value, part.entry.Format, err))
			} else {
				p.Record(rs.series[i], time.Time{}, x*part.scale)
			}
		}
		q.EndAt(err, m.clock.Now())
		if first && me != nil {
			continue // the meter does not have this member: no series, nothing to mark stale
		}
		if err != nil {
			p.RecordStale(rs.series[i])
			last = err
		}
		kept = append(kept, i)
	}
	rs.singles = kept
	return last
}

// record decodes a reply into the readings; values that do not decode are marked stale.
func (m *meterPoller) record(p *device.Poll, rs *readState, value []byte) error {
	parts := rs.spec.parts
	datas := [][]byte{value}
	if rs.spec.block {
		entries := make([]dlt645.Entry, len(parts))
		for i, part := range parts {
			entries[i] = part.entry
		}
		split, err := dlt645.SplitBlock(entries, value)
		if err != nil {
			m.stale(p, rs)
			return device.NewError(device.ErrDecode, err)
		}
		datas = datas[:0]
		for _, s := range split {
			datas = append(datas, s.Data)
		}
		if n := len(split); n < rs.last {
			// The meter sends fewer values than before: the missing ones are gone.
			for _, s := range rs.series[n:rs.last] {
				p.RecordStale(s)
			}
		}
		rs.last = len(split)
	}
	var errs []error
	for i, data := range datas {
		part := parts[i]
		x, err := part.entry.Format.Decode(data)
		if err != nil {
			p.RecordStale(rs.series[i])
			errs = append(errs, fmt.Errorf("%s: % X as %s: %w", part.entry.Name, data, part.entry.Format, err))
			continue
		}
		p.Record(rs.series[i], time.Time{}, x*part.scale)
	}
	if len(errs) > 0 {
		return device.NewError(device.ErrDecode, errors.Join(errs...))
	}
	return nil
}
