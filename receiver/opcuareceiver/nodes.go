package opcuareceiver

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Trigger is the data-change trigger of a monitored item.
type Trigger string

const (
	TriggerStatus               Trigger = "status"
	TriggerStatusValue          Trigger = "status_value"
	TriggerStatusValueTimestamp Trigger = "status_value_timestamp"
)

// DeadbandType is the deadband of a monitored item's data-change filter.
type DeadbandType string

const (
	DeadbandNone     DeadbandType = "none"
	DeadbandAbsolute DeadbandType = "absolute"
	DeadbandPercent  DeadbandType = "percent"
)

// SubscriptionConfig is the subscription of mode: subscribe and the defaults of its monitored items.
type SubscriptionConfig struct {
	// PublishingInterval is how often the server sends the changes it collected.
	PublishingInterval time.Duration `mapstructure:"publishing_interval"`
	// KeepAliveCount is how many empty publishing intervals pass before the server sends a keep-alive.
	KeepAliveCount uint32 `mapstructure:"keep_alive_count"`
	// LifetimeCount is how many publishing intervals without a publish request the server keeps the
	// subscription (at least 3 × keep_alive_count).
	LifetimeCount uint32 `mapstructure:"lifetime_count"`
	// MaxNotificationsPerPublish caps one notification message (0: no limit).
	MaxNotificationsPerPublish uint32 `mapstructure:"max_notifications_per_publish"`
	// RepeatInterval: at each heartbeat, the last value of a node whose newest data point is at least
	// this old is sent again with the collector's time, so a value that a deadband holds back (or that
	// does not change) does not go stale in Prometheus (5m lookback). Never for a node whose last status
	// was Bad. 0 turns it off.
	RepeatInterval time.Duration `mapstructure:"repeat_interval"`
	// MonitoredItemDefaults are the defaults of every node (sampling interval, queue size, trigger,
	// deadband).
	MonitoredItemDefaults `mapstructure:",squash"`
}

// MonitoredItemDefaults are the settings of a monitored item, set at three levels: subscription →
// group or browse → node. A key a level sets replaces the one above, 0 included; a key it leaves out
// (or an empty trigger or deadband type) is inherited.
type MonitoredItemDefaults struct {
	// SamplingInterval is how often the server samples the value. Unset: the publishing interval;
	// 0: the fastest rate the server supports (OPC UA Part 4, 5.12.1.2).
	SamplingInterval *time.Duration `mapstructure:"sampling_interval"`
	// QueueSize is how many changes the server keeps between two publishes (default 1).
	QueueSize *uint32 `mapstructure:"queue_size"`
	// Trigger is status, status_value or status_value_timestamp.
	Trigger Trigger `mapstructure:"trigger"`
	// Deadband filters small changes (absolute, or percent of the node's EURange).
	Deadband DeadbandConfig `mapstructure:"deadband"`
}

// DeadbandConfig is a data-change deadband.
type DeadbandConfig struct {
	Type  DeadbandType `mapstructure:"type"`
	Value float64      `mapstructure:"value"`
}

// NodeConfig is one variable node.
type NodeConfig struct {
	// ID is the node id: ns=<index>;{i,s,g,b}=<id>, nsu=<namespace URI>;{i,s,g,b}=<id>, or (inside a
	// group with a namespace) {i,s,g,b}=<id>.
	ID string `mapstructure:"id"`
	// Name is the metric name after the prefix.
	Name        string            `mapstructure:"name"`
	Unit        string            `mapstructure:"unit"`
	Description string            `mapstructure:"description"`
	Kind        device.MetricKind `mapstructure:"kind"`
	Attributes  map[string]string `mapstructure:"attributes"`
	// Scale and Offset: value = raw × scale + offset (defaults 1 and 0; the group's or browse's when
	// left out), e.g. scale 1000 for a node in kWh written as the vocabulary's Wh. See conversion.
	Scale  *float64 `mapstructure:"scale"`
	Offset *float64 `mapstructure:"offset"`
	// MonitoredItemDefaults override the group's for this node (mode: subscribe).
	MonitoredItemDefaults `mapstructure:",squash"`
}

// NodeDefaults are shared by the nodes of a group or of a browse.
type NodeDefaults struct {
	// MetricPrefix replaces the top-level metric_prefix for these nodes.
	MetricPrefix string `mapstructure:"metric_prefix"`
	// Interval: in mode poll, read these nodes only every interval (a multiple of poll.interval); in mode
	// subscribe, the default sampling interval of these nodes.
	Interval   time.Duration     `mapstructure:"interval"`
	Unit       string            `mapstructure:"unit"`
	Kind       device.MetricKind `mapstructure:"kind"`
	Attributes map[string]string `mapstructure:"attributes"`
	// Scale and Offset are the default scale and offset of these nodes (a node's own win).
	Scale  *float64 `mapstructure:"scale"`
	Offset *float64 `mapstructure:"offset"`
	// MonitoredItemDefaults override the subscription's for these nodes.
	MonitoredItemDefaults `mapstructure:",squash"`
}

// GroupConfig is a list of nodes with shared defaults.
type GroupConfig struct {
	// Name identifies the group in errors and logs.
	Name string `mapstructure:"name"`
	// Namespace is the namespace URI of node ids in this group written without ns= or nsu=.
	Namespace    string `mapstructure:"namespace"`
	NodeDefaults `mapstructure:",squash"`
	Nodes        []NodeConfig `mapstructure:"nodes"`
}

// BrowseConfig collects the variables below a node.
type BrowseConfig struct {
	// Root is where browsing starts (any node id form; default i=85, the Objects folder).
	Root string `mapstructure:"root"`
	// MaxDepth is how many levels below root are followed.
	MaxDepth int `mapstructure:"max_depth"`
	// NameFilter is a regular expression the BrowseName of a variable must match.
	NameFilter string `mapstructure:"name_filter"`
	// MaxNodes caps the variables taken from this browse.
	MaxNodes     int `mapstructure:"max_nodes"`
	NodeDefaults `mapstructure:",squash"`
}

const (
	defaultBrowseMaxDepth = 5
	defaultBrowseMaxNodes = 1000
)

// Validate reports every problem of the subscription keys, named under prefix ("subscription.").
func (s SubscriptionConfig) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.PublishingInterval <= 0 {
		add("%spublishing_interval: must be > 0, got %s", prefix, s.PublishingInterval)
	}
	if s.KeepAliveCount < 1 {
		add("%skeep_alive_count: must be >= 1", prefix)
	}
	if s.LifetimeCount < 3*s.KeepAliveCount {
		add("%slifetime_count: must be >= 3 × keep_alive_count (%d), got %d", prefix, 3*s.KeepAliveCount, s.LifetimeCount)
	}
	if s.RepeatInterval < 0 {
		add("%srepeat_interval: must be >= 0 (0: off), got %s", prefix, s.RepeatInterval)
	}
	errs = append(errs, s.MonitoredItemDefaults.Validate(prefix))
	return errors.Join(errs...)
}

// Validate reports every problem of the monitored-item keys a level sets, named under prefix.
func (m MonitoredItemDefaults) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.SamplingInterval != nil && *m.SamplingInterval < 0 {
		add("%ssampling_interval: must be >= 0 (0: the server's fastest rate; leave it out for the publishing interval), got %s", prefix, *m.SamplingInterval)
	}
	if m.QueueSize != nil && *m.QueueSize < 1 {
		add("%squeue_size: must be >= 1, got %d", prefix, *m.QueueSize)
	}
	switch m.Trigger {
	case "", TriggerStatus, TriggerStatusValue, TriggerStatusValueTimestamp:
	default:
		add("%strigger: unknown %q (want status, status_value or status_value_timestamp)", prefix, m.Trigger)
	}
	switch m.Deadband.Type {
	case "", DeadbandNone:
		if m.Deadband.Value != 0 {
			add("%sdeadband.value: set deadband.type to absolute or percent", prefix)
		}
	case DeadbandAbsolute:
		if m.Deadband.Value < 0 {
			add("%sdeadband.value: must be >= 0, got %g", prefix, m.Deadband.Value)
		}
	case DeadbandPercent:
		if m.Deadband.Value < 0 || m.Deadband.Value > 100 {
			add("%sdeadband.value: a percent deadband must be between 0 and 100, got %g", prefix, m.Deadband.Value)
		}
	default:
		add("%sdeadband.type: unknown %q (want none, absolute or percent)", prefix, m.Deadband.Type)
	}
	return errors.Join(errs...)
}

// Validate reports every problem of the defaults of a group or browse, named under prefix.
func (d NodeDefaults) Validate(prefix string, mode Mode, pollInterval time.Duration) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.MetricPrefix != "" && !metricNameRE.MatchString(d.MetricPrefix) {
		add("%smetric_prefix: %q must start with a letter or _ and hold only letters, digits, _ . : / -", prefix, d.MetricPrefix)
	}
	if d.Interval < 0 {
		add("%sinterval: must be >= 0, got %s", prefix, d.Interval)
	} else if mode == ModePoll && d.Interval > 0 && pollInterval > 0 && d.Interval < pollInterval {
		add("%sinterval: %s is shorter than poll.interval %s (groups are read on the poll schedule)", prefix, d.Interval, pollInterval)
	}
	errs = append(errs, d.Kind.Validate(prefix), validateScale(prefix, d.Scale, d.Offset), d.MonitoredItemDefaults.Validate(prefix))
	return errors.Join(errs...)
}

// validateScale checks the scale and offset keys a level sets, named under prefix.
func validateScale(prefix string, scale, offset *float64) error {
	var errs []error
	if scale != nil && (*scale == 0 || math.IsNaN(*scale) || math.IsInf(*scale, 0)) {
		errs = append(errs, fmt.Errorf("%sscale: must be a finite number other than 0 (value = raw × scale + offset), got %g", prefix, *scale))
	}
	if offset != nil && (math.IsNaN(*offset) || math.IsInf(*offset, 0)) {
		errs = append(errs, fmt.Errorf("%soffset: must be a finite number, got %g", prefix, *offset))
	}
	return errors.Join(errs...)
}

// Validate reports every problem of one browse entry, named under prefix.
func (b BrowseConfig) Validate(prefix string, mode Mode, pollInterval time.Duration) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if b.Root != "" {
		if _, err := parseNodeRef(b.Root, ""); err != nil {
			add("%sroot: %v", prefix, err)
		}
	}
	if b.MaxDepth < 0 || b.MaxDepth > 32 {
		add("%smax_depth: must be between 1 and 32 (0: %d), got %d", prefix, defaultBrowseMaxDepth, b.MaxDepth)
	}
	if b.MaxNodes < 0 {
		add("%smax_nodes: must be >= 1 (0: %d), got %d", prefix, defaultBrowseMaxNodes, b.MaxNodes)
	}
	if b.NameFilter != "" {
		if _, err := regexp.Compile(b.NameFilter); err != nil {
			add("%sname_filter: %v", prefix, err)
		}
	}
	errs = append(errs, b.NodeDefaults.Validate(prefix, mode, pollInterval))
	return errors.Join(errs...)
}

// readingSpec is one configured node with every default applied.
type readingSpec struct {
	ref         nodeRef
	metric      string
	unit        string
	description string
	kind        device.MetricKind
	attrs       map[string]string
	conv        conversion
	// interval: poll mode read interval (0: every poll); group: index of the poll group.
	interval time.Duration
	group    int
	item     MonitoredItemDefaults
}

// readingSpecs applies the defaults to every configured node, reporting every problem.
func (c *Config) readingSpecs() ([]*readingSpec, error) {
	var errs []error
	var specs []*readingSpec
	top := NodeDefaults{MetricPrefix: c.MetricPrefix, MonitoredItemDefaults: c.Subscription.MonitoredItemDefaults}
	for i, n := range c.Nodes {
		s, err := n.spec(fmt.Sprintf("nodes[%d]", i), "", top, 0)
		errs = append(errs, err)
		if s != nil {
			specs = append(specs, s)
		}
	}
	for gi, g := range c.Groups {
		prefix := fmt.Sprintf("groups[%d]", gi)
		if g.Name != "" {
			prefix += fmt.Sprintf(" %q", g.Name)
		}
		errs = append(errs, g.Validate(prefix+".", c.Mode, c.Poll.Interval))
		if g.Namespace != "" {
			if u, err := url.Parse(g.Namespace); err != nil || u.Scheme == "" {
				errs = append(errs, fmt.Errorf("%s.namespace: %q is not a namespace URI", prefix, g.Namespace))
			}
		}
		if len(g.Nodes) == 0 {
			errs = append(errs, fmt.Errorf("%s.nodes: a group needs at least one node", prefix))
		}
		eff := g.over(top)
		for i, n := range g.Nodes {
			s, err := n.spec(fmt.Sprintf("%s.nodes[%d]", prefix, i), g.Namespace, eff, gi+1)
			errs = append(errs, err)
			if s != nil {
				specs = append(specs, s)
			}
		}
	}
	if c.IncludeNodeID {
		for _, s := range specs {
			s.attrs = mergeAttrs(s.attrs, map[string]string{attrNodeID: s.ref.text})
		}
	}
	return specs, errors.Join(errs...)
}

// over returns d with every key it leaves out (empty, or a 0 interval) taken from parent; attributes
// are merged, d's win.
func (d NodeDefaults) over(parent NodeDefaults) NodeDefaults {
	out := NodeDefaults{
		MetricPrefix:          device.LayerSet(parent.MetricPrefix, d.MetricPrefix),
		Interval:              device.LayerSet(parent.Interval, d.Interval),
		Unit:                  device.LayerSet(parent.Unit, d.Unit),
		Kind:                  device.LayerSet(parent.Kind, d.Kind),
		Attributes:            mergeAttrs(parent.Attributes, d.Attributes),
		Scale:                 device.LayerSet(parent.Scale, d.Scale),
		Offset:                device.LayerSet(parent.Offset, d.Offset),
		MonitoredItemDefaults: d.MonitoredItemDefaults.over(parent.MonitoredItemDefaults),
	}
	// In subscribe mode a group's interval is the default sampling interval of its nodes.
	if d.Interval != 0 && d.SamplingInterval == nil {
		out.SamplingInterval = &d.Interval
	}
	return out
}

// over returns m with every key it leaves out taken from parent. The pointers stay: an unset
// sampling interval means the publishing interval (see monitoredItemRequest).
func (m MonitoredItemDefaults) over(parent MonitoredItemDefaults) MonitoredItemDefaults {
	out := MonitoredItemDefaults{
		SamplingInterval: device.LayerSet(parent.SamplingInterval, m.SamplingInterval),
		QueueSize:        device.LayerSet(parent.QueueSize, m.QueueSize),
		Trigger:          device.LayerSet(parent.Trigger, m.Trigger),
		Deadband:         parent.Deadband,
	}
	if m.Deadband.Type != "" { // a deadband is set as a whole: its type says it is
		out.Deadband = m.Deadband
	}
	return out
}

func mergeAttrs(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func (n NodeConfig) spec(prefix, namespace string, defaults NodeDefaults, group int) (*readingSpec, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	ref, err := parseNodeRef(n.ID, namespace)
	if n.ID == "" {
		add("%s.id: required (ns=<index>;s=<name>, nsu=<uri>;i=<number> …)", prefix)
	} else if err != nil {
		add("%s.id: %v", prefix, err)
	}
	if n.Name == "" {
		add("%s.name: required (the metric name after metric_prefix)", prefix)
	}
	metric := defaults.MetricPrefix + n.Name
	if n.Name != "" && !metricNameRE.MatchString(metric) {
		add("%s.name: metric name %q must start with a letter or _ and hold only letters, digits, _ . : / -", prefix, metric)
	}
	errs = append(errs, n.Kind.Validate(prefix+"."), validateScale(prefix+".", n.Scale, n.Offset))
	for k := range n.Attributes {
		if k == attrIndex || k == attrNodeID || k == "" {
			add("%s.attributes: %q is reserved", prefix, k)
		}
	}
	errs = append(errs, n.Validate(prefix+".")) // the monitored-item keys
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &readingSpec{
		ref:         ref,
		metric:      metric,
		unit:        device.LayerSet(defaults.Unit, n.Unit),
		description: n.Description,
		kind:        device.LayerSet(device.KindGauge, defaults.Kind, n.Kind),
		attrs:       mergeAttrs(defaults.Attributes, n.Attributes),
		conv:        newConversion(device.Layer(1, defaults.Scale, n.Scale), device.Layer(0, defaults.Offset, n.Offset)),
		interval:    defaults.Interval,
		group:       group,
		item:        n.over(defaults.MonitoredItemDefaults),
	}
	return s, nil
}

// validateSeries rejects two nodes that would write the same series, and one metric name used with two
// units or kinds.
func validateSeries(specs []*readingSpec) error {
	var errs []error
	type def struct {
		unit string
		kind device.MetricKind
		id   string
	}
	metrics := map[string]def{}
	series := map[string]string{}
	for _, s := range specs {
		if d, ok := metrics[s.metric]; ok {
			if d.unit != s.unit || d.kind != s.kind {
				errs = append(errs, fmt.Errorf("node %s: metric %q is already used by node %s with unit %q and kind %s (got unit %q, kind %s)", s.ref.text, s.metric, d.id, d.unit, d.kind, s.unit, s.kind))
			}
		} else {
			metrics[s.metric] = def{s.unit, s.kind, s.ref.text}
		}
		key := seriesKey(s.metric, s.attrs)
		if other, ok := series[key]; ok {
			errs = append(errs, fmt.Errorf("node %s: same metric %q and attributes as node %s (give one of them an attribute or another name)", s.ref.text, s.metric, other))
		}
		series[key] = s.ref.text
	}
	return errors.Join(errs...)
}

func seriesKey(metric string, attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(metric)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte(1)
		b.WriteString(attrs[k])
	}
	return b.String()
}
