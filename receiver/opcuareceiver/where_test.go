package opcuareceiver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

func zapNop() *zap.Logger { return zap.NewNop() }

// describeFilter renders a ContentFilter as its elements: "0:And(e1,e2)", operands as e<n> (element),
// f<type>:<path> (field), or the literal's Go value and type.
func describeFilter(cf *ua.ContentFilter) string {
	var out []string
	for i, el := range cf.Elements {
		var ops []string
		for _, o := range el.FilterOperands {
			switch v := o.Value.(type) {
			case *ua.ElementOperand:
				ops = append(ops, fmt.Sprintf("e%d", v.Index))
			case *ua.SimpleAttributeOperand:
				ops = append(ops, fmt.Sprintf("f%s:%s", v.TypeDefinitionID, qualifiedPath(v.BrowsePath)))
			case *ua.LiteralOperand:
				ops = append(ops, fmt.Sprintf("%v(%T)", v.Value.Value(), v.Value.Value()))
			}
		}
		out = append(out, fmt.Sprintf("%d:%s(%s)", i, strings.TrimPrefix(el.FilterOperator.String(), "FilterOperator"), strings.Join(ops, ",")))
	}
	return strings.Join(out, " ")
}

func TestWhereContentFilter(t *testing.T) {
	namespaces := []string{"http://opcfoundation.org/UA/", "urn:other", "urn:pv-plant"}
	for _, c := range []struct{ where, want string }{
		{"Severity >= 500", "0:GreaterThanOrEqual(fi=2041:Severity,500(uint16))"},
		{"500 <= severity", "0:LessThanOrEqual(500(int32),fi=2041:severity)"},
		{"OfType(i=2915)", "0:OfType(i=2915(*ua.NodeID))"},
		{"ofType(nsu=urn:pv-plant;s=InverterAlarmType) AND Severity > 100",
			"0:And(e1,e2) 1:OfType(ns=2;s=InverterAlarmType(*ua.NodeID)) 2:GreaterThan(fi=2041:Severity,100(uint16))"},
		// The elements are numbered depth first, the root first.
		{`OfType(i=2915) and (Severity >= 400 or SourceName like "INV-0%") and not Retain == false`,
			"0:And(e1,e6) 1:And(e2,e3) 2:OfType(i=2915(*ua.NodeID)) 3:Or(e4,e5) 4:GreaterThanOrEqual(fi=2041:Severity,400(uint16)) " +
				"5:Like(fi=2041:SourceName,INV-0%(string)) 6:Not(e7) 7:Equals(fi=2782:Retain,false(bool))"},
		{"ActiveState/Id == true", "0:Equals(fi=2915:ActiveState/Id,true(bool))"},
		{"AckedState/Id != true", "0:Not(e1) 1:Equals(fi=2881:AckedState/Id,true(bool))"},
		{"2:ErrorCode = 4711", "0:Equals(fi=2041:2:ErrorCode,4711(int32))"},
		{"EventType == ns=2;s=InverterEventType or 2:Temperature < -1.5",
			"0:Or(e1,e2) 1:Equals(fi=2041:EventType,ns=2;s=InverterEventType(*ua.NodeID)) 2:LessThan(fi=2041:2:Temperature,-1.5(float64))"},
	} {
		e, err := parseWhere(c.where)
		require.NoError(t, err, c.where)
		cf, err := e.contentFilter(namespaces)
		require.NoError(t, err, c.where)
		assert.Equal(t, c.want, describeFilter(cf), c.where)
	}

	// A namespace the server does not have is an error at connect, naming the node.
	e, err := parseWhere("OfType(nsu=urn:gone;i=1)")
	require.NoError(t, err)
	_, err = e.contentFilter(namespaces)
	assert.ErrorContains(t, err, "nsu=urn:gone;i=1")
	assert.EqualValues(t, id.AlarmConditionType, standardFieldType("ActiveState/Id"))
}

func TestEventsConfig(t *testing.T) {
	cfg, err := loadConfig(t, "events")
	require.NoError(t, err, "events alone, without nodes, are a valid server")
	specs, err := newEventSpecs(cfg)
	require.NoError(t, err)
	require.Len(t, specs, 2)
	assert.Equal(t, "i=2253", specs[0].notifier.text, "the Server object by default")
	assert.EqualValues(t, defaultEventQueueSize, specs[0].queueSize)
	assert.Nil(t, specs[0].where)
	assert.Equal(t, "nsu=urn:pv-plant;s=Inverters", specs[1].notifier.text)
	assert.EqualValues(t, 50, specs[1].queueSize)
	require.Len(t, specs[1].fields, 2)
	assert.Equal(t, "opcua.event.errorcode", specs[1].fields[0].attr)
	assert.Equal(t, "alarm.state_text", specs[1].fields[1].attr)

	// The item's select clauses: the standard fields, then the user's, with their types resolved.
	it := &eventItem{spec: specs[1]}
	r := &opcuaReceiver{cfg: cfg, logger: zapNop()}
	req, err := r.eventItemRequest(&session{namespaces: []string{"http://opcfoundation.org/UA/", "urn:pv-plant"}}, it, eventHandleBase+1)
	require.NoError(t, err)
	assert.Equal(t, ua.AttributeIDEventNotifier, req.ItemToMonitor.AttributeID)
	assert.Equal(t, "ns=1;s=Inverters", req.ItemToMonitor.NodeID.String())
	f := req.RequestedParameters.Filter.Value.(*ua.EventFilter)
	require.Len(t, f.SelectClauses, len(standardEventFields)+2)
	user := f.SelectClauses[len(standardEventFields)]
	assert.Equal(t, "ns=1;s=InverterAlarmType", user.TypeDefinitionID.String())
	assert.Equal(t, "2:ErrorCode", qualifiedPath(user.BrowsePath))
	assert.Equal(t, []int{len(standardEventFields), len(standardEventFields) + 1}, it.fieldIndex)
	cond := f.SelectClauses[fieldConditionID]
	assert.Equal(t, ua.AttributeIDNodeID, cond.AttributeID, "ConditionId is the NodeId of the condition")
	assert.Empty(t, cond.BrowsePath)
	assert.Len(t, f.WhereClause.Elements, 8)
}

// FuzzParseWhere: any where clause parses or is refused with an error, never a panic, and one that
// parses builds a ContentFilter whose element operands all point forward to existing elements.
func FuzzParseWhere(f *testing.F) {
	for _, s := range []string{
		"Severity >= 500", "OfType(i=2915) and not AckedState/Id == true", `SourceName like "INV-%" or (2:X < -1.5)`,
		"OfType(nsu=urn:a;s=T) or EventType == ns=2;s=T", "not not (a == 'x')", "((", "OfType(", "a ==", `"`, "!x", "a <= b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseWhere(s)
		if err != nil {
			return
		}
		cf, err := e.contentFilter([]string{"http://opcfoundation.org/UA/", "urn:a", "urn:b"})
		if err != nil {
			return // a namespace URI the session does not have
		}
		for i, el := range cf.Elements {
			for _, o := range el.FilterOperands {
				if eo, ok := o.Value.(*ua.ElementOperand); ok && (int(eo.Index) <= i || int(eo.Index) >= len(cf.Elements)) {
					t.Fatalf("%q: element %d points at %d of %d", s, i, eo.Index, len(cf.Elements))
				}
			}
		}
	})
}
