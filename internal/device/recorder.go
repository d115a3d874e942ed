package device

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Health metric names, identical in every receiver.
const (
	MetricUp           = "iiot.device.up"
	MetricPollDuration = "iiot.device.poll.duration"
	MetricPollErrors   = "iiot.device.poll.errors"
	MetricRequests     = "iiot.device.requests"
	MetricBreakerState = "iiot.device.breaker.state"
	AttrErrorType      = "error.type"
	// AttrRefusedReadings on a poll span: readings left out because the device refused them earlier.
	AttrRefusedReadings = "iiot.poll.refused_readings"
	// AttrHeldReadings on a poll span: readings not sent because they did not move (report by exception).
	AttrHeldReadings = "iiot.poll.held_readings"
)

// HealthMetrics says which health metrics a recorder writes. It is not a config key: every receiver
// declares the health metrics in its metadata.yaml, and its `metrics` key is the generated
// metadata.MetricsConfig, whose Enabled flags the receiver copies here.
type HealthMetrics struct {
	Up, PollDuration, PollErrors, Requests, BreakerState bool
}

// AllHealthMetrics enables every health metric (the default of every receiver's metadata.yaml).
func AllHealthMetrics() HealthMetrics {
	return HealthMetrics{Up: true, PollDuration: true, PollErrors: true, Requests: true, BreakerState: true}
}

// Scope names the instrumentation scope of a receiver's data.
type Scope struct {
	Name    string
	Version string
}

// Series is one reading's metric and attributes, registered once so that polls do no map work.
type Series struct {
	metric int
	attrs  pcommon.Map // built once, copied into each data point
	sum    bool
	report *reportState // nil: every reading is sent
}

type metricDef struct {
	name, unit, description string
	kind                    MetricKind
}

// Recorder turns the polls of one device into metrics and traces. It keeps the device's cumulative
// counters, so it belongs to the one goroutine that polls the device.
type Recorder struct {
	identity      Identity
	scope         Scope
	resource      pcommon.Resource
	traceResource pcommon.Resource
	health        HealthMetrics
	sampleRatio   float64
	startTime     pcommon.Timestamp
	// lastMetricTime is the previous poll's metric timestamp, truncated to the millisecond.
	lastMetricTime pcommon.Timestamp

	metrics []metricDef
	byName  map[string]int

	requests int64
	errors   map[ErrorType]int64

	// What the health series sent last, so that a series that did not change waits for healthInterval
	// (see sendHealth). healthAt is the start of the last poll that sent every health series, prevPoll
	// the start of the previous poll; pollRequests is the number of requests of the previous poll.
	healthInterval time.Duration
	healthAt       time.Time
	prevPoll       time.Time
	pollRequests   int64
	sentState      poll.BreakerState
	sentErrors     map[ErrorType]int64

	poll Poll // reused by every poll of the device

	// emitted: some poll was emitted. oldResource, when hasOld, is the resource before a resource
	// attribute changed: the next poll also ends its series (stale markers) under it.
	emitted     bool
	hasOld      bool
	oldResource pcommon.Resource
}

// RecorderSettings configures a Recorder.
type RecorderSettings struct {
	Scope   Scope
	Health  HealthMetrics
	Traces  TracesConfig
	Service string // service.name of the poll traces' resource (the receiver's component id)
	Start   time.Time
	// HealthInterval is the longest a health series that did not change goes unsent (poll.health_interval);
	// 0 sends every health series at every poll.
	HealthInterval time.Duration
}

// NewRecorder returns the recorder of one device.
func NewRecorder(id Identity, set RecorderSettings) *Recorder {
	r := &Recorder{
		identity:    id,
		scope:       set.Scope,
		resource:    pcommon.NewResource(),
		health:      set.Health,
		sampleRatio: set.Traces.SuccessSampleRatio,
		startTime:   pcommon.NewTimestampFromTime(set.Start),
		byName:      map[string]int{},
		errors:      map[ErrorType]int64{},

		healthInterval: set.HealthInterval,
		sentErrors:     map[ErrorType]int64{},
	}
	id.CopyTo(r.resource)
	r.traceResource = pcommon.NewResource()
	r.resource.CopyTo(r.traceResource)
	if _, ok := r.traceResource.Attributes().Get("service.name"); !ok && set.Service != "" {
		r.traceResource.Attributes().PutStr("service.name", set.Service)
	}
	r.poll.r = r
	return r
}

// SetResourceAttribute sets or changes one resource attribute of the device's metrics and traces from
// the next poll on (e.g. a serial number or firmware version read from the device). The device.*
// attributes of the identity are not to be changed this way. Call it from the polling goroutine.
//
// When the value changes after polls were emitted, the next poll also carries a stale marker
// (NoRecordedValue) for each of its series under the old resource: they end at once, instead of
// living on beside the new ones for Prometheus' lookback.
func (r *Recorder) SetResourceAttribute(key, value string) {
	if cur, ok := r.resource.Attributes().Get(key); ok && cur.Str() == value {
		return
	}
	if r.emitted && !r.hasOld {
		r.oldResource = pcommon.NewResource()
		r.resource.CopyTo(r.oldResource)
		r.hasOld = true
	}
	r.resource.Attributes().PutStr(key, value)
	r.traceResource.Attributes().PutStr(key, value)
}

// Identity returns the device's identity.
func (r *Recorder) Identity() Identity { return r.identity }

// Series registers a reading. Readings of the same metric name share one metric (the first
// registration's unit, description and kind win; receivers validate that they agree).
func (r *Recorder) Series(name, unit, description string, kind MetricKind, attrs map[string]string) *Series {
	i, ok := r.byName[name]
	if !ok {
		i = len(r.metrics)
		r.metrics = append(r.metrics, metricDef{name: name, unit: unit, description: description, kind: kind})
		r.byName[name] = i
	}
	s := &Series{metric: i, attrs: pcommon.NewMap(), sum: r.metrics[i].kind == KindSum}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.attrs.EnsureCapacity(len(keys))
	for _, k := range keys {
		s.attrs.PutStr(k, attrs[k])
	}
	return s
}

// Begin starts a poll at now. The returned Poll is valid until End or Skipped is called again.
func (r *Recorder) Begin(now time.Time) *Poll {
	p := &r.poll
	p.start = now
	p.points = p.points[:0]
	p.spans = p.spans[:0]
	p.pollAttrs = p.pollAttrs[:0]
	p.answered, p.failed, p.requested, p.hadError = false, false, false, false
	p.pollErr, p.lastErr = nil, nil
	p.readingErrs, p.lastReadingErr, p.refused, p.held = 0, "", 0, 0
	p.healthDue = r.healthDue(now)
	p.requestsBefore = r.requests
	var id [16]byte
	// Trace and span ids must be unique, not secret: the fast generator is enough.
	binary.BigEndian.PutUint64(id[:8], rand.Uint64())
	binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	p.traceID = pcommon.TraceID(id)
	p.spanID = newSpanID()
	return p
}

func newSpanID() pcommon.SpanID {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], rand.Uint64()|1)
	return pcommon.SpanID(id)
}

// Skipped records a poll that the open breaker did not let through: health metrics only.
func (r *Recorder) Skipped(now time.Time, state poll.BreakerState) pmetric.Metrics {
	md, sm := r.newMetrics()
	ts := r.metricTime(now)
	r.appendHealth(sm.Metrics(), ts, now, r.healthDue(now), 0, false, -1, state, nil)
	r.endOldSeries(md, ts)
	return md
}

// endOldSeries appends, after a resource attribute changed, a stale marker at ts for every series of
// md under the resource as it was before; and notes that a poll was emitted.
func (r *Recorder) endOldSeries(md pmetric.Metrics, ts pcommon.Timestamp) {
	r.emitted = true
	if !r.hasOld {
		return
	}
	r.hasOld = false
	src := md.ResourceMetrics().At(0).ScopeMetrics().At(0)
	rm := md.ResourceMetrics().AppendEmpty()
	r.oldResource.MoveTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	src.Scope().CopyTo(sm.Scope())
	noValue := pmetric.DefaultDataPointFlags.WithNoRecordedValue(true)
	for i := 0; i < src.Metrics().Len(); i++ {
		m := src.Metrics().At(i)
		out := sm.Metrics().AppendEmpty()
		out.SetName(m.Name())
		out.SetUnit(m.Unit())
		out.SetDescription(m.Description())
		var from, to pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			from, to = m.Gauge().DataPoints(), out.SetEmptyGauge().DataPoints()
		case pmetric.MetricTypeSum:
			s := out.SetEmptySum()
			s.SetIsMonotonic(m.Sum().IsMonotonic())
			s.SetAggregationTemporality(m.Sum().AggregationTemporality())
			from, to = m.Sum().DataPoints(), s.DataPoints()
		default:
			continue
		}
		for j := 0; j < from.Len(); j++ {
			dp := to.AppendEmpty()
			from.At(j).Attributes().CopyTo(dp.Attributes())
			dp.SetStartTimestamp(from.At(j).StartTimestamp())
			dp.SetTimestamp(ts)
			dp.SetFlags(noValue)
		}
	}
}

// metricTime is the timestamp of a poll's health metrics (and of readings without their own time):
// at millisecond resolution, strictly after the previous poll's. Prometheus keeps milliseconds and
// refuses a whole remote-write request holding two different values of a series at one timestamp,
// which polls that take microseconds (OPC UA notifications) would otherwise produce.
func (r *Recorder) metricTime(now time.Time) pcommon.Timestamp {
	ts := pcommon.NewTimestampFromTime(now)
	if ts < r.lastMetricTime+pcommon.Timestamp(time.Millisecond) {
		ts = r.lastMetricTime + pcommon.Timestamp(time.Millisecond)
	}
	r.lastMetricTime = ts - ts%pcommon.Timestamp(time.Millisecond)
	return ts
}

// healthCount is the number of health metrics a poll can carry.
func (r *Recorder) healthCount() int {
	n := 0
	for _, on := range []bool{r.health.Up, r.health.PollDuration, r.health.PollErrors, r.health.Requests, r.health.BreakerState} {
		if on {
			n++
		}
	}
	return n
}

func (r *Recorder) newMetrics() (pmetric.Metrics, pmetric.ScopeMetrics) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	r.resource.CopyTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(r.scope.Name)
	sm.Scope().SetVersion(r.scope.Version)
	return md, sm
}

// healthDue tells whether the poll starting at is the one to send every health series again: the
// first poll, every poll with a health interval of 0, and the poll nearest to one health interval
// after the last that sent them all (a poll is due when the next one, a gap later, would be further
// from it; so with a poll interval of at least the health interval every poll is).
func (r *Recorder) healthDue(at time.Time) bool {
	gap := at.Sub(r.prevPoll)
	r.prevPoll = at
	return r.healthInterval <= 0 || !r.emitted || at.Sub(r.healthAt) >= r.healthInterval-gap/2
}

// HealthDue tells whether this poll sends every health series, changed or not (see healthDue). A
// receiver that writes health series of its own (OPC UA: sessions, certificate validity) follows it,
// so that they go out with the device's.
func (p *Poll) HealthDue() bool { return p.healthDue || p.r.hasOld }

// appendHealth writes the enabled health metrics of the poll that started at and made requests
// requests; duration < 0 leaves the duration out. iiot.device.up and the duration are written at every
// poll (rules take avg_over_time and changes of up, the tdigest processor every duration). The other
// health series are written when they changed, else when the poll is due (healthDue), and all of them
// after a resource attribute changed (their series start anew under the new resource, and the old ones
// get stale markers only for the series the poll holds).
func (r *Recorder) appendHealth(ms pmetric.MetricSlice, ts pcommon.Timestamp, at time.Time, due bool, requests int64, up bool, duration float64, state poll.BreakerState, exemplar *Poll) {
	all := due || r.hasOld
	if all {
		r.healthAt = at
	}
	if r.health.Up {
		m := ms.AppendEmpty()
		m.SetName(MetricUp)
		// no unit: a 0/1 flag (with unit "1", Prometheus naming would append _ratio)
		m.SetDescription("1 if the device answered its last poll, 0 if it did not (or its breaker is open).")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		if up {
			dp.SetIntValue(1)
		} else {
			dp.SetIntValue(0)
		}
	}
	if r.health.PollDuration && duration >= 0 {
		m := ms.AppendEmpty()
		m.SetName(MetricPollDuration)
		m.SetUnit("s")
		m.SetDescription("Wall time of the last poll of the device.")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(duration)
		if exemplar != nil {
			ex := dp.Exemplars().AppendEmpty()
			ex.SetTimestamp(ts)
			ex.SetDoubleValue(duration)
			ex.SetTraceID(exemplar.traceID)
			ex.SetSpanID(exemplar.spanID)
		}
	}
	if r.health.PollErrors && r.errorsToSend(all) {
		m := ms.AppendEmpty()
		m.SetName(MetricPollErrors)
		m.SetUnit("{error}")
		m.SetDescription("Failed requests and readings of the device since the receiver started, by kind.")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for _, t := range ErrorTypes {
			n, ok := r.errors[t]
			if !ok {
				continue
			}
			if sent, was := r.sentErrors[t]; !all && was && sent == n {
				continue
			}
			r.sentErrors[t] = n
			dp := sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(r.startTime)
			dp.SetTimestamp(ts)
			dp.SetIntValue(n)
			dp.Attributes().PutStr(AttrErrorType, string(t))
		}
	}
	// A counter off its straight line (a retry, a failed poll, a changed plan) is sent at once; on the
	// line, samples a health interval apart keep rate() and increase() exact.
	if r.health.Requests && (all || requests != r.pollRequests) {
		m := ms.AppendEmpty()
		m.SetName(MetricRequests)
		m.SetUnit("{request}")
		m.SetDescription("Protocol requests sent to the device since the receiver started, retries included.")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(r.startTime)
		dp.SetTimestamp(ts)
		dp.SetIntValue(r.requests)
	}
	r.pollRequests = requests
	if r.health.BreakerState && (all || state != r.sentState) {
		r.sentState = state
		m := ms.AppendEmpty()
		m.SetName(MetricBreakerState)
		m.SetUnit("{state}")
		m.SetDescription("State of the device's circuit breaker (0 closed, 1 half-open, 2 open).")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetIntValue(int64(state))
	}
}

// errorsToSend tells whether some iiot.device.poll.errors point is to be written.
func (r *Recorder) errorsToSend(all bool) bool {
	if all {
		return len(r.errors) > 0
	}
	for t, n := range r.errors {
		if sent, ok := r.sentErrors[t]; !ok || sent != n {
			return true
		}
	}
	return false
}

// sampled decides from the trace id, so every component that sees the id agrees.
func (r *Recorder) sampled(p *Poll) bool {
	if p.hadError {
		return true
	}
	if r.sampleRatio <= 0 {
		return false
	}
	if r.sampleRatio >= 1 {
		return true
	}
	x := binary.BigEndian.Uint64(p.traceID[8:]) >> 11 // 53 random bits
	return float64(x) < r.sampleRatio*float64(uint64(1)<<53)
}
