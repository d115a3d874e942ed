package dlt645receiver

import (
	"context"
	"errors"
	"fmt"

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
	if rs.spec.block && !rs.spec.repeat && m.noBlocks {
		m.fallBack(rs)
		return m.readSingles(ctx, p, rs, true)
	}
	v := m.spec.version
	timeDI, byFreeze := freezeTimeOf(rs.spec)
	var before stampResult
	if byFreeze {
		before = m.freezeTime(ctx, p, timeDI)
	}
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
	if err != nil && rs.spec.block && !rs.spec.repeat && me != nil && !m.blocksOK {
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
	if err == nil && rs.spec.block && !rs.spec.repeat {
		m.blocksOK = true
	}
	if err != nil {
		m.stale(p, rs)
		q.EndAt(err, m.clock.Now())
		return err
	}
	if byFreeze && m.frozeMeanwhile(ctx, p, timeDI, before) {
		// The meter froze between the time and the values: they may be the freeze before. The next
		// poll reads them with their time.
		q.EndAt(nil, m.clock.Now())
		return nil
	}
	err = m.record(ctx, p, rs, res.Value)
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
				rs.markStale(p, j)
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
		q.EndAt(err, m.clock.Now())
		if err == nil {
			var fields []dlt645.Field
			if fields, err = part.entry.Format.DecodeRecord(res.Value); err != nil {
				err = device.NewError(device.ErrDecode, fmt.Errorf("%s: % X as %s: %w", part.entry.Name, res.Value, part.entry.Format, err))
			} else {
				err = m.recordPart(ctx, p, rs, i, fields)
			}
		}
		if first && me != nil {
			continue // the meter does not have this member: no series, nothing to mark stale
		}
		if err != nil {
			rs.markStale(p, i)
			last = err
		}
		kept = append(kept, i)
	}
	rs.singles = kept
	return last
}

// record decodes a reply into the readings; values that do not decode are marked stale.
func (m *meterPoller) record(ctx context.Context, p *device.Poll, rs *readState, value []byte) error {
	parts := rs.spec.parts
	datas := [][]byte{value}
	if rs.spec.block {
		var members []dlt645.Entry
		for _, part := range parts {
			if part.member == len(members) {
				members = append(members, part.entry)
			}
		}
		split, err := dlt645.SplitBlock(members, value)
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
			for i, part := range parts {
				if part.member >= n && part.member < rs.last {
					rs.markStale(p, i)
				}
			}
		}
		rs.last = len(split)
	}
	var errs []error
	var other error // a failed request for a record's time: its own error type
	decoded := make([][]dlt645.Field, len(datas))
	failed := make([]bool, len(datas))
	for i, part := range parts {
		j := part.member
		if j >= len(datas) {
			continue
		}
		if decoded[j] == nil && !failed[j] {
			fields, err := part.entry.Format.DecodeRecord(datas[j])
			if err != nil {
				failed[j] = true
				errs = append(errs, fmt.Errorf("%s: % X as %s: %w", part.entry.Name, datas[j], part.entry.Format, err))
			}
			decoded[j] = fields
		}
		if failed[j] {
			rs.markStale(p, i)
			continue
		}
		if err := m.recordPart(ctx, p, rs, i, decoded[j]); err != nil {
			if device.Classify(err) != device.ErrDecode {
				other = err
				continue
			}
			errs = append(errs, err)
		}
	}
	if other != nil {
		return other
	}
	if len(errs) > 0 {
		return device.NewError(device.ErrDecode, errors.Join(errs...))
	}
	return nil
}
