package opcuareceiver

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

// eventHandleBase marks the client handles of event monitored items (data items count from 1).
const eventHandleBase = 1 << 31

// eventSpec is an events entry with its defaults applied, built once.
type eventSpec struct {
	key       string // events[i], for errors and logs
	notifier  nodeRef
	where     *whereExpr
	fields    []eventFieldSpec
	queueSize uint32
}

// eventFieldSpec is one user-selected field.
type eventFieldSpec struct {
	key  string // events[i].fields[j]
	path []*ua.QualifiedName
	typ  *nodeRef // nil: BaseEventType
	attr string
}

// eventItem is the monitored item of one events entry in one session.
type eventItem struct {
	spec   *eventSpec
	err    error  // the server refused the item (notifier, filter): counted at every heartbeat
	status string // status name of err
	// fieldIndex maps each user field to its select clause, -1 when it is not selected in this session
	// (its type's namespace is unknown) or the server refused it.
	fieldIndex    []int
	refusedFields int // user fields the server refused or that cannot be resolved: counted at every heartbeat
	// refreshing: between a RefreshStartEvent and a RefreshEndEvent the events are the condition states a
	// ConditionRefresh re-sends, not new transitions.
	refreshing bool
}

func newEventSpecs(cfg *Config) ([]*eventSpec, error) {
	var out []*eventSpec
	for i, e := range cfg.Events {
		key := fmt.Sprintf("events[%d]", i)
		notifier := e.Notifier
		if notifier == "" {
			notifier = defaultEventNotifier
		}
		ref, err := parseNodeRef(notifier, "")
		if err != nil {
			return nil, fmt.Errorf("%s.notifier: %w", key, err)
		}
		if ref.nsURI == "" && ref.ns == 0 {
			ref.text = ref.ident // i=2253 reads better than ns=0;i=2253
		}
		s := &eventSpec{key: key, notifier: ref, queueSize: e.QueueSize}
		if s.queueSize == 0 {
			s.queueSize = defaultEventQueueSize
		}
		if e.Where != "" {
			if s.where, err = parseWhere(e.Where); err != nil {
				return nil, fmt.Errorf("%s.where: %w", key, err)
			}
		}
		for j, f := range e.Fields {
			fs := eventFieldSpec{key: fmt.Sprintf("%s.fields[%d]", key, j)}
			if fs.path, err = parseBrowsePath(f.Path); err != nil {
				return nil, fmt.Errorf("%s.path: %w", fs.key, err)
			}
			if f.Type != "" {
				t, err := parseNodeRef(f.Type, "")
				if err != nil {
					return nil, fmt.Errorf("%s.type: %w", fs.key, err)
				}
				fs.typ = &t
			}
			fs.attr = f.attribute(fs.path)
			s.fields = append(s.fields, fs)
		}
		out = append(out, s)
	}
	return out, nil
}

// eventsWanted: events are configured and a logs pipeline takes them.
func (r *opcuaReceiver) eventsWanted() bool { return len(r.events) > 0 && r.logsConsumer() != nil }

// subscribeEvents creates one monitored item per events entry on the session's subscription (created
// here in mode poll), then asks for a ConditionRefresh so the conditions that are active now are sent
// again: after a reconnect the alarms raised while the collector was away are not lost.
func (r *opcuaReceiver) subscribeEvents(ctx context.Context, p *device.Poll, s *session) error {
	if err := r.createSubscription(ctx, p, s); err != nil {
		return err
	}
	q := p.StartRequest("opcua.create_event_items").Attr("opcua.service", "CreateMonitoredItems")
	s.events = make([]*eventItem, len(r.events))
	var reqs []*ua.MonitoredItemCreateRequest
	var its []*eventItem
	for i, spec := range r.events {
		it := &eventItem{spec: spec}
		s.events[i] = it
		req, err := r.eventItemRequest(s, it, uint32(eventHandleBase+i))
		if err != nil {
			it.err, it.status = err, "BadNodeIdUnknown"
			r.logger.Error("Events cannot be subscribed in this session", zap.String("key", spec.key), zap.Error(err))
			continue
		}
		reqs = append(reqs, req)
		its = append(its, it)
	}
	created := 0
	var sum statusSummary
	if len(reqs) > 0 {
		res, err := s.sub.Monitor(ctx, ua.TimestampsToReturnNeither, reqs...)
		if err != nil {
			err = classify(err)
			q.End(err)
			return err
		}
		for i, it := range its {
			if i >= len(res.Results) || res.Results[i] == nil {
				it.err, it.status = device.Errorf(device.ErrProtocol, "no result for the event monitored item"), "BadUnexpectedError"
				continue
			}
			if r.checkEventResult(it, res.Results[i]) {
				created++
			} else {
				sum.addNamed(it.status, true, it.spec.notifier.text)
			}
		}
	}
	sum.annotate(q, p)
	q.Attr("opcua.event_items", created)
	q.End(nil)
	if created > 0 {
		r.conditionRefresh(ctx, p, s)
	}
	return nil
}

// checkEventResult looks at the server's answer for an event item: the item itself, and the filter's
// select and where clauses. A refusal is an error naming the configuration key; it does not fail the
// session (data and the other events entries go on). It reports whether the item was created.
func (r *opcuaReceiver) checkEventResult(it *eventItem, res *ua.MonitoredItemCreateResult) bool {
	var fr *ua.EventFilterResult
	if res.FilterResult != nil {
		fr, _ = res.FilterResult.Value.(*ua.EventFilterResult)
	}
	if st := res.StatusCode; isBad(st) {
		it.status = statusName(st)
		key := it.spec.key
		switch st {
		case ua.StatusBadEventFilterInvalid, ua.StatusBadFilterNotAllowed, ua.StatusBadMonitoredItemFilterInvalid,
			ua.StatusBadMonitoredItemFilterUnsupported, ua.StatusBadContentFilterInvalid, ua.StatusBadFilterOperatorInvalid,
			ua.StatusBadFilterOperatorUnsupported, ua.StatusBadFilterOperandInvalid:
			key += ".where"
		case ua.StatusBadNodeIDUnknown, ua.StatusBadNodeIDInvalid, ua.StatusBadAttributeIDInvalid, ua.StatusBadNotReadable:
			key += ".notifier"
		}
		detail := ""
		if fr != nil && fr.WhereClauseResult != nil {
			for i, er := range fr.WhereClauseResult.ElementResults {
				if er != nil && isBad(er.StatusCode) {
					detail += fmt.Sprintf(" element %d: %s", i, statusName(er.StatusCode))
				}
			}
		}
		it.err = device.WithReason(fmt.Errorf("%s: the server refused the event subscription of %s: %s%s", key, it.spec.notifier.text, it.status, detail),
			"event subscription refused ("+it.status+")")
		r.logger.Error("The server refused an event subscription: no events of this entry until the configuration is fixed (counted as error.type field at every heartbeat)",
			zap.String("key", key), zap.String("notifier", it.spec.notifier.text), zap.String("status", it.status), zap.String("where", strings.TrimSpace(detail)))
		return false
	}
	if fr == nil {
		return true
	}
	for i, st := range fr.SelectClauseResults {
		if !isBad(st) {
			continue
		}
		if i < len(standardEventFields) {
			// A standard field the server does not know (a server without Alarms & Conditions): null.
			continue
		}
		for j, idx := range it.fieldIndex {
			if idx == i {
				it.fieldIndex[j] = -1
				it.refusedFields++
				f := it.spec.fields[j]
				r.logger.Error("The server refused a selected event field: it is left out of the records",
					zap.String("key", f.key), zap.String("path", qualifiedPath(f.path)), zap.String("status", statusName(st)))
			}
		}
	}
	if fr.WhereClauseResult != nil {
		for i, er := range fr.WhereClauseResult.ElementResults {
			if er != nil && isBad(er.StatusCode) {
				r.logger.Warn("The server reports a problem with an element of the where clause; events it cannot evaluate are not sent",
					zap.String("key", it.spec.key+".where"), zap.Int("element", i), zap.String("status", statusName(er.StatusCode)))
			}
		}
	}
	return true
}

// eventItemRequest builds the monitored item of an events entry for the session's namespaces.
func (r *opcuaReceiver) eventItemRequest(s *session, it *eventItem, handle uint32) (*ua.MonitoredItemCreateRequest, error) {
	spec := it.spec
	notifier, err := spec.notifier.resolve(s.namespaces)
	if err != nil {
		return nil, fmt.Errorf("%s.notifier: %w", spec.key, err)
	}
	filter := &ua.EventFilter{WhereClause: &ua.ContentFilter{Elements: []*ua.ContentFilterElement{}}}
	for _, f := range standardEventFields {
		attr := ua.AttributeIDValue
		if f.nodeID {
			attr = ua.AttributeIDNodeID
		}
		filter.SelectClauses = append(filter.SelectClauses, simpleOperand(ua.NewNumericNodeID(0, f.typ), standardPath(f.path), attr))
	}
	it.fieldIndex = make([]int, len(spec.fields))
	for j, f := range spec.fields {
		typ := ua.NewNumericNodeID(0, id.BaseEventType)
		if f.typ != nil {
			t, err := f.typ.resolve(s.namespaces)
			if err != nil {
				it.fieldIndex[j] = -1
				it.refusedFields++
				r.logger.Error("A selected event field cannot be used in this session: it is left out of the records",
					zap.String("key", f.key+".type"), zap.Error(err))
				continue
			}
			typ = t
		}
		it.fieldIndex[j] = len(filter.SelectClauses)
		filter.SelectClauses = append(filter.SelectClauses, simpleOperand(typ, f.path, ua.AttributeIDValue))
	}
	if spec.where != nil {
		cf, err := spec.where.contentFilter(s.namespaces)
		if err != nil {
			return nil, fmt.Errorf("%s.where: %w", spec.key, err)
		}
		filter.WhereClause = cf
	}
	return &ua.MonitoredItemCreateRequest{
		ItemToMonitor:  &ua.ReadValueID{NodeID: notifier, AttributeID: ua.AttributeIDEventNotifier, DataEncoding: &ua.QualifiedName{}},
		MonitoringMode: ua.MonitoringModeReporting,
		RequestedParameters: &ua.MonitoringParameters{
			ClientHandle:  handle,
			QueueSize:     spec.queueSize,
			DiscardOldest: true,
			Filter:        ua.NewExtensionObject(filter),
		},
	}, nil
}

// conditionRefresh asks the server to send the current state of every retained condition (active or
// unacknowledged alarms) to the subscription. A server without Alarms & Conditions refuses it: logged
// once, not an error.
func (r *opcuaReceiver) conditionRefresh(ctx context.Context, p *device.Poll, s *session) {
	q := p.StartRequest("opcua.condition_refresh").Attr("opcua.service", "Call")
	res, err := s.client.Call(ctx, &ua.CallMethodRequest{
		ObjectID:       ua.NewNumericNodeID(0, id.ConditionType),
		MethodID:       ua.NewNumericNodeID(0, id.ConditionType_ConditionRefresh),
		InputArguments: []*ua.Variant{ua.MustVariant(s.sub.SubscriptionID)},
	})
	switch {
	case err != nil:
		// The session is checked by the next heartbeat; the events go on without the refresh.
		q.End(classify(err))
		r.logger.Warn("ConditionRefresh failed: the alarms active now are sent only when they change", zap.Error(err))
	case isBad(res.StatusCode):
		q.Attr("opcua.status_codes", statusName(res.StatusCode))
		q.End(nil)
		if !r.warnedRefresh {
			r.warnedRefresh = true
			r.logger.Info("The server does not support ConditionRefresh: the alarms active now are sent only when they change",
				zap.String("status", statusName(res.StatusCode)))
		}
	default:
		q.End(nil)
	}
}

// recordEventErrors counts the refused event items and fields of the session at a heartbeat, as
// refused readings are (error.type field).
func (r *opcuaReceiver) recordEventErrors(p *device.Poll, s *session) {
	for _, it := range s.events {
		if it.err != nil {
			p.Error(device.ErrField)
			continue
		}
		for range it.refusedFields {
			p.Error(device.ErrField)
		}
	}
}

// handleEvents turns the events of one notification message into log records and sends them.
func (r *opcuaReceiver) handleEvents(ctx context.Context, p *device.Poll, s *session, v *ua.EventNotificationList, received time.Time) {
	q := p.StartRequestAt("opcua.publish", received).Attr("opcua.service", "Publish").Attr("opcua.events", len(v.Events))
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	r.rec.Identity().CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	for _, ev := range v.Events {
		if ev == nil || ev.ClientHandle < eventHandleBase || int(ev.ClientHandle-eventHandleBase) >= len(s.events) {
			continue
		}
		it := s.events[ev.ClientHandle-eventHandleBase]
		r.eventRecord(ctx, s, it, ev.EventFields, received, sl.LogRecords())
	}
	n := sl.LogRecords().Len()
	q.Attr("opcua.log_records", n)
	p.Attr("opcua.events", n)
	q.End(nil)
	if n > 0 {
		r.emitLogs(ctx, ld)
	}
}

// eventRecord appends the record of one event; the Refresh start and end markers only switch the
// item's refreshing flag.
func (r *opcuaReceiver) eventRecord(ctx context.Context, s *session, it *eventItem, fields []*ua.Variant, received time.Time, out plog.LogRecordSlice) {
	field := func(i int) any {
		if i < 0 || i >= len(fields) || fields[i] == nil {
			return nil
		}
		return fields[i].Value()
	}
	typ, _ := field(fieldEventType).(*ua.NodeID)
	if n, ok := ns0Numeric(typ); ok {
		switch n {
		case id.RefreshStartEventType:
			it.refreshing = true
			return
		case id.RefreshEndEventType:
			it.refreshing = false
			return
		}
	}
	lr := out.AppendEmpty()
	ts, _ := field(fieldTime).(time.Time)
	if !ts.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	}
	observed, _ := field(fieldReceiveTime).(time.Time)
	if observed.IsZero() {
		observed = received
	}
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	if m, ok := field(fieldMessage).(*ua.LocalizedText); ok && m != nil {
		lr.Body().SetStr(m.Text)
	} else if m, ok := field(fieldMessage).(string); ok {
		lr.Body().SetStr(m)
	}
	sev := uint16(0)
	if v, ok := field(fieldSeverity).(uint16); ok {
		sev = v
	}
	num, text := severityOf(sev)
	lr.SetSeverityNumber(num)
	lr.SetSeverityText(text)
	if typ != nil {
		lr.SetEventName(r.typeName(ctx, s, typ))
	}

	attrs := lr.Attributes()
	attrs.PutStr("opcua.event.notifier", it.spec.notifier.text)
	for i, f := range standardEventFields {
		switch i {
		case fieldTime, fieldReceiveTime, fieldMessage:
			continue // the record's timestamps and body
		}
		putVariant(attrs, f.attr, field(i), s.namespaces)
	}
	if nid, ok := field(fieldBranchID).(*ua.NodeID); ok && isNullNodeID(nid) {
		attrs.Remove(standardEventFields[fieldBranchID].attr) // the current state, not a branch
	}
	for j, idx := range it.fieldIndex {
		if idx >= 0 {
			putVariant(attrs, it.spec.fields[j].attr, field(idx), s.namespaces)
		}
	}
	if it.refreshing {
		attrs.PutBool("opcua.condition.refresh", true)
	}
}

// typeName is the browse name of an event type: known types of namespace 0 by their id, others read
// once per session.
func (r *opcuaReceiver) typeName(ctx context.Context, s *session, typ *ua.NodeID) string {
	if n, ok := ns0Numeric(typ); ok {
		return id.Name(n)
	}
	key := typ.String()
	if n, ok := s.typeNames[key]; ok {
		return n
	}
	name := ""
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Poll.Timeout)
	defer cancel()
	resp, err := s.client.Read(rctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: typ, AttributeID: ua.AttributeIDBrowseName}}})
	if err == nil && len(resp.Results) == 1 && resp.Results[0] != nil && !isBad(resp.Results[0].Status) && resp.Results[0].Value != nil {
		if q, ok := resp.Results[0].Value.Value().(*ua.QualifiedName); ok {
			name = q.Name
		}
	}
	if s.typeNames == nil {
		s.typeNames = map[string]string{}
	}
	s.typeNames[key] = name // also when unreadable: not asked again in this session
	return name
}

// severityOf maps an OPC UA severity (1–1000, in the five bands of OPC 10000-9) to the OTel log
// severity (README "Severity").
func severityOf(sev uint16) (plog.SeverityNumber, string) {
	switch {
	case sev == 0:
		return plog.SeverityNumberUnspecified, ""
	case sev <= 200:
		return plog.SeverityNumberInfo, "INFO"
	case sev <= 400:
		return plog.SeverityNumberWarn, "WARN"
	case sev <= 600:
		return plog.SeverityNumberWarn3, "WARN3"
	case sev <= 800:
		return plog.SeverityNumberError, "ERROR"
	default:
		return plog.SeverityNumberFatal, "FATAL"
	}
}

func isNullNodeID(n *ua.NodeID) bool {
	v, ok := ns0Numeric(n)
	return n == nil || (ok && v == 0)
}

// ns0Numeric is the number of a numeric node id of namespace 0 (in any of its three encodings).
func ns0Numeric(n *ua.NodeID) (uint32, bool) {
	if n == nil || n.Namespace() != 0 {
		return 0, false
	}
	switch n.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return n.IntID(), true
	}
	return 0, false
}

// nodeText is a node id for an attribute: i=… in namespace 0, else with its namespace URI, which stays
// the same when the server renumbers its namespaces.
func nodeText(n *ua.NodeID, namespaces []string) string {
	if n.Namespace() == 0 {
		s := n.String()
		return strings.TrimPrefix(s, "ns=0;")
	}
	return nodeRefFromExpanded(n, namespaces).text
}

func qualifiedPath(path []*ua.QualifiedName) string {
	parts := make([]string, len(path))
	for i, q := range path {
		if q.NamespaceIndex != 0 {
			parts[i] = strconv.Itoa(int(q.NamespaceIndex)) + ":" + q.Name
		} else {
			parts[i] = q.Name
		}
	}
	return strings.Join(parts, "/")
}

// putVariant writes an event field's value as an attribute; a null field writes nothing.
func putVariant(attrs pcommon.Map, key string, v any, namespaces []string) {
	switch x := v.(type) {
	case nil:
	case bool:
		attrs.PutBool(key, x)
	case int8:
		attrs.PutInt(key, int64(x))
	case int16:
		attrs.PutInt(key, int64(x))
	case int32:
		attrs.PutInt(key, int64(x))
	case int64:
		attrs.PutInt(key, x)
	case uint8:
		attrs.PutInt(key, int64(x))
	case uint16:
		attrs.PutInt(key, int64(x))
	case uint32:
		attrs.PutInt(key, int64(x))
	case uint64:
		if x > math.MaxInt64 {
			attrs.PutStr(key, strconv.FormatUint(x, 10))
		} else {
			attrs.PutInt(key, int64(x))
		}
	case float32:
		attrs.PutDouble(key, float64(x))
	case float64:
		attrs.PutDouble(key, x)
	case string:
		attrs.PutStr(key, x)
	case []byte:
		attrs.PutStr(key, hex.EncodeToString(x))
	case time.Time:
		attrs.PutStr(key, x.UTC().Format(time.RFC3339Nano))
	case *ua.LocalizedText:
		if x != nil {
			attrs.PutStr(key, x.Text)
		}
	case *ua.QualifiedName:
		if x != nil {
			attrs.PutStr(key, x.Name)
		}
	case *ua.NodeID:
		if x != nil {
			attrs.PutStr(key, nodeText(x, namespaces))
		}
	case *ua.ExpandedNodeID:
		if x != nil && x.NodeID != nil {
			attrs.PutStr(key, nodeText(x.NodeID, namespaces))
		}
	case ua.StatusCode:
		attrs.PutStr(key, statusName(x))
	default:
		attrs.PutStr(key, fmt.Sprint(x))
	}
}
