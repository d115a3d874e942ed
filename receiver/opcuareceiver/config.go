package opcuareceiver

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

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

// SecurityPolicy is an OPC UA security policy, or auto (the best the server offers).
type SecurityPolicy string

const (
	PolicyAuto                SecurityPolicy = "auto"
	PolicyNone                SecurityPolicy = "None"
	PolicyBasic128Rsa15       SecurityPolicy = "Basic128Rsa15"
	PolicyBasic256            SecurityPolicy = "Basic256"
	PolicyBasic256Sha256      SecurityPolicy = "Basic256Sha256"
	PolicyAes128Sha256RsaOaep SecurityPolicy = "Aes128_Sha256_RsaOaep"
	PolicyAes256Sha256RsaPss  SecurityPolicy = "Aes256_Sha256_RsaPss"
)

var securityPolicies = []SecurityPolicy{PolicyAuto, PolicyNone, PolicyBasic128Rsa15, PolicyBasic256, PolicyBasic256Sha256, PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss}

// SecurityMode is an OPC UA message security mode, or auto.
type SecurityMode string

const (
	SecurityModeAuto           SecurityMode = "auto"
	SecurityModeNone           SecurityMode = "None"
	SecurityModeSign           SecurityMode = "Sign"
	SecurityModeSignAndEncrypt SecurityMode = "SignAndEncrypt"
)

var securityModes = []SecurityMode{SecurityModeAuto, SecurityModeNone, SecurityModeSign, SecurityModeSignAndEncrypt}

// AuthType is how the session authenticates the user.
type AuthType string

const (
	AuthAnonymous   AuthType = "anonymous"
	AuthUsername    AuthType = "username"
	AuthCertificate AuthType = "certificate"
)

// MetricKind is how a node's value is exported.
type MetricKind string

const (
	KindGauge MetricKind = "gauge"
	KindSum   MetricKind = "sum"
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
	// DeviceID is the device.id resource attribute (required).
	DeviceID string `mapstructure:"device_id"`
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
}

// SecurityConfig chooses the secure channel and how the server is trusted.
type SecurityConfig struct {
	// Policy is None, Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep,
	// Aes256_Sha256_RsaPss or auto (the endpoint with the highest security level the server offers).
	Policy SecurityPolicy `mapstructure:"policy"`
	// Mode is None, Sign, SignAndEncrypt or auto.
	Mode SecurityMode `mapstructure:"mode"`
	// CertificateFile and PrivateKeyFile are the client's application instance certificate (PEM or DER)
	// and RSA key (PEM). When set but absent, a certificate is generated and written there; when not set
	// and a secure endpoint is used, a certificate is generated in memory at every start.
	CertificateFile string `mapstructure:"certificate_file"`
	PrivateKeyFile  string `mapstructure:"private_key_file"`
	// ApplicationURI of the client; it must equal the certificate's URI SAN. Default:
	// urn:<hostname>:otelcol-iiot:opcua (or the URI of a given certificate).
	ApplicationURI string `mapstructure:"application_uri"`
	// TrustedCertificatesDir holds trusted server certificates or CA certificates (PEM or DER), read at
	// every connect.
	TrustedCertificatesDir string `mapstructure:"trusted_certificates_dir"`
	// ServerCertificateFingerprints pins server certificates by SHA-256 (or SHA-1) fingerprint, hex with
	// or without colons.
	ServerCertificateFingerprints []string `mapstructure:"server_certificate_fingerprints"`
	// InsecureAcceptAnyServerCertificate trusts whatever certificate the server shows (logged).
	InsecureAcceptAnyServerCertificate bool `mapstructure:"insecure_accept_any_server_certificate"`
	// CertificateValidity is the lifetime of a generated client certificate.
	CertificateValidity time.Duration `mapstructure:"certificate_validity"`
}

// AuthConfig is the user identity of the session.
type AuthConfig struct {
	// Type is anonymous, username or certificate.
	Type     AuthType            `mapstructure:"type"`
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// CertificateFile and PrivateKeyFile are the user certificate for type certificate; empty means the
	// client's application instance certificate.
	CertificateFile string `mapstructure:"certificate_file"`
	PrivateKeyFile  string `mapstructure:"private_key_file"`
}

// HeartbeatConfig is the liveness check of every poll.
type HeartbeatConfig struct {
	// Enabled reads ServerStatus/CurrentTime and ServerStatus/State at every poll.
	Enabled bool `mapstructure:"enabled"`
	// MaxStalled is how many heartbeats in a row may return the same CurrentTime before the server is
	// treated as silent and the session is rebuilt.
	MaxStalled int `mapstructure:"max_stalled"`
}

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
	Kind        MetricKind        `mapstructure:"kind"`
	Attributes  map[string]string `mapstructure:"attributes"`
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
	Kind       MetricKind        `mapstructure:"kind"`
	Attributes map[string]string `mapstructure:"attributes"`
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

var (
	metricNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/-]*$`)
	fingerprintRE = regexp.MustCompile(`^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$`)
)

// Validate reports every problem of the configuration.
func (c *Config) Validate() error {
	errs := []error{c.Settings.Validate("")}
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Endpoint == "" {
		add("endpoint: required (opc.tcp://host:port)")
	} else if u, err := url.Parse(c.Endpoint); err != nil || u.Scheme != "opc.tcp" || u.Hostname() == "" || u.Port() == "" {
		add("endpoint: %q is not an opc.tcp://host:port URL", c.Endpoint)
	}
	if strings.TrimSpace(c.DeviceID) == "" {
		add("device_id: required (the device.id resource attribute)")
	}
	for k := range c.ResourceAttributes {
		switch k {
		case device.AttrDeviceID, device.AttrDeviceProtocol, device.AttrDeviceAddress, device.AttrDeviceManufacturer, device.AttrDeviceModelName:
			add("resource_attributes: %q is set by the receiver (use device_id, endpoint, manufacturer, model)", k)
		}
	}
	errs = append(errs, c.Security.validate(), c.Auth.validate(c.Security))

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
	errs = append(errs, c.Subscription.validate())

	if len(c.Nodes) == 0 && len(c.Groups) == 0 && len(c.Browse) == 0 {
		add("nodes, groups, browse: at least one node, group or browse is required")
	}
	specs, err := c.readingSpecs()
	errs = append(errs, err)
	if err == nil {
		errs = append(errs, checkSeries(specs))
	}
	for i, b := range c.Browse {
		errs = append(errs, b.validate(fmt.Sprintf("browse[%d].", i), c.Mode, c.Poll.Interval))
	}
	return errors.Join(errs...)
}

func (s SecurityConfig) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(securityPolicies, s.Policy) {
		add("security.policy: unknown %q (want auto, None, Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss)", s.Policy)
	}
	if !slices.Contains(securityModes, s.Mode) {
		add("security.mode: unknown %q (want auto, None, Sign or SignAndEncrypt)", s.Mode)
	}
	if s.Policy == PolicyNone && (s.Mode == SecurityModeSign || s.Mode == SecurityModeSignAndEncrypt) {
		add("security.mode: %s needs a security.policy other than None", s.Mode)
	}
	if s.Mode == SecurityModeNone && s.Policy != PolicyNone && s.Policy != PolicyAuto && slices.Contains(securityPolicies, s.Policy) {
		add("security.mode: None cannot be used with security.policy %s (want Sign or SignAndEncrypt, or policy None)", s.Policy)
	}
	if (s.CertificateFile == "") != (s.PrivateKeyFile == "") {
		add("security.certificate_file, security.private_key_file: set both or neither")
	}
	if s.CertificateFile != "" && s.CertificateFile == s.PrivateKeyFile {
		add("security.private_key_file: must differ from certificate_file")
	}
	if s.ApplicationURI != "" {
		if u, err := url.Parse(s.ApplicationURI); err != nil || u.Scheme == "" {
			add("security.application_uri: %q is not a URI (e.g. urn:site-a:gateway:otelcol)", s.ApplicationURI)
		}
	}
	for i, f := range s.ServerCertificateFingerprints {
		if !fingerprintRE.MatchString(normalizeFingerprint(f)) {
			add("security.server_certificate_fingerprints[%d]: %q is not a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) fingerprint", i, f)
		}
	}
	trusts := s.TrustedCertificatesDir != "" || len(s.ServerCertificateFingerprints) > 0
	if s.InsecureAcceptAnyServerCertificate && trusts {
		add("security.insecure_accept_any_server_certificate: cannot be combined with trusted_certificates_dir or server_certificate_fingerprints")
	}
	if s.Policy != PolicyNone && !trusts && !s.InsecureAcceptAnyServerCertificate {
		add("security: policy %s needs trusted_certificates_dir or server_certificate_fingerprints to trust the server (or insecure_accept_any_server_certificate: true)", s.Policy)
	}
	if s.CertificateValidity < time.Hour {
		add("security.certificate_validity: must be >= 1h, got %s", s.CertificateValidity)
	}
	return errors.Join(errs...)
}

func (a AuthConfig) validate(sec SecurityConfig) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch a.Type {
	case AuthAnonymous:
	case AuthUsername:
		if a.Username == "" {
			add("auth.username: required with auth.type username")
		}
	case AuthCertificate:
		if (a.CertificateFile == "") != (a.PrivateKeyFile == "") {
			add("auth.certificate_file, auth.private_key_file: set both or neither (neither: the client certificate)")
		}
		if a.CertificateFile == "" && sec.Policy == PolicyNone {
			add("auth.certificate_file: required with auth.type certificate when security.policy is None (no client certificate is in use)")
		}
	default:
		add("auth.type: unknown %q (want anonymous, username or certificate)", a.Type)
	}
	if a.Type != AuthUsername && (a.Username != "" || a.Password != "") {
		add("auth.username, auth.password: only used with auth.type username")
	}
	if a.Type != AuthCertificate && (a.CertificateFile != "" || a.PrivateKeyFile != "") {
		add("auth.certificate_file, auth.private_key_file: only used with auth.type certificate")
	}
	return errors.Join(errs...)
}

func (s SubscriptionConfig) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.PublishingInterval <= 0 {
		add("subscription.publishing_interval: must be > 0, got %s", s.PublishingInterval)
	}
	if s.KeepAliveCount < 1 {
		add("subscription.keep_alive_count: must be >= 1")
	}
	if s.LifetimeCount < 3*s.KeepAliveCount {
		add("subscription.lifetime_count: must be >= 3 × keep_alive_count (%d), got %d", 3*s.KeepAliveCount, s.LifetimeCount)
	}
	if s.RepeatInterval < 0 {
		add("subscription.repeat_interval: must be >= 0 (0: off), got %s", s.RepeatInterval)
	}
	errs = append(errs, s.MonitoredItemDefaults.validate("subscription."))
	return errors.Join(errs...)
}

func (m MonitoredItemDefaults) validate(prefix string) error {
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

func (d NodeDefaults) validate(prefix string, mode Mode, pollInterval time.Duration) error {
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
	switch d.Kind {
	case "", KindGauge, KindSum:
	default:
		add("%skind: unknown %q (want gauge or sum)", prefix, d.Kind)
	}
	errs = append(errs, d.MonitoredItemDefaults.validate(prefix))
	return errors.Join(errs...)
}

func (b BrowseConfig) validate(prefix string, mode Mode, pollInterval time.Duration) error {
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
	errs = append(errs, b.NodeDefaults.validate(prefix, mode, pollInterval))
	return errors.Join(errs...)
}

// readingSpec is one configured node with every default applied.
type readingSpec struct {
	ref         nodeRef
	metric      string
	unit        string
	description string
	kind        MetricKind
	attrs       map[string]string
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
		errs = append(errs, g.NodeDefaults.validate(prefix+".", c.Mode, c.Poll.Interval))
		if g.Namespace != "" {
			if u, err := url.Parse(g.Namespace); err != nil || u.Scheme == "" {
				errs = append(errs, fmt.Errorf("%s.namespace: %q is not a namespace URI", prefix, g.Namespace))
			}
		}
		if len(g.Nodes) == 0 {
			errs = append(errs, fmt.Errorf("%s.nodes: a group needs at least one node", prefix))
		}
		eff := g.NodeDefaults.over(top)
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

// over returns d with every zero field taken from parent (attributes are merged, d's win).
func (d NodeDefaults) over(parent NodeDefaults) NodeDefaults {
	out := parent
	if d.MetricPrefix != "" {
		out.MetricPrefix = d.MetricPrefix
	}
	if d.Interval != 0 {
		out.Interval = d.Interval
	}
	if d.Unit != "" {
		out.Unit = d.Unit
	}
	if d.Kind != "" {
		out.Kind = d.Kind
	}
	out.Attributes = mergeAttrs(parent.Attributes, d.Attributes)
	out.MonitoredItemDefaults = d.MonitoredItemDefaults.over(parent.MonitoredItemDefaults)
	// In subscribe mode a group's interval is the default sampling interval of its nodes.
	if d.Interval != 0 && d.SamplingInterval == nil {
		out.SamplingInterval = &d.Interval
	}
	return out
}

// over returns m with every key it leaves out taken from parent. The pointers stay: an unset
// sampling interval means the publishing interval (see monitoredItemRequest).
func (m MonitoredItemDefaults) over(parent MonitoredItemDefaults) MonitoredItemDefaults {
	out := parent
	if m.SamplingInterval != nil {
		out.SamplingInterval = m.SamplingInterval
	}
	if m.QueueSize != nil {
		out.QueueSize = m.QueueSize
	}
	if m.Trigger != "" {
		out.Trigger = m.Trigger
	}
	if m.Deadband.Type != "" {
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
	switch n.Kind {
	case "", KindGauge, KindSum:
	default:
		add("%s.kind: unknown %q (want gauge or sum)", prefix, n.Kind)
	}
	for k := range n.Attributes {
		if k == attrIndex || k == attrNodeID || k == "" {
			add("%s.attributes: %q is reserved", prefix, k)
		}
	}
	errs = append(errs, n.MonitoredItemDefaults.validate(prefix+"."))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &readingSpec{
		ref:         ref,
		metric:      metric,
		unit:        firstNonEmpty(n.Unit, defaults.Unit),
		description: n.Description,
		kind:        MetricKind(firstNonEmpty(string(n.Kind), string(defaults.Kind), string(KindGauge))),
		attrs:       mergeAttrs(defaults.Attributes, n.Attributes),
		interval:    defaults.Interval,
		group:       group,
		item:        n.MonitoredItemDefaults.over(defaults.MonitoredItemDefaults),
	}
	return s, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkSeries rejects two nodes that would write the same series, and one metric name used with two
// units or kinds.
func checkSeries(specs []*readingSpec) error {
	var errs []error
	type def struct {
		unit string
		kind MetricKind
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

func normalizeFingerprint(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sha256:"), "sha1:")
	s = strings.ReplaceAll(s, ":", "")
	s = strings.ReplaceAll(s, " ", "")
	return strings.ToLower(s)
}

func decodeFingerprint(s string) []byte {
	b, _ := hex.DecodeString(normalizeFingerprint(s))
	return b
}
