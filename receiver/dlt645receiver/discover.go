package dlt645receiver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Discovery: span, metric and attributes.
const (
	spanSearch = "dlt645.search"
	// MetricDiscoveryMeters is the number of meters the bus's search has found and polls.
	MetricDiscoveryMeters = "dlt645.discovery.meters"

	attrSearchFound   = "dlt645.search.found"   // meters that answered the search (listed ones too)
	attrSearchNew     = "dlt645.search.new"     // meters found that were not polled yet
	attrSearchStopped = "dlt645.search.stopped" // the bound that stopped the search early
	attrSearchShared  = "dlt645.search.shared"  // addresses two meters answer
)

// Discovery defaults and bounds.
const (
	defaultIDPrefix  = "meter-"
	defaultMaxMeters = 32
	defaultMaxFrames = 2000
	// An RS-485 segment carries up to 256 unit loads (1/8-load transceivers); a DL/T 645 search asks
	// 100 addresses per level, so a million requests is days at 2400 baud.
	maxMaxMeters = 256
	maxMaxFrames = 1000000
	minRescan    = time.Minute
)

// discoverSpec is a bus's `discover:` resolved.
type discoverSpec struct {
	id        string
	idPrefix  string
	maxMeters int
	maxFrames int
	rescan    time.Duration
	silence   time.Duration
	// template is every found meter's spec but for its address and identity
	template meterSpec
	// profile, version, identifiers: the template as written, for the device list logged
	profile     string
	version     string
	identifiers []string
	// listed: the addresses and ids the bus's meters (and the receiver's) take; a meter found at a
	// listed address is polled as listed, not again
	listed map[dlt645.Address]bool
	ids    device.IDs
}

// discover resolves the `discover:` of bus bi (whose listed meters are meters).
func (r *meterResolver) discover(d DiscoverConfig, bs *busSpec, meters []MeterConfig, bprefix string, bi int) (*discoverSpec, []error) {
	prefix := bprefix + ".discover."
	var errs []error
	ds := &discoverSpec{
		id:        device.LayerSet(fmt.Sprintf("dlt645-bus-%d", bi), d.ID),
		idPrefix:  device.LayerSet(defaultIDPrefix, d.IDPrefix),
		maxMeters: defaultMaxMeters, maxFrames: defaultMaxFrames,
		rescan: d.RescanInterval, silence: d.RescanAfterSilence,
		profile: d.Profile, version: d.Version,
		listed: map[dlt645.Address]bool{}, ids: r.ids,
	}
	if _, err := r.ids.Validate(bprefix+".discover", ds.id); err != nil {
		errs = append(errs, err)
	}
	if d.MaxMeters != 0 {
		ds.maxMeters = d.MaxMeters
	}
	if ds.maxMeters < 1 || ds.maxMeters > maxMaxMeters {
		errs = append(errs, fmt.Errorf("%smax_meters: must be between 1 and %d, got %d", prefix, maxMaxMeters, ds.maxMeters))
	}
	if d.MaxFrames != 0 {
		ds.maxFrames = d.MaxFrames
	}
	if ds.maxFrames < 1 || ds.maxFrames > maxMaxFrames {
		errs = append(errs, fmt.Errorf("%smax_frames: must be between 1 and %d requests per search, got %d", prefix, maxMaxFrames, ds.maxFrames))
	}
	if d.RescanInterval < 0 || (d.RescanInterval > 0 && d.RescanInterval < minRescan) {
		errs = append(errs, fmt.Errorf("%srescan_interval: must be 0 (no rescan) or at least %s, got %s", prefix, minRescan, d.RescanInterval))
	}
	if d.RescanAfterSilence < 0 || (d.RescanAfterSilence > 0 && d.RescanAfterSilence < minRescan) {
		errs = append(errs, fmt.Errorf("%srescan_after_silence: must be 0 (never) or at least %s, got %s", prefix, minRescan, d.RescanAfterSilence))
	}
	for i, m := range meters {
		if strings.EqualFold(strings.TrimSpace(m.Address), "discover") {
			errs = append(errs, fmt.Errorf("%s.meters[%d].address: \"discover\" is for the only meter of a bus; this bus has discover: (list the meter with its address, or drop it: the search finds it)", bprefix, i))
			continue
		}
		if a, err := dlt645.ParseAddress(m.Address); err == nil {
			ds.listed[a] = true
		}
	}
	for _, ic := range d.Identifiers {
		ds.identifiers = append(ds.identifiers, ic.DI)
	}
	// discover: true keeps the address out of the template's identity; each meter found sets its own.
	ds.template = meterSpec{location: r.location, discover: true}
	errs = append(errs, r.meterKeys(&ds.template, MeterConfig{MeterKeys: d.MeterKeys}, bs, prefix)...)
	return ds, errs
}

// meterAt is the spec of the meter found at address a.
func (ds *discoverSpec) meterAt(a dlt645.Address, endpoint string) meterSpec {
	s := ds.template
	s.address, s.discover = a, false
	s.reads = slices.Clone(ds.template.reads)
	s.identity.ID = ds.idPrefix + a.String()
	s.identity.Address = fmt.Sprintf("%s/%s", strings.TrimSuffix(endpoint, "/"), a)
	s.identity.Attributes = maps.Clone(ds.template.identity.Attributes)
	s.identity.Attributes[attrMeterAddress] = a.String()
	return s
}

// discovery searches one bus for its meters and polls those found: the search is a device of its own
// (its loop on a goroutine of its own), the meters found are polled one after the other on the loop of
// the template's poll interval. Both take the bus's link for each request or poll, so the bus's listed
// meters, and other receivers on the same port, keep their turns during a search.
type discovery struct {
	spec   *discoverSpec
	bus    *bus
	r      *dlt645Receiver
	rec    *device.Recorder
	found  *device.Series
	logger *zap.Logger
	wake   chan struct{} // a meter has been silent for rescan_after_silence

	mu     sync.Mutex
	meters []*foundMeter
	known  map[dlt645.Address]bool // listed and found
	// ok: the last search ran (an empty bus included); false after a line failure, retried at the
	// template's poll interval
	ok bool
}

// foundMeter is one meter the search found, with its runner.
type foundMeter struct {
	poller   *meterPoller
	runner   *device.Runner
	answered time.Time // when it last answered (or was found)
	silent   bool      // rescan_after_silence has asked for a search since
}

func (r *dlt645Receiver) addDiscovery(ds *discoverSpec, b *bus) {
	id := device.Identity{ID: ds.id, Protocol: device.ProtocolDLT645, Address: b.spec.endpoint,
		Attributes: map[string]string{attrVersion: ds.template.version.String()}}
	d := &discovery{
		spec:   ds,
		bus:    b,
		r:      r,
		rec:    r.Recorder(id),
		logger: r.Logger().With(zap.String("endpoint", b.spec.endpoint)),
		wake:   make(chan struct{}, 1),
		known:  maps.Clone(ds.listed),
	}
	d.found = d.rec.Series(MetricDiscoveryMeters, "{meter}", "Meters the bus's address search found and polls (the bus's listed meters not counted).", device.KindGauge, nil)
	pc := ds.template.poll
	r.AddSource(d.rec, d, pc, nil, d.searchLoop)
	r.Scheduler().AddLoop(poll.Loop{Interval: pc.Interval, Jitter: pc.Jitter, Run: d.pollLoop})
}

// searchLoop searches at start, then again at rescan_interval, when a meter has been silent for
// rescan_after_silence, and at the poll interval while the line fails.
func (d *discovery) searchLoop(ctx context.Context, run *device.Runner, _ *poll.Ticker) {
	clk := d.r.Clock()
	for {
		run.Run(ctx, d)
		d.mu.Lock()
		wait := d.spec.rescan
		if !d.ok {
			wait = d.spec.template.poll.Interval
		}
		d.mu.Unlock()
		var after <-chan time.Time
		stop := func() {}
		if wait > 0 {
			after, stop = clk.After(wait)
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-after:
		case <-d.wake:
		}
		stop()
	}
}

// Poll runs one search of the bus: one dlt645.search span for all its requests.
func (d *discovery) Poll(ctx context.Context, p *device.Poll) {
	clk := d.r.Clock()
	q := p.StartRequestAt(spanSearch, clk.Now())
	q.Attr(attrVersionSpan, int(d.spec.template.version))
	timeout := d.spec.template.poll.Timeout
	x := func(ctx context.Context, req dlt645.Frame) (dlt645.Frame, dlt645.Heard, error) {
		// One request at a time through the bus's link: the listed meters' polls come between.
		if err := d.bus.link.Acquire(ctx); err != nil {
			return dlt645.Frame{}, dlt645.HeardNothing, err
		}
		defer d.bus.link.Release()
		c, err := d.bus.open(ctx, timeout)
		if err != nil {
			return dlt645.Frame{}, dlt645.HeardNothing, openError(err)
		}
		c.Timeout = timeout
		f, h, err := dlt645.ClientSearch(c)(ctx, req)
		if err != nil && device.Classify(classify(err)) == device.ErrConnection {
			d.bus.reset()
		}
		return f, h, err
	}
	d.mu.Lock()
	listed := len(d.known) - len(d.meters)
	room := d.spec.maxMeters - len(d.meters)
	d.mu.Unlock()
	if room <= 0 {
		q.Attr(attrSearchStopped, "max_meters").EndAt(nil, clk.Now())
		p.RecordInt(d.found, time.Time{}, int64(d.spec.maxMeters))
		d.logger.Debug("Meter search skipped: max_meters meters are polled already")
		return
	}
	// The listed meters answer too: room for them besides max_meters found.
	res, err := dlt645.Search(ctx, x, dlt645.SearchOptions{Version: d.spec.template.version, MaxMeters: room + listed, MaxFrames: d.spec.maxFrames})
	q.Attr(attrFrames, res.Frames).Attr(attrSearchFound, len(res.Meters))
	if res.Stopped != "" {
		q.Attr(attrSearchStopped, res.Stopped)
	}
	if len(res.Shared) > 0 {
		q.Attr(attrSearchShared, res.Shared[0].String())
	}
	added := d.add(res.Meters)
	q.Attr(attrSearchNew, len(added))
	if err != nil {
		q.EndAt(classify(err), clk.Now())
	} else {
		q.EndAt(nil, clk.Now())
	}
	d.mu.Lock()
	d.ok = err == nil
	n := len(d.meters)
	d.mu.Unlock()
	p.RecordInt(d.found, time.Time{}, int64(n))
	d.report(res, err, added)
}

// add makes pollers of the meters found that are not polled yet, up to max_meters; it returns them.
func (d *discovery) add(found []dlt645.Address) []dlt645.Address {
	d.mu.Lock()
	defer d.mu.Unlock()
	var added []dlt645.Address
	for _, a := range found {
		if d.known[a] || len(d.meters) >= d.spec.maxMeters {
			continue
		}
		spec := d.spec.meterAt(a, d.bus.spec.endpoint)
		if !d.r.claimID(spec.identity.ID, d.spec.ids) {
			// A listed meter, or a meter found on another bus at the same address, has this id: the
			// found one would be mistaken for it.
			d.logger.Warn("Meter found, but its device id is taken: not polled (give the buses different discover.id_prefix)",
				zap.String(attrMeterAddress, a.String()), zap.String("device.id", spec.identity.ID))
			d.known[a] = true
			continue
		}
		d.known[a] = true
		rec := d.r.Recorder(spec.identity)
		m := newMeterPoller(&spec, d.bus, rec, d.r.Clock(), d.r.Logger())
		d.r.addLoadProfile(m, &spec)
		run := d.r.Runner(rec, m) // its state feeds the component status
		d.meters = append(d.meters, &foundMeter{poller: m, runner: run, answered: d.r.Clock().Now()})
		added = append(added, a)
	}
	return added
}

// report logs a search: what it found, and the found meters as a device list to paste under the
// bus's `meters:` (one entry).
func (d *discovery) report(res dlt645.SearchResult, err error, added []dlt645.Address) {
	fields := []zap.Field{zap.Int("found", len(res.Meters)), zap.Int("new", len(added)), zap.Int("requests", res.Frames)}
	if res.Stopped != "" {
		fields = append(fields, zap.String("stopped_at", res.Stopped))
	}
	if len(res.Shared) > 0 {
		fields = append(fields, zap.Stringers("shared_addresses", res.Shared))
	}
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		return // shutting down
	case err != nil:
		d.logger.Warn("Meter search failed; found meters are polled, the search is repeated", append(fields, zap.Error(err))...)
		return
	case res.Stopped != "":
		d.logger.Warn("Meter search stopped early: the list is partial (raise discover.max_frames or max_meters)", fields...)
	case len(res.Shared) > 0:
		d.logger.Warn("Two meters answer one address: give one another address with the meter's own tool", fields...)
	}
	if len(added) == 0 {
		d.logger.Debug("Meter search found nothing new", fields...)
		return
	}
	d.logger.Info("Meters found on the bus", append(fields, zap.String("meters", d.deviceList()))...)
}

// deviceList is every meter found as `meters:` entries of the bus.
func (d *discovery) deviceList() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	b.WriteString("meters:\n")
	for _, m := range d.meters {
		fmt.Fprintf(&b, "  - {id: %s, address: %q", yamlScalar(m.poller.spec.identity.ID), m.poller.address.String())
		if d.spec.version != "" {
			fmt.Fprintf(&b, ", version: %q", d.spec.version)
		}
		if d.spec.profile != "" {
			fmt.Fprintf(&b, ", profile: %s", yamlScalar(d.spec.profile))
		}
		if len(d.spec.identifiers) > 0 {
			q := make([]string, len(d.spec.identifiers))
			for i, di := range d.spec.identifiers {
				q[i] = fmt.Sprintf("%q", di)
			}
			fmt.Fprintf(&b, ", identifiers: [%s]", strings.Join(q, ", "))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// yamlScalar quotes s unless it is a plain word that starts with a letter (digits would read as a
// number: an empty id_prefix makes ids of bare addresses).
func yamlScalar(s string) string {
	letter := func(c rune) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	plain := func(c rune) bool { return letter(c) || c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' }
	if s == "" || !letter(rune(s[0])) {
		return fmt.Sprintf("%q", s)
	}
	for _, c := range s {
		if !plain(c) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// claimID takes a found meter's device id unless a listed meter (ids) or another found one has it.
func (r *dlt645Receiver) claimID(id string, ids device.IDs) bool {
	r.foundMu.Lock()
	defer r.foundMu.Unlock()
	if _, listed := ids[id]; listed || r.foundIDs[id] {
		return false
	}
	if r.foundIDs == nil {
		r.foundIDs = map[string]bool{}
	}
	r.foundIDs[id] = true
	return true
}

// pollLoop polls the meters found, one after the other, at each tick of the template's interval.
func (d *discovery) pollLoop(ctx context.Context, t *poll.Ticker) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		d.mu.Lock()
		meters := slices.Clone(d.meters)
		d.mu.Unlock()
		for _, m := range meters {
			if err := d.bus.link.Acquire(ctx); err != nil {
				return
			}
			m.runner.Run(ctx, m.poller)
			d.bus.link.Release()
			d.heard(m)
		}
		t.Next()
	}
}

// heard notes whether m answered its poll, and asks for a search once it has been silent for
// rescan_after_silence.
func (d *discovery) heard(m *foundMeter) {
	now := d.r.Clock().Now()
	switch {
	case m.poller.answered:
		m.answered, m.silent = now, false
	case d.spec.silence > 0 && !m.silent && now.Sub(m.answered) >= d.spec.silence:
		m.silent = true
		d.logger.Info("A meter found has been silent for rescan_after_silence: searching the bus again",
			zap.String("device.id", m.poller.spec.identity.ID), zap.Duration("silent_for", now.Sub(m.answered)))
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}
