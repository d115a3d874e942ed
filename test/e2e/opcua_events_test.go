//go:build e2e

package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// acknowledge calls the standard Acknowledge method of the condition a record is about, with the
// EventId of that record, as an operator's HMI would.
func (s *nodeOPCUA) acknowledge(t *testing.T, rec logRecord, comment string) {
	t.Helper()
	eventID, err := hex.DecodeString(fmt.Sprint(rec.Attrs["opcua.event.id"]))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opcua.NewClient(s.endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	defer c.Close(context.Background())
	ns := -1
	for i, u := range c.Namespaces() {
		if u == e2eNamespace {
			ns = i
		}
	}
	require.GreaterOrEqual(t, ns, 0)
	res, err := c.Call(ctx, &ua.CallMethodRequest{
		ObjectID: ua.NewStringNodeID(uint16(ns), "Inverter1.GridFaultAlarm"),
		MethodID: ua.NewNumericNodeID(0, id.AcknowledgeableConditionType_Acknowledge),
		InputArguments: []*ua.Variant{ua.MustVariant(eventID),
			ua.MustVariant(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: comment})},
	})
	require.NoError(t, err)
	require.Equal(t, ua.StatusOK, res.StatusCode)
}

// waitLog waits for a record after the first `after` that matches, noting when the sink's file first
// held it.
func waitLog(t *testing.T, sink *traceSink, after int, what string, match func(logRecord) bool) logRecord {
	t.Helper()
	var found logRecord
	ok := assertEventually(60*time.Second, func() bool {
		recs := sink.Logs(t)
		for i := after; i < len(recs); i++ {
			if match(recs[i]) {
				found = recs[i]
				return true
			}
		}
		return false
	})
	require.True(t, ok, "no log record %s; the sink has %v", what, sink.Logs(t))
	return found
}

func conditionIs(active, acked bool) func(logRecord) bool {
	return func(r logRecord) bool {
		return r.Attrs["opcua.condition.name"] == "GridFault" && r.Attrs["opcua.condition.active"] == active && r.Attrs["opcua.condition.acked"] == acked
	}
}

// TestOPCUAEventsAlarmLifecycle: the built edge binary with a logs pipeline in the edge default's style
// (memory_limiter, tenant, OTLP through a disk-backed queue) delivers the node-opcua server's events as
// log records to an OTLP sink: a plain event with a selected field, a low-severity event filtered out by
// the server, and a grid-fault alarm's lifecycle, active → acknowledged → inactive, exactly; every record
// labelled with its device's tenant from the registry and job/instance.
func TestOPCUAEventsAlarmLifecycle(t *testing.T) {
	sink := startTraceSink(t)
	port := freePort(t)
	srv := startNodeOPCUA(t, port, t.TempDir(), false)
	nsIndex := srv.namespaceIndex(t)
	data := vars{"Port": port, "Namespace": e2eNamespace, "NsIndex": nsIndex, "TraceSink": sink.Endpoint(), "LogStore": sink.HTTPURL(),
		"StorageDir": t.TempDir(), "RemoteWrite": "http://127.0.0.1:1/unused", "Registry": testdataPath(t, "opcua/events_registry.yaml")}
	startCollectorTestdata(t, nil, data, "common.yaml", "opcua/events.yaml")

	// The event item exists once the session asked for a ConditionRefresh.
	require.True(t, assertEventually(90*time.Second, func() bool {
		for _, s := range sink.Spans(t) {
			if s.Name == "opcua.condition_refresh" && s.Resource["device.id"] == "inverter-1" {
				return true
			}
		}
		return false
	}), "the receiver never subscribed to events; spans: %d", len(sink.Spans(t)))

	wantResource := func(r logRecord) {
		t.Helper()
		assert.Equal(t, "inverter-1", r.Resource["device.id"])
		assert.Equal(t, "opcua", r.Resource["device.protocol"])
		assert.Equal(t, "pv-plant-3", r.Resource["site"])
		assert.Equal(t, "inverter", r.Resource["device_group"])
		// the tenant processor: the registry's tenant (not the default one), job/instance
		assert.Equal(t, "pv-owner", r.Resource["tenant.id"])
		assert.Equal(t, "opcua", r.Resource["service.name"])
		assert.Equal(t, "pv-plant-3/inverter-1", r.Resource["service.instance.id"])
	}
	inverter := "nsu=" + e2eNamespace + ";s=Inverter1"
	var latencies []time.Duration
	latency := func(r logRecord) { latencies = append(latencies, r.Arrived.Sub(r.Time)) }

	// A plain event below the filter's severity, then one above it.
	srv.write(t, "Inverter1.Command", "event 50 1 Fan check done")
	srv.write(t, "Inverter1.Command", "event 300 4711 String 3 overcurrent")
	ev := waitLog(t, sink, 0, "of the plain event", func(r logRecord) bool { return r.Body == "String 3 overcurrent" })
	latency(ev)
	wantResource(ev)
	assert.Equal(t, plog.SeverityNumberWarn, ev.Severity)
	assert.Equal(t, "WARN", ev.SeverityText)
	assert.Equal(t, "InverterEventType", ev.EventName)
	assert.False(t, ev.Observed.Before(ev.Time))
	assert.NotEmpty(t, ev.Attrs["opcua.event.id"])
	delete(ev.Attrs, "opcua.event.id")
	assert.Equal(t, map[string]any{
		"opcua.event.notifier": "i=2253",
		"opcua.event.type":     "nsu=" + e2eNamespace + ";s=InverterEventType",
		"opcua.source.node":    inverter,
		"opcua.source.name":    "Inverter1",
		"opcua.event.severity": int64(300),
		"inverter.error_code":  int64(4711),
	}, ev.Attrs)

	// The alarm's lifecycle.
	n := len(sink.Logs(t))
	srv.write(t, "Inverter1.GridFault", true)
	active := waitLog(t, sink, n, "of the active alarm", conditionIs(true, false))
	latency(active)
	n = len(sink.Logs(t))
	srv.acknowledge(t, active, "crew dispatched")
	acked := waitLog(t, sink, n, "of the acknowledged alarm", conditionIs(true, true))
	latency(acked)
	n = len(sink.Logs(t))
	srv.write(t, "Inverter1.GridFault", false)
	cleared := waitLog(t, sink, n, "of the inactive alarm", conditionIs(false, true))
	latency(cleared)

	condition := inverter + ".GridFaultAlarm"
	for _, c := range []struct {
		rec      logRecord
		body     string
		sev      plog.SeverityNumber
		text     string
		severity int64
		active   bool
		acked    bool
		retain   bool // as node-opcua sends it: its Acknowledge clears Retain of the acknowledged state
	}{
		{active, "Grid fault: inverter disconnected", plog.SeverityNumberError, "ERROR", 700, true, false, true},
		{acked, "Grid fault: inverter disconnected", plog.SeverityNumberError, "ERROR", 700, true, true, false},
		{cleared, "Grid fault cleared", plog.SeverityNumberInfo, "INFO", 100, false, true, true},
	} {
		wantResource(c.rec)
		assert.Equal(t, c.body, c.rec.Body)
		assert.Equal(t, c.sev, c.rec.Severity)
		assert.Equal(t, c.text, c.rec.SeverityText)
		assert.Equal(t, "OffNormalAlarmType", c.rec.EventName)
		assert.NotEmpty(t, c.rec.Attrs["opcua.event.id"])
		attrs := c.rec.Attrs
		delete(attrs, "opcua.event.id")
		assert.Equal(t, map[string]any{
			"opcua.event.notifier":   "i=2253",
			"opcua.event.type":       "i=10637",
			"opcua.source.node":      inverter,
			"opcua.source.name":      strconv.Itoa(nsIndex) + ":Inverter1", // node-opcua names a condition's source by its browse name
			"opcua.event.severity":   c.severity,
			"opcua.condition.id":     condition,
			"opcua.condition.name":   "GridFault",
			"opcua.condition.retain": c.retain,
			"opcua.condition.active": c.active,
			"opcua.condition.acked":  c.acked,
		}, attrs)
	}
	assert.True(t, cleared.Time.After(active.Time), "the records carry the transitions' times")

	// Exactly these records: the low-severity event never arrived, none twice.
	var bodies []string
	for _, r := range sink.Logs(t) {
		bodies = append(bodies, r.Body)
	}
	assert.Equal(t, []string{"String 3 overcurrent", "Grid fault: inverter disconnected", "Grid fault: inverter disconnected", "Grid fault cleared"}, bodies)

	// The sink's file holds both signals: each event notification is also a publish span.
	assert.True(t, slices.ContainsFunc(sink.Spans(t), func(s span) bool {
		return s.Name == "opcua.publish" && s.Attrs["opcua.log_records"] == int64(1)
	}), "a publish span counts the records of its notification")

	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	t.Logf("event → log record in the sink (event Time to the sink's file; exporter batch flush 1s, sink flush 100ms): min %s, median %s, max %s over %d records",
		latencies[0].Round(time.Millisecond), latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond), len(latencies))
}
