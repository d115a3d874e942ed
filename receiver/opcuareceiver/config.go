package opcuareceiver

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

// Mode is how values are obtained from the server.
type Mode string

const (
	// ModePoll reads the nodes with the Read service on the poll schedule.
	ModePoll Mode = "poll"
	// ModeSubscribe creates a subscription with one monitored item per node; the server sends changes.
	ModeSubscribe Mode = "subscribe"
)

// TimestampSource is which timestamp a data point carries.
type TimestampSource string

const (
	// TimestampSource* take the value's SourceTimestamp (else its ServerTimestamp, else the collector's time).
	TimestampSourceSource TimestampSource = "source"
	// TimestampServer takes the value's ServerTimestamp (else the collector's time).
	TimestampServer TimestampSource = "server"
	// TimestampCollector takes the time the collector read or received the value.
	TimestampCollector TimestampSource = "collector"
)

// Config is the configuration of one OPC UA server (one device).
type Config struct {
	// Settings: poll (interval = read interval in poll mode, heartbeat interval in subscribe mode; timeout,
	// retries, jitter), breaker, traces.
	device.Settings `mapstructure:",squash"`
	// Metrics turns each metric of metadata.yaml on or off: the iiot.device.* health metrics and this
	// receiver's own opcua.* metrics.
	Metrics metadata.MetricsConfig `mapstructure:"metrics"`

	// Endpoint is the server's URL, opc.tcp://host:port[/path].
	Endpoint string `mapstructure:"endpoint"`
	// ID is the device.id resource attribute (required), the `id` key as in the other receivers.
	ID string `mapstructure:"id"`
	// DeprecatedDeviceID is the former name of ID, still read; a warning says to rename it.
	DeprecatedDeviceID string `mapstructure:"device_id"`
	// Enabled false keeps the server in the configuration, validated, but not connected (default true):
	// a site without OPC UA keeps the edge default's pipelines as they are.
	Enabled *bool `mapstructure:"enabled"`
	// Manufacturer and Model fill device.manufacturer and device.model.name.
	Manufacturer string `mapstructure:"manufacturer"`
	Model        string `mapstructure:"model"`
	// ResourceAttributes are added to the device's resource (site, device_group …).
	ResourceAttributes map[string]string `mapstructure:"resource_attributes"`

	Security SecurityConfig `mapstructure:"security"`
	Auth     AuthConfig     `mapstructure:"auth"`

	// Mode is poll (Read on the schedule) or subscribe (monitored items).
	Mode Mode `mapstructure:"mode"`
	// Timestamp is the data point timestamp: source, server or collector.
	Timestamp TimestampSource `mapstructure:"timestamp"`
	// MetricPrefix is put before every node's name to make its metric name.
	MetricPrefix string `mapstructure:"metric_prefix"`
	// IncludeNodeID adds the node id (namespace URI form when the node was given or found by URI) as the
	// opcua.node_id attribute of every data point.
	IncludeNodeID bool `mapstructure:"include_node_id"`
	// MaxNodesPerRead caps the nodes of one Read (and one CreateMonitoredItems) request; the server's own
	// announced limit wins when it is lower, and this value is used when the server announces none.
	MaxNodesPerRead int `mapstructure:"max_nodes_per_read"`
	// RefusedNodeRetry is how long a node the server refuses in a Read (BadNodeIdUnknown, BadNotReadable,
	// BadUserAccessDenied …: it will not heal by itself) is left out of the reads before it is read
	// again; meanwhile it is stale and counted as error.type field at each poll. 0 reads it every poll.
	RefusedNodeRetry time.Duration `mapstructure:"refused_node_retry"`
	// ConnectTimeout bounds one connection attempt (endpoints, secure channel, session, namespaces,
	// browse and subscription setup).
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// SessionTimeout is the session timeout requested from the server.
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
	// Heartbeat reads Server/ServerStatus/CurrentTime and State at every poll.
	Heartbeat HeartbeatConfig `mapstructure:"heartbeat"`
	// Subscription configures mode: subscribe.
	Subscription SubscriptionConfig `mapstructure:"subscription"`

	// Nodes are read with the top-level defaults.
	Nodes []NodeConfig `mapstructure:"nodes"`
	// Groups are node lists sharing defaults (interval, namespace, attributes …).
	Groups []GroupConfig `mapstructure:"groups"`
	// Browse collects the variables below a node at every (re)connect.
	Browse []BrowseConfig `mapstructure:"browse"`
	// Events are event subscriptions (alarms and conditions, plain events): each event becomes a log
	// record of the receiver's logs pipeline.
	Events []EventsConfig `mapstructure:"events"`
}

// HeartbeatConfig is the liveness check of every poll.
type HeartbeatConfig struct {
	// Enabled reads ServerStatus/CurrentTime and ServerStatus/State at every poll.
	Enabled bool `mapstructure:"enabled"`
	// MaxStalled is how many heartbeats in a row may return the same CurrentTime before the server is
	// treated as silent and the session is rebuilt.
	MaxStalled int `mapstructure:"max_stalled"`
}

func createDefaultConfig() *Config {
	set := device.NewDefaultSettings()
	return &Config{
		Settings:         set,
		Mode:             ModePoll,
		Timestamp:        TimestampCollector,
		MetricPrefix:     "opcua.",
		Security:         SecurityConfig{Policy: PolicyNone, Mode: SecurityModeNone, CertificateValidity: 5 * 365 * 24 * time.Hour},
		Auth:             AuthConfig{Type: AuthAnonymous},
		MaxNodesPerRead:  1000,
		ConnectTimeout:   10 * time.Second,
		SessionTimeout:   10 * time.Minute,
		RefusedNodeRetry: time.Hour,
		Heartbeat:        HeartbeatConfig{Enabled: true, MaxStalled: 3},
		Subscription: SubscriptionConfig{
			PublishingInterval: time.Second,
			KeepAliveCount:     10,
			LifetimeCount:      100,
			RepeatInterval:     time.Minute,
			MonitoredItemDefaults: MonitoredItemDefaults{
				QueueSize: device.Ptr(uint32(1)),
				Trigger:   TriggerStatusValue,
				Deadband:  DeadbandConfig{Type: DeadbandNone},
			},
		},
		Metrics: metadata.DefaultMetricsConfig(),
	}
}

// health is which health metrics the `metrics` key enables, for the device recorder.
func (c *Config) health() device.HealthMetrics {
	m := c.Metrics
	return device.HealthMetrics{
		Up:           m.IiotDeviceUp.Enabled,
		PollDuration: m.IiotDevicePollDuration.Enabled,
		PollErrors:   m.IiotDevicePollErrors.Enabled,
		Requests:     m.IiotDeviceRequests.Enabled,
		BreakerState: m.IiotDeviceBreakerState.Enabled,
	}
}

var metricNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/-]*$`)

// deviceID is the device's id: the id key, or the deprecated device_id.
func (c *Config) deviceID() string { return device.LayerSet(c.DeprecatedDeviceID, c.ID) }

// Validate reports every problem of the configuration. The reading specs it checks are built again,
// once, when the receiver is created (there are no files to read: certificates are loaded, or
// generated, at each connect, since a missing one may be written then).
func (c *Config) Validate() error {
	return errors.Join(
		c.Settings.Validate(""),
		c.identityErrors(),
		c.Security.Validate("security."),
		c.Auth.Validate("auth.", c.Security),
		c.sessionErrors(),
		c.Subscription.Validate("subscription."),
		c.nodeErrors(),
	)
}

// identityErrors checks the server's endpoint and the keys that name the device.
func (c *Config) identityErrors() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Endpoint == "" {
		add("endpoint: required (opc.tcp://host:port)")
	} else if u, err := url.Parse(c.Endpoint); err != nil || u.Scheme != "opc.tcp" || u.Hostname() == "" || u.Port() == "" {
		add("endpoint: %q is not an opc.tcp://host:port URL", c.Endpoint)
	}
	switch {
	case c.ID != "" && c.DeprecatedDeviceID != "" && c.ID != c.DeprecatedDeviceID:
		add("device_id: %q contradicts id %q; device_id is the deprecated name of id: remove it", c.DeprecatedDeviceID, c.ID)
	case strings.TrimSpace(c.deviceID()) == "":
		add("id: required (the device.id resource attribute)")
	}
	for k := range c.ResourceAttributes {
		switch k {
		case device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress, device.AttrDeviceManufacturer, device.AttrDeviceModelName:
			add("resource_attributes: %q is set by the receiver (use id, endpoint, manufacturer, model)", k)
		}
	}
	return errors.Join(errs...)
}

// sessionErrors checks how values are obtained and how the session is kept.
func (c *Config) sessionErrors() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Mode {
	case ModePoll, ModeSubscribe:
	default:
		add("mode: unknown %q (want poll or subscribe)", c.Mode)
	}
	switch c.Timestamp {
	case TimestampSourceSource, TimestampServer, TimestampCollector:
	default:
		add("timestamp: unknown %q (want source, server or collector)", c.Timestamp)
	}
	if c.MetricPrefix != "" && !metricNameRE.MatchString(c.MetricPrefix) {
		add("metric_prefix: %q must start with a letter or _ and hold only letters, digits, _ . : / -", c.MetricPrefix)
	}
	if c.MaxNodesPerRead < 1 {
		add("max_nodes_per_read: must be >= 1, got %d", c.MaxNodesPerRead)
	}
	if c.ConnectTimeout <= 0 {
		add("connect_timeout: must be > 0, got %s", c.ConnectTimeout)
	}
	if c.RefusedNodeRetry < 0 {
		add("refused_node_retry: must be >= 0 (0 reads a refused node at every poll), got %s", c.RefusedNodeRetry)
	}
	if c.SessionTimeout < time.Second {
		add("session_timeout: must be >= 1s, got %s", c.SessionTimeout)
	}
	if c.Heartbeat.Enabled && c.Heartbeat.MaxStalled < 1 {
		add("heartbeat.max_stalled: must be >= 1, got %d", c.Heartbeat.MaxStalled)
	}
	return errors.Join(errs...)
}

// nodeErrors checks the nodes, groups and browses, and the series they would write.
func (c *Config) nodeErrors() error {
	var errs []error
	if len(c.Nodes) == 0 && len(c.Groups) == 0 && len(c.Browse) == 0 && len(c.Events) == 0 {
		errs = append(errs, errors.New("nodes, groups, browse, events: at least one node, group, browse or events entry is required"))
	}
	specs, err := c.readingSpecs()
	errs = append(errs, err)
	if err == nil {
		errs = append(errs, validateSeries(specs))
	}
	for i, b := range c.Browse {
		errs = append(errs, b.Validate(fmt.Sprintf("browse[%d].", i), c.Mode, c.Poll.Interval))
	}
	for i, e := range c.Events {
		errs = append(errs, e.Validate(fmt.Sprintf("events[%d].", i)))
	}
	return errors.Join(errs...)
}
