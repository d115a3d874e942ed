package device

import (
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// Poll records one poll of a device: its readings, its protocol requests (child spans) and errors.
type Poll struct {
	r         *Recorder
	start     time.Time
	traceID   pcommon.TraceID
	spanID    pcommon.SpanID
	points    []point
	spans     []requestSpan
	pollAttrs []spanAttr
	pollErr   error
	lastErr   error // last request error, for logs
	// readingErrs counts this poll's reading-level errors (Error, uncertain excluded), the last of type lastReadingErr.
	readingErrs    int
	lastReadingErr ErrorType
	refused        int   // readings left out as refused (ErrField)
	held           int   // readings not sent by report by exception
	counts         []int // scratch of appendReadings, kept across polls
	next           []int
	order          []int
	// hadError: some request or reading failed (the trace is always kept);
	// answered: some request got an answer; requested: some request was made; failed: a poll-level error.
	answered, requested, failed, hadError bool
	// healthDue: the poll sends every health series (Recorder.healthDue); requestsBefore is the
	// recorder's request count when the poll began.
	healthDue      bool
	requestsBefore int64
}

// point is one recorded reading; ts 0 is the poll's end. isInt: the reading is the integer ival
// (exact: a 64-bit counter keeps its last digit), not value.
type point struct {
	series *Series
	ts     pcommon.Timestamp
	value  float64
	ival   int64
	isInt  bool
	stale  bool
}

// spanAttr is a span attribute recorded by value (no interface is kept, so Attr's callers box
// nothing on the heap); it becomes a pdata attribute only if the poll's trace is kept.
type spanAttr struct {
	key  string
	kind attrKind
	str  string
	num  int64
	f    float64
}

type attrKind uint8

const (
	attrStr attrKind = iota
	attrBool
	attrInt
	attrDouble
)

func makeAttr(key string, value any) spanAttr {
	switch v := value.(type) {
	case string:
		return spanAttr{key: key, kind: attrStr, str: v}
	case bool:
		a := spanAttr{key: key, kind: attrBool}
		if v {
			a.num = 1
		}
		return a
	case int:
		return spanAttr{key: key, kind: attrInt, num: int64(v)}
	case int64:
		return spanAttr{key: key, kind: attrInt, num: v}
	case uint8:
		return spanAttr{key: key, kind: attrInt, num: int64(v)}
	case uint16:
		return spanAttr{key: key, kind: attrInt, num: int64(v)}
	case uint32:
		return spanAttr{key: key, kind: attrInt, num: int64(v)}
	case float64:
		return spanAttr{key: key, kind: attrDouble, f: v}
	}
	return spanAttr{key: key, kind: attrStr, str: "?"}
}

type requestSpan struct {
	name       string
	id         pcommon.SpanID
	start, end time.Time
	attempts   int
	attrs      []spanAttr
	err        error
	handle     Request
}

// Request is one protocol request of a poll (a child span).
type Request struct {
	p *Poll
	i int
}

// Start returns the time the poll began.
func (p *Poll) Start() time.Time { return p.start }

// Record adds a reading taken at ts (zero ts: the time the poll ends).
func (p *Poll) Record(s *Series, ts time.Time, value float64) {
	pt := point{series: s, value: value}
	if !ts.IsZero() {
		pt.ts = pcommon.NewTimestampFromTime(ts)
	}
	p.points = append(p.points, pt)
}

// RecordInt adds an integer reading taken at ts (zero ts: the time the poll ends). It becomes an
// integer data point, never passing through float64: a 64-bit counter above 2^53 keeps its last digit.
func (p *Poll) RecordInt(s *Series, ts time.Time, value int64) {
	pt := point{series: s, ival: value, isInt: true}
	if !ts.IsZero() {
		pt.ts = pcommon.NewTimestampFromTime(ts)
	}
	p.points = append(p.points, pt)
}

// RecordUint adds an unsigned integer reading: an integer data point up to the int64 limit. Data
// points hold signed 64-bit integers, so a value above 2^63-1 becomes a double (the nearest, to 53
// bits of precision).
func (p *Poll) RecordUint(s *Series, ts time.Time, value uint64) {
	if value > math.MaxInt64 {
		p.Record(s, ts, float64(value))
		return
	}
	p.RecordInt(s, ts, int64(value))
}

// RecordStale marks a reading that could not be read: its point carries the NoRecordedValue flag, so
// Prometheus marks the series stale at once instead of repeating an old value.
func (p *Poll) RecordStale(s *Series) {
	p.points = append(p.points, point{series: s, stale: true})
}

// Attr sets an attribute of the poll span.
func (p *Poll) Attr(key string, value any) { p.pollAttrs = append(p.pollAttrs, makeAttr(key, value)) }

// Fail records a poll-level error outside any request (e.g. the connection could not be opened).
// It is counted by its type, and marks the poll span as failed.
func (p *Poll) Fail(err error) {
	p.failed, p.hadError = true, true
	p.pollErr = err
	p.r.errors[Classify(err)]++
}

// Error records an error of a reading that is not a request failure (a value that did not decode, an
// Uncertain status …): counted by type, and noted on the poll span. ErrUncertain and ErrField do not
// make the poll an error (a refused reading is counted on the span as iiot.poll.refused_readings).
func (p *Poll) Error(t ErrorType) {
	p.r.errors[t]++
	if t == ErrField {
		p.refused++
		return
	}
	if t != ErrUncertain {
		p.hadError = true
		p.readingErrs++
		p.lastReadingErr = t
	}
}

// StartRequest starts a protocol request span (e.g. "modbus.read_holding_registers") now.
func (p *Poll) StartRequest(name string) *Request {
	return p.StartRequestAt(name, time.Now())
}

// StartRequestAt starts a protocol request span at the given time.
func (p *Poll) StartRequestAt(name string, at time.Time) *Request {
	p.requested = true
	p.r.requests++
	n := len(p.spans)
	if n < cap(p.spans) {
		// reuse the slot of an earlier poll, and its attribute slice
		p.spans = p.spans[:n+1]
		p.spans[n] = requestSpan{name: name, id: newSpanID(), start: at, attempts: 1, attrs: p.spans[n].attrs[:0]}
	} else {
		p.spans = append(p.spans, requestSpan{name: name, id: newSpanID(), start: at, attempts: 1})
	}
	sp := &p.spans[n]
	sp.handle = Request{p: p, i: n}
	// The handle lives in the span slot, so starting a request allocates nothing. A handle left in an
	// older backing array after p.spans grew still works: it only holds p and i.
	return &sp.handle
}

// Attr sets an attribute on the request span (string, bool, int, int64, uint8/16/32, float64).
func (q *Request) Attr(key string, value any) *Request {
	s := &q.p.spans[q.i]
	s.attrs = append(s.attrs, makeAttr(key, value))
	return q
}

// Retry records one more attempt of the request.
func (q *Request) Retry() {
	q.p.spans[q.i].attempts++
	q.p.r.requests++
}

// RetryAfter records one more attempt after an attempt that failed with err: the failed attempt is
// counted in iiot.device.poll.errors by Classify(err) (a noisy line shows even when retries succeed)
// and the poll's trace is kept.
func (q *Request) RetryAfter(err error) {
	q.Retry()
	q.p.r.errors[Classify(err)]++
	q.p.hadError = true
}

// End closes the request now; err nil is success, otherwise it is counted by Classify(err).
func (q *Request) End(err error) { q.EndAt(err, time.Now()) }

// EndAt closes the request at the given time.
func (q *Request) EndAt(err error, at time.Time) {
	s := &q.p.spans[q.i]
	s.end, s.err = at, err
	if err == nil {
		q.p.answered = true
		return
	}
	t := Classify(err)
	q.p.lastErr = err
	q.p.r.errors[t]++
	q.p.hadError = true
	if t.Answered() {
		q.p.answered = true
	}
}

// Err returns the poll-level error, else the last request error, else nil.
func (p *Poll) Err() error {
	if p.pollErr != nil {
		return p.pollErr
	}
	return p.lastErr
}

// Answered tells whether the device answered this poll: some request got an answer, or the poll
// made no request and did not fail (data that arrives without asking, e.g. OPC UA subscriptions).
func (p *Poll) Answered() bool {
	if p.requested {
		return p.answered
	}
	return !p.failed
}

// End closes the poll at now and returns its metrics (health, then readings in registration order)
// and its trace, which is empty unless sampled (failed polls always are).
func (p *Poll) End(now time.Time, state poll.BreakerState) (pmetric.Metrics, ptrace.Traces) {
	r := p.r
	sampled := r.sampled(p)
	ts := r.metricTime(now)
	// max_silence is measured between the polls' starts, which follow the schedule's ticks (their ends
	// wander with the time requests take, and would make a silence of exactly max_silence wait a poll).
	p.holdUnchanged(pcommon.NewTimestampFromTime(p.start))
	metrics := p.sortPoints()
	md, sm := r.newMetrics()
	ms := sm.Metrics()
	ms.EnsureCapacity(r.healthCount() + metrics)
	var ex *Poll
	if sampled {
		ex = p
	}
	r.appendHealth(ms, ts, p.start, p.healthDue, r.requests-p.requestsBefore, p.Answered(), now.Sub(p.start).Seconds(), state, ex)
	p.appendReadings(ms, ts)
	r.endOldSeries(md, ts)
	td := ptrace.NewTraces()
	if sampled {
		p.appendSpans(td, now)
	}
	return md, td
}

// sortPoints orders the points by metric, so metrics come out in registration order and points in
// the order they were recorded, with no per-poll map (a counting sort into p.order; p.counts[m] is
// where metric m's points start). It returns the number of metrics with points.
func (p *Poll) sortPoints() int {
	r := p.r
	nm := len(r.metrics)
	if cap(p.counts) < nm+1 {
		p.counts = make([]int, nm+1)
	}
	counts := p.counts[:nm+1]
	clear(counts)
	if len(p.points) == 0 {
		return 0
	}
	for i := range p.points {
		counts[p.points[i].series.metric+1]++
	}
	used := 0
	for i := 1; i < len(counts); i++ {
		if counts[i] > 0 {
			used++
		}
		counts[i] += counts[i-1]
	}
	if cap(p.order) < len(p.points) {
		p.order = make([]int, len(p.points))
	}
	order := p.order[:len(p.points)]
	next := append(p.next[:0], counts[:nm]...)
	p.next = next
	for i := range p.points {
		mi := p.points[i].series.metric
		order[next[mi]] = i
		next[mi]++
	}
	return used
}

// appendReadings writes the points sorted by sortPoints.
func (p *Poll) appendReadings(ms pmetric.MetricSlice, ts pcommon.Timestamp) {
	if len(p.points) == 0 {
		return
	}
	r := p.r
	counts, order := p.counts, p.order
	noValue := pmetric.DefaultDataPointFlags.WithNoRecordedValue(true)
	for mi := range r.metrics {
		def := &r.metrics[mi]
		from, to := counts[mi], counts[mi+1]
		if from == to {
			continue
		}
		m := ms.AppendEmpty()
		m.SetName(def.name)
		m.SetUnit(def.unit)
		m.SetDescription(def.description)
		var dps pmetric.NumberDataPointSlice
		sum := def.kind == KindSum
		if sum {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = s.DataPoints()
		} else {
			dps = m.SetEmptyGauge().DataPoints()
		}
		dps.EnsureCapacity(to - from)
		for _, i := range order[from:to] {
			pt := &p.points[i]
			dp := dps.AppendEmpty()
			if sum {
				dp.SetStartTimestamp(r.startTime)
			}
			if pt.ts == 0 {
				dp.SetTimestamp(ts)
			} else {
				dp.SetTimestamp(pt.ts)
			}
			switch {
			case pt.stale:
				dp.SetFlags(noValue)
			case pt.isInt:
				dp.SetIntValue(pt.ival)
			default:
				dp.SetDoubleValue(pt.value)
			}
			if s := pt.series; s.attrs.Len() > 0 {
				s.attrs.CopyTo(dp.Attributes())
			}
		}
	}
}

func (p *Poll) appendSpans(td ptrace.Traces, now time.Time) {
	r := p.r
	rs := td.ResourceSpans().AppendEmpty()
	r.traceResource.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(r.scope.Name)
	ss.Scope().SetVersion(r.scope.Version)
	spans := ss.Spans()
	spans.EnsureCapacity(1 + len(p.spans))

	root := spans.AppendEmpty()
	root.SetName(string(r.identity.Protocol) + ".poll")
	root.SetKind(ptrace.SpanKindInternal)
	root.SetTraceID(p.traceID)
	root.SetSpanID(p.spanID)
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	root.Attributes().PutStr(AttrDeviceID, r.identity.ID)
	root.Attributes().PutInt("iiot.poll.requests", int64(len(p.spans)))
	putAttrs(root.Attributes(), p.pollAttrs)
	failures := 0
	for _, s := range p.spans {
		if s.err != nil {
			failures++
		}
	}
	root.Attributes().PutInt("iiot.poll.failed_requests", int64(failures))
	if p.refused > 0 {
		root.Attributes().PutInt(AttrRefusedReadings, int64(p.refused))
	}
	if p.held > 0 {
		root.Attributes().PutInt(AttrHeldReadings, int64(p.held))
	}
	switch {
	case p.failed:
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage(p.pollErr.Error())
		root.Attributes().PutStr(AttrErrorType, string(Classify(p.pollErr)))
	case failures > 0:
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage("some requests failed")
	case p.readingErrs > 0:
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage(fmt.Sprintf("%d readings failed (last: %s)", p.readingErrs, p.lastReadingErr))
		root.Attributes().PutStr(AttrErrorType, string(p.lastReadingErr))
	}

	for _, s := range p.spans {
		sp := spans.AppendEmpty()
		sp.SetName(s.name)
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetTraceID(p.traceID)
		sp.SetSpanID(s.id)
		sp.SetParentSpanID(p.spanID)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		end := s.end
		if end.IsZero() {
			end = now
		}
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		sp.Attributes().PutInt("iiot.request.attempts", int64(s.attempts))
		putAttrs(sp.Attributes(), s.attrs)
		if s.err != nil {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(s.err.Error())
			sp.Attributes().PutStr(AttrErrorType, string(Classify(s.err)))
		}
	}
}

func putAttrs(m pcommon.Map, attrs []spanAttr) {
	for i := range attrs {
		a := &attrs[i]
		switch a.kind {
		case attrStr:
			m.PutStr(a.key, a.str)
		case attrBool:
			m.PutBool(a.key, a.num != 0)
		case attrInt:
			m.PutInt(a.key, a.num)
		case attrDouble:
			m.PutDouble(a.key, a.f)
		}
	}
}
