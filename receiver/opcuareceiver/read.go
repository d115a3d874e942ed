package opcuareceiver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

const maxBadNodesOnSpan = 10

// statusSummary collects the non-Good status codes of one request for its span.
type statusSummary struct {
	names []string
	nodes []string
	bad   int
}

func (s *statusSummary) add(status ua.StatusCode, node string) {
	s.addNamed(statusName(status), isBad(status), node)
}

func (s *statusSummary) addNamed(name string, bad bool, node string) {
	found := false
	for _, n := range s.names {
		if n == name {
			found = true
			break
		}
	}
	if !found {
		s.names = append(s.names, name)
	}
	if bad {
		entry := node + "=" + name
		for _, n := range s.nodes {
			if n == entry {
				return // the same node twice (read through two names): listed and counted once
			}
		}
		s.bad++
		if len(s.nodes) < maxBadNodesOnSpan {
			s.nodes = append(s.nodes, entry)
		}
	}
}

// annotate puts the summary on a request span and on the poll span.
func (s *statusSummary) annotate(q *device.Request, p *device.Poll) {
	if len(s.names) == 0 {
		return
	}
	sort.Strings(s.names)
	codes := strings.Join(s.names, ",")
	q.Attr("opcua.status_codes", codes).Attr("opcua.bad_nodes", s.bad)
	if len(s.nodes) > 0 {
		q.Attr("opcua.bad_node_ids", strings.Join(s.nodes, " "))
	}
	p.Attr("opcua.status_codes", codes)
}

var heartbeatRequest = &ua.ReadRequest{
	TimestampsToReturn: ua.TimestampsToReturnNeither,
	NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue},
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_State), AttributeID: ua.AttributeIDValue},
	},
}

// heartbeat reads the server's CurrentTime and State. A server that does not answer, or whose clock
// stands still for heartbeat.max_stalled heartbeats, is treated as gone: the session is dropped.
func (r *opcuaReceiver) heartbeat(ctx context.Context, p *device.Poll, s *session) error {
	q := p.StartRequest("opcua.heartbeat").Attr("opcua.service", "Read").Attr("opcua.nodes", 2)
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Poll.Timeout)
	resp, err := s.client.Read(rctx, heartbeatRequest)
	cancel()
	if err != nil {
		err = classify(err)
		q.End(err)
		if sessionBroken(err) {
			r.dropSession(ctx, "heartbeat: "+err.Error())
			return err
		}
		return nil
	}
	if len(resp.Results) == 2 {
		if dv := resp.Results[0]; dv != nil && !isBad(dv.Status) && dv.Value != nil {
			if t, ok := dv.Value.Value().(time.Time); ok {
				q.Attr("opcua.server_time", t.UTC().Format(time.RFC3339Nano))
				if t.Equal(s.lastCurrentTime) {
					s.stalled++
				} else {
					s.stalled, s.lastCurrentTime = 0, t
				}
			}
		}
		if dv := resp.Results[1]; dv != nil && !isBad(dv.Status) && dv.Value != nil {
			if st, ok := scalarValue(dv.Value.Value()); ok {
				q.Attr("opcua.server_state", ua.ServerState(int32(st)).String())
			}
		}
	}
	if s.stalled >= r.cfg.Heartbeat.MaxStalled {
		err := device.Errorf(device.ErrTimeout, "heartbeat: the server's CurrentTime stood still at %s for %d heartbeats", s.lastCurrentTime.UTC().Format(time.RFC3339Nano), s.stalled)
		q.End(err)
		r.dropSession(ctx, err.Error())
		return err
	}
	if s.stalled == 0 {
		s.beatSeq = r.pollSeq
	}
	q.End(nil)
	return nil
}

// readDue reads the nodes whose group is due, in batches of the server's MaxNodesPerRead.
func (r *opcuaReceiver) readDue(ctx context.Context, p *device.Poll, s *session) error {
	now := p.Start()
	due := make([]bool, len(r.groupLast))
	for g, last := range r.groupLast {
		iv := r.groupInterval(g)
		due[g] = last.IsZero() || iv == 0 || now.Sub(last) >= iv-r.cfg.Poll.Interval/2
	}
	var batch []*item
	nodes := 0
	var errSum statusSummary
	for _, it := range s.items {
		if !due[it.spec.group] {
			continue
		}
		nodes++
		if it.err != nil {
			r.recordItemError(p, it)
			errSum.addNamed(it.status, true, it.spec.ref.text)
			continue
		}
		if !it.refusedAt.IsZero() && now.Sub(it.refusedAt) < r.cfg.RefusedNodeRetry {
			// Refused earlier: not read until refused_node_retry has passed, then read again (re-probe).
			r.staleEntry(p, it.entry)
			p.Error(device.ErrField)
			errSum.addNamed(it.status, true, it.spec.ref.text)
			continue
		}
		batch = append(batch, it)
		if len(batch) == s.maxRead {
			if err := r.readBatch(ctx, p, s, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := r.readBatch(ctx, p, s, batch); err != nil {
			return err
		}
	}
	if errSum.bad > 0 {
		p.Attr("opcua.unusable_nodes", errSum.bad)
		p.Attr("opcua.unusable_node_ids", strings.Join(errSum.nodes, " "))
	}
	for g := range due {
		if due[g] {
			r.groupLast[g] = now
		}
	}
	p.Attr("opcua.nodes", nodes)
	return nil
}

// groupInterval is the read interval of a poll group (0: every poll).
func (r *opcuaReceiver) groupInterval(g int) time.Duration {
	switch {
	case g == 0:
		return 0
	case g <= len(r.cfg.Groups):
		return r.cfg.Groups[g-1].Interval
	default:
		return r.browse[g-len(r.cfg.Groups)-1].defaults.Interval
	}
}

// readBatch reads one batch of nodes. It returns an error only when the session broke.
func (r *opcuaReceiver) readBatch(ctx context.Context, p *device.Poll, s *session, items []*item) error {
	req := &ua.ReadRequest{TimestampsToReturn: timestampsToReturn(r.cfg.Timestamp), NodesToRead: make([]*ua.ReadValueID, len(items))}
	for i, it := range items {
		req.NodesToRead[i] = it.rv
	}
	q := p.StartRequest("opcua.read").Attr("opcua.service", "Read").Attr("opcua.nodes", len(items))
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Poll.Timeout)
	resp, err := s.client.Read(rctx, req)
	cancel()
	if err == nil && len(resp.Results) != len(items) {
		err = device.Errorf(device.ErrProtocol, "read of %d nodes returned %d results", len(items), len(resp.Results))
	}
	if err != nil {
		err = classify(err)
		q.End(err)
		if sessionBroken(err) {
			r.dropSession(ctx, "read: "+err.Error())
			return err
		}
		for _, it := range items {
			r.staleEntry(p, it.entry)
		}
		return nil
	}
	var sum statusSummary
	for i, it := range items {
		r.recordValue(p, it, resp.Results[i], &sum)
	}
	sum.annotate(q, p)
	q.End(nil)
	return nil
}

// recordValue turns one DataValue into points: Bad → stale and counted, Uncertain → kept and counted,
// numbers and Booleans → points (arrays: one per index), other types → skipped and counted.
func (r *opcuaReceiver) recordValue(p *device.Poll, it *item, dv *ua.DataValue, sum *statusSummary) {
	e := it.entry
	if dv == nil {
		r.staleEntry(p, e)
		p.Error(device.ErrDecode)
		return
	}
	status := ua.StatusOK
	if dv.EncodingMask&ua.DataValueStatusCode != 0 {
		status = dv.Status
	}
	if status != ua.StatusOK {
		sum.add(status, it.spec.ref.text)
		if isBad(status) {
			r.staleEntry(p, e)
			p.Error(device.ErrBadStatus)
			r.noteRefusal(p, it, status)
			return
		}
		if isUncertain(status) {
			p.Error(device.ErrUncertain)
		}
	}
	if !it.refusedAt.IsZero() {
		it.refusedAt, it.status = time.Time{}, ""
		r.logger.Info("Node readable again", zap.String("node", it.spec.ref.text))
	}
	var v any
	if dv.Value != nil {
		v = dv.Value.Value()
	}
	if v == nil {
		r.staleEntry(p, e)
		p.Error(device.ErrUnsupportedType)
		return
	}
	ts := r.afterRepeated(e, pointTime(r.cfg.Timestamp, dv, time.Time{}), p.Start())
	e.seq = r.pollSeq
	hold := r.repeatEvery > 0
	if hold {
		e.last = e.last[:0]
		e.lastTime, e.lastSess = ts, r.sessions
		if ts.IsZero() {
			e.lastTime = p.Start()
		}
	}
	conv := it.spec.conv
	if n, ok := conv.convert(v); ok {
		n.Record(p, e.scalar, ts)
		if hold {
			e.last = append(e.last, heldPoint{e.scalar, n})
		}
		return
	}
	shape := visitValue(v, conv, func(flat int, label string, n number) {
		s := r.indexSeries(e, flat, label)
		n.Record(p, s, ts)
		if hold {
			e.last = append(e.last, heldPoint{s, n})
		}
	})
	if shape == shapeUnsupported {
		p.Error(device.ErrUnsupportedType)
		if !it.warned {
			it.warned = true
			r.logger.Warn("Node value is not a number, Boolean or array of them: skipped (counted as unsupported_type)",
				zap.String("node", it.spec.ref.text), zap.String("type", fmt.Sprintf("%T", v)))
		}
	}
}

// recordItemError marks a reading that cannot be read in this session (unknown namespace, monitored
// item refused) as stale and counts it as a refused reading (error.type field): a configuration
// problem of that node, tried again at the next session.
func (r *opcuaReceiver) recordItemError(p *device.Poll, it *item) {
	r.staleEntry(p, it.entry)
	p.Error(device.ErrField)
}

// refusedStatus tells whether a Bad status of a Read means the server refuses the node itself (it
// does not exist, cannot be read, or not by us): that does not heal by itself, unlike a Bad status of
// the value (BadNoCommunication, BadSensorFailure, BadWaitingForInitialData …), which is read again at
// every poll.
func refusedStatus(s ua.StatusCode) bool {
	switch s &^ 0xFFFF { // without the info bits
	case ua.StatusBadNodeIDUnknown, ua.StatusBadNodeIDInvalid, ua.StatusBadAttributeIDInvalid,
		ua.StatusBadNotReadable, ua.StatusBadUserAccessDenied, ua.StatusBadIndexRangeInvalid,
		ua.StatusBadDataEncodingInvalid, ua.StatusBadDataEncodingUnsupported:
		return true
	}
	return false
}

// noteRefusal leaves a node the server refused out of the reads until refused_node_retry has passed
// (mode poll), instead of failing it at every poll; the first refusal is logged.
func (r *opcuaReceiver) noteRefusal(p *device.Poll, it *item, status ua.StatusCode) {
	if r.cfg.Mode != ModePoll || r.cfg.RefusedNodeRetry <= 0 || !refusedStatus(status) {
		return
	}
	if it.refusedAt.IsZero() {
		r.logger.Warn("The server refuses the node: it is not read again before refused_node_retry (counted as error.type field meanwhile)",
			zap.String("node", it.spec.ref.text), zap.String("status", statusName(status)), zap.Duration("refused_node_retry", r.cfg.RefusedNodeRetry))
	}
	it.refusedAt, it.status = p.Start(), statusName(status)
}

// staleEntry marks every series of a reading as stale, once per poll. Its last value is forgotten, so
// it is never repeated.
func (r *opcuaReceiver) staleEntry(p *device.Poll, e *seriesEntry) {
	e.last = e.last[:0]
	if e.seq == r.pollSeq {
		return
	}
	e.seq = r.pollSeq
	if len(e.index) == 0 {
		p.RecordStale(e.scalar)
		return
	}
	for _, s := range e.index {
		if s != nil {
			p.RecordStale(s)
		}
	}
}

// staleAll marks every reading not yet recorded in this poll as stale (the server cannot be read).
func (r *opcuaReceiver) staleAll(p *device.Poll) {
	if len(r.known) == 0 {
		for _, s := range r.specs {
			r.staleEntry(p, r.entry(s))
		}
		return
	}
	for _, e := range r.known {
		r.staleEntry(p, e)
	}
}

// handleNotification turns one notification message of the subscription into a poll: its values,
// the publish as a request span, and the health metrics.
func (r *opcuaReceiver) handleNotification(ctx context.Context, p *device.Poll, d *opcua.PublishNotificationData, received time.Time) {
	p.Attr("opcua.trigger", "publish")
	s := r.sess
	if d == nil || s == nil {
		return
	}
	if d.Error != nil {
		err := classify(d.Error)
		p.Fail(err)
		if sessionBroken(err) {
			r.dropSession(ctx, "subscription: "+err.Error())
			r.staleAll(p)
			r.kickReconnect()
		}
		return
	}
	switch v := d.Value.(type) {
	case *ua.DataChangeNotification:
		q := p.StartRequestAt("opcua.publish", received).Attr("opcua.service", "Publish").Attr("opcua.nodes", len(v.MonitoredItems))
		var sum statusSummary
		n := len(v.MonitoredItems)
		for k := 0; k < n; k++ {
			i := k
			if r.cfg.Timestamp == TimestampCollector {
				i = n - 1 - k // the newest value of an item wins when all carry the receive time
			}
			mi := v.MonitoredItems[i]
			if mi == nil || mi.ClientHandle == 0 || int(mi.ClientHandle) > len(s.items) {
				continue
			}
			it := s.items[mi.ClientHandle-1]
			if r.cfg.Timestamp == TimestampCollector && it.seq == r.pollSeq {
				continue
			}
			it.seq = r.pollSeq
			r.recordValue(p, it, mi.Value, &sum)
		}
		sum.annotate(q, p)
		p.Attr("opcua.nodes", n)
		q.End(nil)
	case *ua.EventNotificationList:
		r.handleEvents(ctx, p, s, v, received)
	case *ua.StatusChangeNotification:
		p.Attr("opcua.subscription_status", statusName(v.Status))
		if isBad(v.Status) {
			p.Fail(device.Errorf(device.ErrConnection, "the server ended the subscription: %s", statusName(v.Status)))
			r.dropSession(ctx, "subscription ended: "+statusName(v.Status))
			r.staleAll(p)
			r.kickReconnect()
		}
	}
}
