package dlt645receiver

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Span names and attributes of the requests.
const (
	spanRead        = "dlt645.read"
	spanReadAddress = "dlt645.read_address"

	attrAddress     = "dlt645.address"
	attrVersionSpan = "dlt645.version"
	attrServedBy    = "dlt645.endpoint.served_by" // with backup endpoints: the one the poll went to
	attrControlCode = "dlt645.control_code"
	attrDI          = "dlt645.di"
	attrFrames      = "dlt645.frames"
	attrErrorWord   = "dlt645.error_word"
	attrErrorText   = "dlt645.error"
	attrBytesSent   = "dlt645.bytes_sent"
	attrBytesRecv   = "dlt645.bytes_received"
	attrNoise       = "dlt645.noise_bytes"
	attrParts       = "dlt645.values"
)

// MetricClockDrift is the meter's clock minus the collector's.
const MetricClockDrift = "dlt645.meter.clock.drift"

var descriptions = map[string]string{
	dlt645.MetricActiveEnergy:           "Active energy register of the meter, by direction and tariff.",
	dlt645.MetricReactiveEnergy:         "Reactive energy register of the meter, by direction or quadrant and tariff.",
	dlt645.MetricCombinedActiveEnergy:   "Combined active energy as the meter computes it from forward and reverse energy.",
	dlt645.MetricCombinedReactiveEnergy: "Combined reactive energy 1 or 2 as the meter computes it from the quadrants.",
	dlt645.MetricVoltage:                "Phase voltage.",
	dlt645.MetricCurrent:                "Phase (or neutral) current; negative when power flows in reverse.",
	dlt645.MetricActivePower:            "Instantaneous active power; negative when exporting.",
	dlt645.MetricReactivePower:          "Instantaneous reactive power.",
	dlt645.MetricApparentPower:          "Instantaneous apparent power.",
	dlt645.MetricPowerFactor:            "Power factor; negative when exporting.",
	dlt645.MetricPhaseAngle:             "Phase angle of the current to the voltage.",
	dlt645.MetricFrequency:              "Grid frequency.",
	dlt645.MetricActiveDemand:           "Current active demand.",
	dlt645.MetricReactiveDemand:         "Current reactive demand.",
	dlt645.MetricApparentDemand:         "Current apparent demand.",
	dlt645.MetricTemperature:            "Temperature inside the meter.",
	dlt645.MetricBattery:                "Battery voltage of the meter.",
	MetricClockDrift:                    "The meter's clock minus the collector's, from the meter's date and time (resolution 1 s).",
}

// readState is one request of a meter with the series of its values.
type readState struct {
	spec   *readSpec
	series []*device.Series
	last   int // values in the last good reply (blocks send as many as the meter has)
	// singles: the meter refused the block identifier with an error word, so its members are read one
	// by one from then on; these are the indices of the parts still read (a member the meter answered
	// with an error word at the first round is one it does not have, like the tariffs missing from a
	// block reply, and is not asked for again).
	singles  []int
	fallback bool
	// lastStamp, lastValue: per part stamped with its record's time, the point last sent (a record is
	// sent once, and again only when the meter has a new one).
	lastStamp []time.Time
	lastValue []float64
}

// meterPoller is one meter's protocol work (a device.Target); only its scheduler goroutine uses it.
type meterPoller struct {
	spec   *meterSpec
	bus    *bus
	rec    *device.Recorder
	clock  clock.Clock
	logger *zap.Logger

	address dlt645.Address
	known   bool
	reads   []readState
	drift   *device.Series
	// blocksOK: the meter answered a block read with values, so it reads blocks (an error word on
	// another block means it lacks that data). noBlocks: it answered its first block read with an
	// error word: it reads only single identifiers, and no block is asked of it again.
	blocksOK, noBlocks bool

	// per poll
	answered bool
	// freezeTimes: the freeze times read this poll; days: the meter's settlement days, read again
	// after daysAt + settlementDaysTTL
	freezeTimes map[dlt645.DI]stampResult
	days        []dlt645.SettlementDay
	daysAt      time.Time

	// profile backfills the load profile (nil: not configured); set by the receiver
	profile *loadProfile
}

func newMeterPoller(spec *meterSpec, b *bus, rec *device.Recorder, clock clock.Clock, logger *zap.Logger) *meterPoller {
	m := &meterPoller{
		spec:    spec,
		bus:     b,
		rec:     rec,
		clock:   clock,
		logger:  logger.With(zap.String("device.id", spec.identity.ID)),
		address: spec.address,
		known:   !spec.discover,
	}
	for i := range spec.reads {
		rs := readState{spec: &spec.reads[i], last: 1}
		for _, part := range spec.reads[i].parts {
			o := part.out
			attrs := make(map[string]string, len(o.Attributes))
			for _, a := range o.Attributes {
				attrs[a.Key] = a.Value
			}
			kind := device.KindGauge
			if o.Kind == dlt645.Sum {
				kind = device.KindSum
			}
			desc := part.description
			if desc == "" {
				desc = describe(o.Metric)
			}
			if desc == "" {
				desc = part.entry.Name
			}
			s := rec.Series(o.Metric, o.Unit, desc, kind, attrs)
			s.SetReport(device.ResolveReport(spec.poll.Interval, spec.report.Over(part.report)))
			rs.series = append(rs.series, s)
		}
		rs.lastStamp = make([]time.Time, len(rs.series))
		rs.lastValue = make([]float64, len(rs.series))
		m.reads = append(m.reads, rs)
	}
	if spec.clock.enabled {
		m.drift = rec.Series(MetricClockDrift, "s", descriptions[MetricClockDrift], device.KindGauge, nil)
		m.drift.SetReport(device.ResolveReport(spec.poll.Interval, spec.report))
	}
	return m
}

// Poll reads every identifier of the meter once.
func (m *meterPoller) Poll(ctx context.Context, p *device.Poll) {
	m.answered = false
	m.freezeTimes = nil
	p.Attr(attrVersionSpan, int(m.spec.version))
	_, err := m.bus.open(ctx, m.spec.poll.Timeout)
	if m.bus.fo != nil {
		p.Attr(attrServedBy, m.bus.servedBy())
	}
	if err != nil {
		p.Fail(openError(err))
		m.staleAll(p, 0)
		return
	}
	if !m.known && !m.discover(ctx, p) {
		m.staleAll(p, 0)
		return
	}
	p.Attr(attrAddress, m.address.String())
	for i := range m.reads {
		rs := &m.reads[i]
		err := m.readValues(ctx, p, rs)
		if err == nil || m.answered || ctx.Err() != nil {
			continue
		}
		if !device.Classify(err).Answered() {
			// The meter has not said a word this poll: do not spend the bus's time on the rest.
			m.staleAll(p, i+1)
			return
		}
	}
	if m.drift != nil {
		m.readClock(ctx, p)
	}
	// The load profile only from a meter that answered this poll (or has nothing else to read).
	if m.profile != nil && (m.answered || len(m.reads) == 0 && m.drift == nil) && ctx.Err() == nil {
		m.readLoadProfile(ctx, p)
	}
}

// staleAll marks every reading from read index `from` on (and the drift) as not read.
func (m *meterPoller) staleAll(p *device.Poll, from int) {
	for i := from; i < len(m.reads); i++ {
		m.stale(p, &m.reads[i])
	}
	if m.drift != nil {
		p.RecordStale(m.drift)
	}
}

// Readings stamped with their record's time are history: they are never marked stale.
func (m *meterPoller) stale(p *device.Poll, rs *readState) {
	if rs.fallback {
		for _, i := range rs.singles {
			rs.markStale(p, i)
		}
		return
	}
	for i, part := range rs.spec.parts {
		if !rs.spec.block || part.member < max(rs.last, 1) {
			rs.markStale(p, i)
		}
	}
}

// markStale marks part i's reading as not read, unless it is stamped with its record's time.
func (rs *readState) markStale(p *device.Poll, i int) {
	if rs.spec.parts[i].entry.Stamp == dlt645.StampNone {
		p.RecordStale(rs.series[i])
	}
}

// classify gives a transaction error its error.type.
func classify(err error) error {
	var me *dlt645.MeterError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &me):
		return device.NewError(device.ErrException, err)
	case errors.Is(err, dlt645.ErrChecksum):
		return device.NewError(device.ErrChecksum, err)
	case errors.Is(err, dlt645.ErrUnexpected), errors.Is(err, dlt645.ErrTooManyFrames):
		return device.NewError(device.ErrProtocol, err)
	case errors.Is(err, dlt645.ErrTimeout):
		return device.NewError(device.ErrTimeout, err)
	}
	return device.NewError(device.Classify(err), err)
}

// openError types a failure to open the bus: not_connected (as typed by the bus) for a DTU that has not
// dialled in, else connection.
func openError(err error) error {
	if device.Classify(err) == device.ErrNotConnected {
		return err
	}
	return device.NewError(device.ErrConnection, err)
}

// retryable tells whether another attempt may help.
func retryable(err error) bool {
	switch device.Classify(err) {
	case device.ErrTimeout, device.ErrConnection, device.ErrChecksum, device.ErrProtocol:
		return true
	}
	return false
}

// transact runs one request with retries. It records the attempts, the error and the line
// counters on q; the caller ends q.
func (m *meterPoller) transact(ctx context.Context, q *device.Request, do func(c *dlt645.Client) error) error {
	attempts := m.spec.poll.Retries + 1
	var err error
	for a := 0; a < attempts; a++ {
		if a > 0 {
			q.RetryAfter(err)
		}
		var c *dlt645.Client
		c, err = m.bus.open(ctx, m.spec.poll.Timeout)
		if err != nil {
			err = openError(err)
		} else {
			c.Timeout = m.spec.poll.Timeout
			before := c.Counts()
			err = classify(do(c))
			after := c.Counts()
			q.Attr(attrBytesSent, int64(after.BytesOut-before.BytesOut))
			q.Attr(attrBytesRecv, int64(after.BytesIn-before.BytesIn))
			if noise := after.Noise - before.Noise; noise > 0 {
				q.Attr(attrNoise, int64(noise))
			}
			if err != nil && device.Classify(err) == device.ErrConnection {
				m.bus.reset()
			}
		}
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if err == nil || device.Classify(err).Answered() {
		m.answered = true
	}
	return err
}

func controlCode(v dlt645.Version) string {
	if v == dlt645.V1997 {
		return "01"
	}
	return "11"
}

// discover asks the only meter of the bus for its address.
func (m *meterPoller) discover(ctx context.Context, p *device.Poll) bool {
	v := m.spec.version
	q := p.StartRequestAt(spanReadAddress, m.clock.Now())
	if v == dlt645.V1997 {
		q.Attr(attrControlCode, "01").Attr(attrDI, dlt645.DIForwardActive1997.Format(v))
	} else {
		q.Attr(attrControlCode, "13")
	}
	var a dlt645.Address
	err := m.transact(ctx, q, func(c *dlt645.Client) error {
		var err error
		a, err = c.ReadAddress(ctx, v)
		return err
	})
	if err != nil {
		q.EndAt(err, m.clock.Now())
		return false
	}
	q.Attr(attrAddress, a.String())
	q.EndAt(nil, m.clock.Now())
	m.address, m.known = a, true
	m.rec.SetResourceAttribute(attrMeterAddress, a.String())
	if m.profile != nil {
		m.profile.rec.SetResourceAttribute(attrMeterAddress, a.String())
	}
	m.logger.Info("Meter address discovered", zap.String(attrMeterAddress, a.String()))
	return true
}
