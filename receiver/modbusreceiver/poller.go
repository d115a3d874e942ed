package modbusreceiver

import (
	"context"
	"math"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Span and attribute names of the requests.
const (
	attrUnitID        = "modbus.unit_id"
	attrFunctionCode  = "modbus.function_code"
	attrAddress       = "modbus.address"
	attrCount         = "modbus.count"
	attrFields        = "modbus.fields"
	attrExceptionCode = "modbus.exception_code"
	attrEndpoint      = "modbus.endpoint"
	attrServedBy      = "modbus.endpoint.served_by" // with backup endpoints: the one the poll went to
	attrSplit         = "modbus.split"
)

var spanNames = map[Table]string{
	TableHolding:  "modbus.read_holding_registers",
	TableInput:    "modbus.read_input_registers",
	TableCoil:     "modbus.read_coils",
	TableDiscrete: "modbus.read_discrete_inputs",
}

var functionCodes = map[Table]int{TableCoil: 1, TableDiscrete: 2, TableHolding: 3, TableInput: 4}

// field states within one poll
const (
	stUnread uint8 = iota
	stOK
	stStale
	stSkip // NaN from the device, or a string handled apart
)

// devicePoller is one device's protocol work (a device.Target); only its scheduler goroutine uses it.
type devicePoller struct {
	spec  *deviceSpec
	conn  *conn
	rec   *device.Recorder
	clock clock.Clock

	series []*device.Series // per field; nil for strings
	limits planLimits
	blocks []block
	hints  planHints
	dirty  bool
	split  time.Time // when the plan was first split, zero if not
	cuts   []int     // breakBefore flags set by the split in progress
	found  bool      // the split in progress isolated a field
	// refused[i]: the device refused field i read on its own (exception 1, 2 or 3: no such function,
	// register or value). It is not read again until remerge_after, and counted as error.type field.
	refused []bool

	// per poll
	values   []float64
	raws     []uint64 // the bit patterns of the values: integers are recorded from them exactly
	states   []uint8
	regs     []uint16
	answered bool

	// strings
	infoSeries []*device.Series
	infoValue  []string
	infoOld    []*device.Series // the info series of a text that just changed: marked stale once
	resource   []string
}

func newDevicePoller(spec *deviceSpec, c *conn, rec *device.Recorder, clock clock.Clock) *devicePoller {
	n := len(spec.fields)
	d := &devicePoller{
		spec:  spec,
		conn:  c,
		rec:   rec,
		clock: clock,
		limits: planLimits{
			maxRegisters: spec.requests.MaxRegisters,
			maxBits:      spec.requests.MaxBits,
			maxGap:       spec.requests.MaxGap,
		},
		series:     make([]*device.Series, n),
		hints:      planHints{breakBefore: make([]bool, n), isolated: make([]bool, n)},
		values:     make([]float64, n),
		raws:       make([]uint64, n),
		states:     make([]uint8, n),
		infoSeries: make([]*device.Series, n),
		infoValue:  make([]string, n),
		infoOld:    make([]*device.Series, n),
		refused:    make([]bool, n),
		resource:   make([]string, n),
		dirty:      true,
	}
	for i := range spec.fields {
		f := &spec.fields[i]
		if f.typ == TypeString || f.internal {
			continue
		}
		d.series[i] = rec.Series(f.metric, f.unit, f.description, f.kind, f.attributes)
		d.series[i].SetReport(device.ResolveReport(spec.poll.Interval, f.report))
	}
	return d
}

func (d *devicePoller) replan(now time.Time) {
	if !d.split.IsZero() && d.spec.requests.RemergeAfter > 0 && now.Sub(d.split) >= d.spec.requests.RemergeAfter {
		clear(d.hints.breakBefore)
		clear(d.hints.isolated)
		clear(d.refused) // re-probe the refused fields: read merged again, split again if still refused
		d.split = time.Time{}
		d.dirty = true
	}
	if d.dirty {
		if d.spec.blocks != nil {
			d.blocks = planBlocks(d.spec.fields, d.spec.blocks)
		} else {
			d.blocks = plan(d.spec.fields, d.limits, d.hints)
			// A refused field is planned alone (it is isolated): leave its read out until the re-probe.
			kept := d.blocks[:0]
			for _, b := range d.blocks {
				if len(b.fields) == 1 && d.refused[b.fields[0]] {
					continue
				}
				kept = append(kept, b)
			}
			d.blocks = kept
		}
		d.dirty = false
	}
}

// Poll reads every block of the plan (the I/O phase, holding the connection); Finish records the
// fields.
func (d *devicePoller) Poll(ctx context.Context, p *device.Poll) {
	d.replan(p.Start())
	clear(d.states)
	d.answered = false
	p.Attr(attrEndpoint, d.conn.spec.endpoint)
	p.Attr(attrUnitID, int(d.spec.unitID))
	err := d.conn.ensure(ctx, d.spec.poll.Timeout)
	if len(d.conn.spec.URLs) > 1 {
		p.Attr(attrServedBy, d.conn.servedBy())
	}
	if err != nil {
		p.Fail(err)
		return
	}
	dead := false
	blocks := d.blocks // a split replaces d.blocks; finish this poll's list
	for bi := range blocks {
		b := blocks[bi]
		if dead || ctx.Err() != nil {
			d.markStale(b.fields)
			continue
		}
		if bi > 0 && !d.pause(ctx) {
			d.markStale(b.fields)
			continue
		}
		err := d.readBlock(ctx, p, b)
		if err == nil {
			continue
		}
		de, _ := classify(err)
		// An explicit block is never split: the device answers only that exact read, so its fields
		// are all stale this poll (the failed request is counted like any other).
		splittable := !b.explicit && len(b.fields) > 1 && (de.Type == device.ErrException || (de.Type == device.ErrTimeout && d.answered))
		switch {
		case splittable && exceptionCode(err) != 11:
			d.cuts, d.found = d.cuts[:0], false
			d.isolate(ctx, p, b)
			if d.found {
				// The culprit is a field: read around it, merging the rest again. Only when no single
				// field is to blame (an unmapped gap) do the cuts stay.
				for _, i := range d.cuts {
					d.hints.breakBefore[i] = false
				}
			}
		default:
			d.markStale(b.fields)
			d.refuse(p, b, err)
			if !d.answered && (de.Type == device.ErrTimeout || de.Type == device.ErrConnection) {
				// Nothing answered yet: the device (or line) is down, skip the rest of this poll.
				dead = true
			}
		}
	}
	d.conn.heard(d.answered)
	// A dead poll needs no closing here: its timeouts or connection errors already resynced the
	// connection (readBlock), so a half-dead socket or gateway gets a fresh connection next time.
	if d.spec.requests.CloseAfterPoll {
		d.conn.close()
	}
}

// Finish is the record phase, after the runner has released the connection: the next device's poll
// may use it while this one's readings are recorded and built. (Yielding the processor between the
// phases as well would start the next request sooner when polls queue for the connection, but costs a
// scheduler round trip to every poll when none does: measured, it lost more than it gained.)
func (d *devicePoller) Finish(p *device.Poll) { d.recordAll(p) }

// pause waits the device's pause between requests; false if ctx ended.
func (d *devicePoller) pause(ctx context.Context) bool {
	if d.spec.requests.Pause <= 0 {
		return true
	}
	ch, stop := d.clock.After(d.spec.requests.Pause)
	defer stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// isolate splits a block that raised an exception (or timed out while the device answers other reads)
// in halves, recursively, in this poll: fields that fail alone are marked stale and isolated, the
// others are recorded. The cuts are kept for later polls until remerge_after has passed.
func (d *devicePoller) isolate(ctx context.Context, p *device.Poll, b block) {
	if d.split.IsZero() {
		d.split = p.Start()
	}
	d.dirty = true
	left, right := splitFields(b.fields)
	d.hints.breakBefore[right[0]] = true
	d.cuts = append(d.cuts, right[0])
	for _, half := range [][]int{left, right} {
		if ctx.Err() != nil || !d.pause(ctx) {
			d.markStale(half)
			continue
		}
		sub := span(d.spec.fields, half)
		err := d.readBlock(ctx, p, sub)
		if err == nil {
			continue
		}
		de, _ := classify(err)
		if de.Type != device.ErrException && de.Type != device.ErrTimeout {
			d.markStale(half)
			continue
		}
		if len(half) == 1 {
			d.hints.isolated[half[0]] = true
			d.found = true
			d.markStale(half)
			d.refuse(p, sub, err)
			continue
		}
		d.isolate(ctx, p, sub)
	}
}

// refuse notes a field the device refused on its own with exception 1, 2 or 3 (illegal function,
// data address or data value: a mis-addressed or unsupported register, which will not heal by itself):
// it is left out of the plan until remerge_after has passed, when merging is tried again and the field
// is re-probed, instead of failing one request (and the poll span) at every poll. Timeouts and other
// exceptions (device failure, busy) keep the field read alone at every poll.
func (d *devicePoller) refuse(p *device.Poll, b block, err error) {
	if b.explicit || len(b.fields) != 1 {
		return
	}
	switch exceptionCode(err) {
	case 1, 2, 3:
	default:
		return
	}
	i := b.fields[0]
	d.hints.isolated[i], d.refused[i] = true, true
	if d.split.IsZero() {
		d.split = p.Start()
	}
	d.dirty = true
}

func (d *devicePoller) markStale(fields []int) {
	for _, i := range fields {
		d.states[i] = stStale
	}
}

// readBlock performs one read with retries, and decodes its fields on success.
func (d *devicePoller) readBlock(ctx context.Context, p *device.Poll, b block) error {
	req := p.StartRequest(spanNames[b.table]).
		Attr(attrFunctionCode, functionCodes[b.table]).
		Attr(attrUnitID, int(d.spec.unitID)).
		Attr(attrAddress, b.start).
		Attr(attrCount, b.count).
		Attr(attrFields, len(b.fields))
	var err error
	for attempt := 0; ; attempt++ {
		err = d.read(ctx, b)
		if err == nil {
			break
		}
		de, retry := classify(err)
		err = de
		if de.Type.Answered() {
			d.answered = true
		}
		if device.Resync(de) {
			// A late, cut or foreign reply may still be on its way: the next request must not read it.
			d.conn.resync(ctx)
		}
		if !retry || attempt >= d.spec.poll.Retries || ctx.Err() != nil {
			break
		}
		req.RetryAfter(err)
		if oerr := d.conn.ensure(ctx, d.spec.poll.Timeout); oerr != nil {
			err = oerr
			break
		}
	}
	if code := exceptionCode(err); code != 0 {
		req.Attr(attrExceptionCode, code)
	}
	req.End(err)
	if err != nil {
		return err
	}
	d.answered = true
	d.decode(b)
	return nil
}

// read performs one request of block b into d.regs.
func (d *devicePoller) read(ctx context.Context, b block) error {
	regs, err := d.conn.read(ctx, d.spec.poll.Timeout, d.spec.unitID, b.table, b.start, b.count, d.regs)
	d.regs = regs
	return err
}

// decode turns the registers of block b into the raw values of its fields.
func (d *devicePoller) decode(b block) {
	for _, i := range b.fields {
		f := &d.spec.fields[i]
		regs := d.regs[f.address-b.start : f.address-b.start+f.count]
		if f.typ == TypeString {
			d.setString(i, decodeString(f, regs))
			d.states[i] = stSkip
			continue
		}
		v, raw := decodeRegisters(f, regs)
		switch {
		case len(f.invalid) > 0 && f.isInvalid(raw):
			d.states[i] = stStale
		case math.IsNaN(v):
			d.states[i] = stStale
		default:
			d.values[i], d.raws[i], d.states[i] = v, raw, stOK
		}
	}
}

// setString handles a string field: an info series (value 1, text as attribute) or a resource attribute.
func (d *devicePoller) setString(i int, s string) {
	f := &d.spec.fields[i]
	if f.stringAs == "resource" {
		if s != d.resource[i] {
			d.resource[i] = s
			d.rec.SetResourceAttribute(f.attribute, s)
		}
		return
	}
	if d.infoSeries[i] != nil && d.infoValue[i] == s {
		return
	}
	// The text changed (a new serial number, firmware …): the series under the old text ends now, not
	// after Prometheus' lookback.
	d.infoOld[i] = d.infoSeries[i]
	attrs := make(map[string]string, len(f.attributes)+1)
	for k, v := range f.attributes {
		attrs[k] = v
	}
	attrs[f.attribute] = s
	d.infoValue[i] = s
	d.infoSeries[i] = d.rec.Series(f.metric, f.unit, f.description, device.KindGauge, attrs)
	d.infoSeries[i].SetReport(device.ResolveReport(d.spec.poll.Interval, f.report))
}

// integerReading converts an integer field from its raw bit pattern by the field's scale and offset
// (device.Scale: never through float64 while they are whole numbers, so a 64-bit counter above 2^53,
// or one in kWh scaled ×1000 to Wh, keeps its last digit). It reports false for fields that are not
// integers (floats, bools and bits are doubles).
func integerReading(f *fieldSpec, raw uint64) (device.Number, bool) {
	switch f.typ {
	case TypeUint8, TypeUint16, TypeUint32, TypeUint64:
		return f.conv.Uint(raw), true
	case TypeInt8:
		return f.conv.Int(int64(int8(raw))), true
	case TypeInt16:
		return f.conv.Int(int64(int16(raw))), true
	case TypeInt32:
		return f.conv.Int(int64(int32(raw))), true
	case TypeInt64:
		return f.conv.Int(int64(raw)), true
	}
	return device.Number{}, false
}

// recordAll applies scale factors and records every field of the poll.
func (d *devicePoller) recordAll(p *device.Poll) {
	for i := range d.spec.fields {
		f := &d.spec.fields[i]
		if d.refused[i] && d.states[i] == stUnread && d.answered {
			p.Error(device.ErrField) // left out of this poll's reads: refused earlier
		}
		if f.typ == TypeString {
			if old := d.infoOld[i]; old != nil {
				p.RecordStale(old)
				d.infoOld[i] = nil
			}
			if f.stringAs == "info" && d.infoSeries[i] != nil {
				if d.states[i] == stSkip {
					p.Record(d.infoSeries[i], time.Time{}, 1)
				} else {
					p.RecordStale(d.infoSeries[i])
				}
			}
			continue
		}
		if f.internal {
			continue
		}
		if d.states[i] != stOK {
			p.RecordStale(d.series[i])
			continue
		}
		// A scale factor read from the device (SunSpec sunssf) can change between polls, so its
		// fields stay doubles: a series does not switch between integer and double points.
		if f.scaleFactor < 0 {
			if n, ok := integerReading(f, d.raws[i]); ok {
				n.Record(p, d.series[i], time.Time{})
				continue
			}
		}
		v := d.values[i]
		if f.scaleFactor >= 0 {
			if d.states[f.scaleFactor] != stOK {
				p.RecordStale(d.series[i])
				continue
			}
			v *= math.Pow(10, d.values[f.scaleFactor])
		}
		f.conv.Float(v).Record(p, d.series[i], time.Time{})
	}
}
