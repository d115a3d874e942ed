package opcuareceiver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// EventsConfig is one event subscription: the events of a notifier node (and of everything below it in
// the server's notifier hierarchy) become log records.
type EventsConfig struct {
	// Notifier is the node whose events are subscribed to (default i=2253, the Server object, which
	// receives every event of the server).
	Notifier string `mapstructure:"notifier"`
	// Fields are event fields selected in addition to the standard ones; each becomes an attribute.
	Fields []EventFieldConfig `mapstructure:"fields"`
	// Where is the filter the server applies before sending an event (see the README for the grammar),
	// e.g. `OfType(i=2915) and Severity >= 400`. Empty: every event.
	Where string `mapstructure:"where"`
	// QueueSize is how many events the server keeps for the item between two publishes (0: 1000).
	QueueSize uint32 `mapstructure:"queue_size"`
}

// EventFieldConfig is one selected event field.
type EventFieldConfig struct {
	// Path is the field's browse path from its event type: names separated by /, each optionally
	// prefixed with its namespace index (2:ErrorCode).
	Path string `mapstructure:"path"`
	// Type is the event type the path starts at (default i=2041, BaseEventType: the field of any event
	// type that has it).
	Type string `mapstructure:"type"`
	// Attribute is the log attribute the value is written to (default opcua.event.<path>, the names in
	// lower case joined with ".").
	Attribute string `mapstructure:"attribute"`
}

const (
	defaultEventNotifier  = "i=2253"
	defaultEventQueueSize = 1000
	maxEventFields        = 64
)

// Validate checks one events entry; prefix names it (events[0].).
func (e EventsConfig) Validate(prefix string) error {
	var errs []error
	if e.Notifier != "" {
		if _, err := parseNodeRef(e.Notifier, ""); err != nil {
			errs = append(errs, fmt.Errorf("%snotifier: %w", prefix, err))
		}
	}
	if len(e.Fields) > maxEventFields {
		errs = append(errs, fmt.Errorf("%sfields: at most %d fields, got %d", prefix, maxEventFields, len(e.Fields)))
	}
	seen := map[string]string{}
	for _, f := range standardEventFields {
		seen[f.attr] = "a standard field"
	}
	for i, f := range e.Fields {
		p := fmt.Sprintf("%sfields[%d].", prefix, i)
		path, err := parseBrowsePath(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%spath: %w", p, err))
			continue
		}
		if f.Type != "" {
			if _, err := parseNodeRef(f.Type, ""); err != nil {
				errs = append(errs, fmt.Errorf("%stype: %w", p, err))
			}
		}
		attr := f.attribute(path)
		if prev, ok := seen[attr]; ok {
			errs = append(errs, fmt.Errorf("%sattribute: %q is already written by %s: set another attribute", p, attr, prev))
		}
		seen[attr] = p[:len(p)-1]
	}
	if e.Where != "" {
		if _, err := parseWhere(e.Where); err != nil {
			errs = append(errs, fmt.Errorf("%swhere: %w", prefix, err))
		}
	}
	return errors.Join(errs...)
}

// attribute is the log attribute of a selected field.
func (f EventFieldConfig) attribute(path []*ua.QualifiedName) string {
	if f.Attribute != "" {
		return f.Attribute
	}
	names := make([]string, len(path))
	for i, q := range path {
		names[i] = strings.ToLower(q.Name)
	}
	return "opcua.event." + strings.Join(names, ".")
}

// parseBrowsePath parses Name/Name…, each name optionally prefixed with its namespace index (2:Name).
func parseBrowsePath(s string) ([]*ua.QualifiedName, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty browse path (want Name/Name…, each name optionally 2:Name)")
	}
	var out []*ua.QualifiedName
	for _, seg := range strings.Split(s, "/") {
		q := &ua.QualifiedName{Name: seg}
		if i := strings.Index(seg, ":"); i > 0 {
			if n, err := strconv.ParseUint(seg[:i], 10, 16); err == nil {
				q = &ua.QualifiedName{NamespaceIndex: uint16(n), Name: seg[i+1:]}
			}
		}
		if q.Name == "" {
			return nil, fmt.Errorf("%q: empty name in the browse path", s)
		}
		out = append(out, q)
	}
	return out, nil
}

// eventField is one select clause of the event filter and where its value goes.
type eventField struct {
	typ  uint32 // event type in namespace 0 where the path starts (standard fields)
	path string
	// nodeID selects the NodeId attribute of the event's condition (ConditionId) instead of a value.
	nodeID bool
	attr   string
}

// The standard fields, in the order of the filter's first select clauses. The condition fields are
// null in events that are not conditions; nulls are left out of the record.
var standardEventFields = []eventField{
	{typ: id.BaseEventType, path: "EventId", attr: "opcua.event.id"},
	{typ: id.BaseEventType, path: "EventType", attr: "opcua.event.type"},
	{typ: id.BaseEventType, path: "SourceNode", attr: "opcua.source.node"},
	{typ: id.BaseEventType, path: "SourceName", attr: "opcua.source.name"},
	{typ: id.BaseEventType, path: "Time", attr: "opcua.event.time"},
	{typ: id.BaseEventType, path: "ReceiveTime", attr: "opcua.event.receive_time"},
	{typ: id.BaseEventType, path: "Message", attr: "opcua.event.message"},
	{typ: id.BaseEventType, path: "Severity", attr: "opcua.event.severity"},
	{typ: id.ConditionType, nodeID: true, attr: "opcua.condition.id"},
	{typ: id.ConditionType, path: "ConditionName", attr: "opcua.condition.name"},
	{typ: id.ConditionType, path: "BranchId", attr: "opcua.condition.branch_id"},
	{typ: id.ConditionType, path: "Retain", attr: "opcua.condition.retain"},
	{typ: id.AlarmConditionType, path: "ActiveState/Id", attr: "opcua.condition.active"},
	{typ: id.AcknowledgeableConditionType, path: "AckedState/Id", attr: "opcua.condition.acked"},
	{typ: id.AcknowledgeableConditionType, path: "ConfirmedState/Id", attr: "opcua.condition.confirmed"},
}

// Indexes of the standard fields the record is built from.
const (
	fieldEventID = iota
	fieldEventType
	fieldSourceNode
	fieldSourceName
	fieldTime
	fieldReceiveTime
	fieldMessage
	fieldSeverity
	fieldConditionID
	fieldConditionName
	fieldBranchID
	fieldRetain
	fieldActive
	fieldAcked
	fieldConfirmed
)

// standardFieldType is the event type a standard field is declared on, for where operands (a field of
// another name starts at BaseEventType).
func standardFieldType(path string) uint32 {
	for _, f := range standardEventFields {
		if strings.EqualFold(f.path, path) && f.path != "" {
			return f.typ
		}
	}
	return id.BaseEventType
}

// simpleOperand selects a field of the event: path from the event type typ.
func simpleOperand(typ *ua.NodeID, path []*ua.QualifiedName, attr ua.AttributeID) *ua.SimpleAttributeOperand {
	if path == nil {
		path = []*ua.QualifiedName{}
	}
	return &ua.SimpleAttributeOperand{TypeDefinitionID: typ, BrowsePath: path, AttributeID: attr}
}

func standardPath(path string) []*ua.QualifiedName {
	if path == "" {
		return nil
	}
	p, _ := parseBrowsePath(path)
	return p
}
