package dlt645receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// LoadProfileConfig makes the receiver read the meter's load profile (06…) without gaps: the time of
// the last record delivered is kept in a storage extension, and each poll reads the records since.
type LoadProfileConfig struct {
	// Class is the record class read: 0 (default) every class the meter records, 1 to 6 one class.
	Class int `mapstructure:"class"`
	// Interval is how often the meter records (its load-profile period, e.g. 15m); required. No read
	// is made before a new record is due.
	Interval time.Duration `mapstructure:"interval"`
	// MaxRecordsPerPoll bounds the records read per poll (default 16), so a catch-up after an outage
	// spreads over several polls and the live readings keep their period.
	MaxRecordsPerPoll int `mapstructure:"max_records_per_poll"`
	// MaxBackfill is how far back the first read goes when there is no checkpoint (first start, or
	// the stored one is missing or unreadable): from now minus this (default 24h).
	MaxBackfill time.Duration `mapstructure:"max_backfill"`
	// Storage is the storage extension (file_storage) that keeps the checkpoint. Without it the
	// checkpoint lives in memory only and a restart starts from now minus max_backfill.
	Storage *component.ID `mapstructure:"storage"`
}

// maxRecordsPerRequest is the most records one load-profile request can ask for (NN is two BCD digits).
const maxRecordsPerRequest = 99

// AttrRecord marks the points of the load profile: they are history, stamped with the record time,
// and kept apart from the live series of the same metric (a backend refuses older points in a live
// series without an out-of-order window).
const (
	attrRecord        = "dlt645.record"
	recordLoadProfile = "load_profile"
)

type loadProfileSpec struct {
	di          dlt645.DI
	class       int
	interval    time.Duration
	maxRecords  int
	maxBackfill time.Duration
	storage     *component.ID
}

func (c *LoadProfileConfig) resolve(prefix string) (*loadProfileSpec, []error) {
	if c == nil {
		return nil, nil
	}
	p := prefix + "load_profile."
	var errs []error
	if c.Class < 0 || c.Class > 6 {
		errs = append(errs, fmt.Errorf("%sclass: must be 0 (every class) or 1 to 6, got %d", p, c.Class))
	}
	if c.Interval < time.Minute || c.Interval%time.Minute != 0 {
		errs = append(errs, fmt.Errorf("%sinterval: required, the meter's recording period in whole minutes (e.g. 15m), got %s", p, c.Interval))
	}
	s := &loadProfileSpec{class: c.Class, interval: c.Interval, maxRecords: c.MaxRecordsPerPoll, maxBackfill: c.MaxBackfill, storage: c.Storage}
	if s.maxRecords == 0 {
		s.maxRecords = 16
	}
	if s.maxRecords < 1 || s.maxRecords > 10000 {
		errs = append(errs, fmt.Errorf("%smax_records_per_poll: must be 1 to 10000, got %d", p, c.MaxRecordsPerPoll))
	}
	if s.maxBackfill == 0 {
		s.maxBackfill = 24 * time.Hour
	}
	if s.maxBackfill < 0 {
		errs = append(errs, fmt.Errorf("%smax_backfill: must be positive, got %s", p, c.MaxBackfill))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s.di = dlt645.DI(0x06000000 | uint32(c.Class)<<16 | uint32(dlt645.ProfileFrom))
	return s, nil
}

// checkpoint is what the storage keeps per meter.
type checkpoint struct {
	Last time.Time `json:"last"`
}

// loadProfile is one meter's backfill: it reads in Poll (holding the bus) and delivers in Finish.
type loadProfile struct {
	spec   *loadProfileSpec
	key    string
	client storage.Client // nil: checkpoint in memory only
	// storageErr: the storage named could not give a client (its file is corrupt or unreadable)
	storageErr error
	emit       func(ctx context.Context, md pmetric.Metrics) error
	rec        *device.Recorder
	series     [6][]*device.Series
	entries    [6][]dlt645.Entry // of series: a value is rescaled to its metric's unit (kWh → Wh)
	logger     *zap.Logger

	loaded  bool
	last    time.Time        // time of the last record delivered
	pending []profileReading // read, not yet accepted by the pipeline
}

type profileReading struct {
	at  time.Time
	rec dlt645.ProfileRecord
}

func newLoadProfile(spec *loadProfileSpec, id device.Identity, rec *device.Recorder, client storage.Client, emit func(context.Context, pmetric.Metrics) error, logger *zap.Logger) *loadProfile {
	lp := &loadProfile{spec: spec, key: "load_profile/" + id.ID, client: client, emit: emit, rec: rec, logger: logger}
	for c := 1; c <= 6; c++ {
		for _, e := range dlt645.ProfileClass(c) {
			o := e.Readings()[0]
			attrs := map[string]string{attrRecord: recordLoadProfile}
			for _, a := range o.Attributes {
				attrs[a.Key] = a.Value
			}
			kind := device.KindGauge
			if o.Kind == dlt645.Sum {
				kind = device.KindSum
			}
			desc := describe(o.Metric)
			if desc == "" {
				desc = e.Name
			}
			lp.series[c-1] = append(lp.series[c-1], rec.Series(o.Metric, o.Unit, desc, kind, attrs))
			lp.entries[c-1] = append(lp.entries[c-1], e)
		}
	}
	return lp
}

// load reads the checkpoint once; missing or unreadable, the backfill starts at now - max_backfill.
func (lp *loadProfile) load(ctx context.Context, now time.Time) {
	if lp.loaded {
		return
	}
	lp.loaded = true
	start := now.Add(-lp.spec.maxBackfill).Truncate(time.Minute).Add(-time.Minute)
	if lp.client == nil {
		if lp.storageErr != nil {
			lp.logger.Warn("Load-profile storage unusable; checkpoint kept in memory only, backfilling from now minus max_backfill",
				zap.Error(lp.storageErr), zap.Time("from", start.Add(time.Minute)))
		}
		lp.last = start
		return
	}
	b, err := lp.client.Get(ctx, lp.key)
	var cp checkpoint
	switch {
	case err != nil:
		lp.logger.Warn("Load-profile checkpoint unreadable; backfilling from now minus max_backfill", zap.Error(err), zap.Time("from", start.Add(time.Minute)))
	case b == nil:
		lp.logger.Info("No load-profile checkpoint; backfilling from now minus max_backfill", zap.Time("from", start.Add(time.Minute)))
	case json.Unmarshal(b, &cp) != nil || cp.Last.IsZero():
		lp.logger.Warn("Load-profile checkpoint corrupt; backfilling from now minus max_backfill", zap.ByteString("stored", b), zap.Time("from", start.Add(time.Minute)))
	default:
		lp.last = cp.Last
		lp.logger.Info("Load profile resumes after its checkpoint", zap.Time("last", cp.Last))
		return
	}
	lp.last = start
}

// read reads the records after the checkpoint, up to max_records_per_poll, holding the bus. Records
// not yet accepted by the pipeline are delivered first: nothing more is read until they are.
func (m *meterPoller) readLoadProfile(ctx context.Context, p *device.Poll) {
	lp := m.profile
	now := m.clock.Now()
	lp.load(ctx, now)
	if len(lp.pending) > 0 || now.Before(lp.last.Add(lp.spec.interval)) {
		return // no new record is due yet
	}
	from := lp.last.Add(time.Minute) // record times have minute resolution
	for len(lp.pending) < lp.spec.maxRecords && ctx.Err() == nil {
		n := min(maxRecordsPerRequest, lp.spec.maxRecords-len(lp.pending))
		q := p.StartRequestAt(spanRead, m.clock.Now()).
			Attr(attrAddress, m.address.String()).
			Attr(attrControlCode, "11").
			Attr(attrDI, lp.spec.di.Format(dlt645.V2007))
		var recs []dlt645.ProfileRecord
		var res dlt645.Result
		err := m.transact(ctx, q, func(c *dlt645.Client) error {
			var err error
			recs, res, err = c.ReadLoadProfile(ctx, m.address, lp.spec.di, n, from.In(m.spec.location))
			return err
		})
		if res.Frames > 0 {
			q.Attr(attrFrames, res.Frames)
		}
		var me *dlt645.MeterError
		if errors.As(err, &me) && me.Word&0x02 != 0 {
			// "no requested data": no record since from yet.
			q.Attr(attrErrorWord, fmt.Sprintf("%02X", byte(me.Word)))
			q.EndAt(nil, m.clock.Now())
			return
		}
		q.EndAt(err, m.clock.Now())
		if err != nil {
			// The records are read again from the same checkpoint at the next poll.
			return
		}
		got := 0
		for _, r := range recs {
			if r.Bad {
				continue
			}
			at, terr := r.Time.Time(m.spec.location)
			if terr != nil || !at.After(from.Add(-time.Minute)) || (len(lp.pending) > 0 && !at.After(lp.pending[len(lp.pending)-1].at)) {
				continue // out of order or before the checkpoint: never sent twice
			}
			lp.pending = append(lp.pending, profileReading{at: at, rec: r})
			from = at.Add(time.Minute)
			got++
		}
		if len(recs) < n || got == 0 {
			return // the meter has no more
		}
	}
}

// Finish delivers the records read this poll, with their record times, and moves the checkpoint
// once the pipeline accepted them. The checkpoint is written after the hand-over: a crash between the
// two sends the batch again at the next start (at-least-once).
func (m *meterPoller) Finish(_ *device.Poll) {
	lp := m.profile
	if lp == nil || len(lp.pending) == 0 {
		return
	}
	ctx := context.Background()
	now := m.clock.Now()
	p := lp.rec.Begin(now)
	for _, r := range lp.pending {
		for c, vals := range r.rec.Values {
			for i, v := range vals {
				if i < len(lp.series[c]) {
					e := lp.entries[c][i]
					v = dlt645.Rescale(v, e.Format.Decimals, e.Exp)
					if e.Kind == dlt645.Sum && dlt645.WholeAfter(e.Format, e.Exp) {
						p.RecordInt(lp.series[c][i], r.at, int64(v)) // energies in Wh, as the live reads send them
						continue
					}
					p.Record(lp.series[c][i], r.at, v)
				}
			}
		}
	}
	md, _ := p.End(now, poll.BreakerClosed)
	if err := lp.emit(ctx, md); err != nil {
		lp.logger.Warn("The pipeline refused load-profile records; they are sent again at the next poll", zap.Int("records", len(lp.pending)), zap.Error(err))
		return
	}
	last := lp.pending[len(lp.pending)-1].at
	lp.pending = lp.pending[:0]
	lp.last = last
	if lp.client == nil {
		return
	}
	b, _ := json.Marshal(checkpoint{Last: last})
	if err := lp.client.Set(ctx, lp.key, b); err != nil {
		lp.logger.Warn("Load-profile checkpoint not stored; after a restart the records since the stored one are sent again", zap.Error(err))
	}
}

// profileSink hands load-profile records to the metrics pipeline and reports whether it accepted
// them (the fleet's Emit does not: a refused live poll is simply replaced by the next).
type profileSink struct {
	next consumer.Metrics
	obs  *receiverhelper.ObsReport
}

func (s *profileSink) emit(ctx context.Context, md pmetric.Metrics) error {
	if s.next == nil {
		return errors.New("no metrics pipeline")
	}
	n := md.DataPointCount()
	if s.obs != nil {
		ctx = s.obs.StartMetricsOp(ctx)
	}
	err := s.next.ConsumeMetrics(ctx, md)
	if s.obs != nil {
		s.obs.EndMetricsOp(ctx, "pdata", n, err)
	}
	return err
}

// storageClients opens, at Start, one client of each storage extension the meters' (and the discover templates') load_profile
// names; a missing extension or one that is no storage fails the start, naming the meter. A storage
// that cannot open its file (corrupt, unreadable) does not: its meters keep their checkpoint in
// memory and backfill from now minus max_backfill, and say so (live readings matter more).
func (r *dlt645Receiver) storageClients(ctx context.Context, host component.Host) error {
	r.storage = map[component.ID]storage.Client{}
	r.storageErrs = map[component.ID]error{}
	var errs []error
	type user struct {
		lp  *loadProfileSpec
		key string
	}
	var users []user
	for bi := range r.specs {
		for mi := range r.specs[bi].meters {
			users = append(users, user{r.specs[bi].meters[mi].loadProfile, fmt.Sprintf("buses[%d].meters[%d].load_profile.storage", bi, mi)})
		}
		if ds := r.specs[bi].discover; ds != nil {
			users = append(users, user{ds.template.loadProfile, fmt.Sprintf("buses[%d].discover.load_profile.storage", bi)})
		}
	}
	for _, u := range users {
		lp, key := u.lp, u.key
		if lp == nil || lp.storage == nil {
			continue
		}
		if _, ok := r.storage[*lp.storage]; ok {
			continue
		}
		if _, ok := r.storageErrs[*lp.storage]; ok {
			continue
		}
		ext, ok := host.GetExtensions()[*lp.storage]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: extension %q not found (add it to service::extensions)", key, lp.storage))
			continue
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: extension %q is not a storage extension (e.g. file_storage)", key, lp.storage))
			continue
		}
		c, err := se.GetClient(ctx, component.KindReceiver, r.setID, "load_profile")
		if err != nil {
			r.storageErrs[*lp.storage] = err
			continue
		}
		r.storage[*lp.storage] = c
	}
	if err := errors.Join(errs...); err != nil {
		_ = r.closeStorage(ctx) // the start fails with errs already
		return err
	}
	return nil
}

func (r *dlt645Receiver) closeStorage(ctx context.Context) error {
	var errs []error
	for id, c := range r.storage {
		if err := c.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("load_profile storage %s: %w", id, err))
		}
	}
	r.storage = nil
	return errors.Join(errs...)
}

// addLoadProfile gives meter poller m its backfill, if configured.
func (r *dlt645Receiver) addLoadProfile(m *meterPoller, ms *meterSpec) {
	if ms.loadProfile == nil {
		return
	}
	var client storage.Client
	var storageErr error
	if ms.loadProfile.storage != nil {
		client, storageErr = r.storage[*ms.loadProfile.storage], r.storageErrs[*ms.loadProfile.storage]
	}
	// The records' own recorder: no health metrics, no traces, the meter's resource.
	rec := device.NewRecorder(ms.identity, device.RecorderSettings{Scope: device.Scope{Name: metadata.ScopeName, Version: r.version}, Start: r.Clock().Now()})
	m.profile = newLoadProfile(ms.loadProfile, ms.identity, rec, client, r.profileSink.emit, m.logger)
	m.profile.storageErr = storageErr
}
