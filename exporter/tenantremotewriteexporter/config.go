package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	prw "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"golang.org/x/net/http/httpguts"
)

// tenantPlaceholder is replaced by the (path-escaped) tenant in the endpoint.
const tenantPlaceholder = "{tenant}"

// maxTenantLength bounds tenant ids (the limit Mimir and Cortex apply).
const maxTenantLength = 150

// Config of the tenantremotewrite exporter.
//
// Every setting of the contrib remote-write exporter is available at the top level (endpoint,
// headers, tls, namespace, external_labels, resource_to_telemetry_conversion, target_info, …);
// `timeout` and `retry_on_failure` govern the durable layer of this exporter (the underlying
// exporter runs with its own retry and queue disabled).
type Config struct {
	prw.Config `mapstructure:",squash"`

	// QueueConfig is the sending queue of each tenant. With `storage:` naming a storage
	// extension (file_storage) it is persistent: data survives backend outages and restarts.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// Tenant enables the split by tenant. Absent: one queue, one endpoint, no tenant header.
	Tenant configoptional.Optional[TenantConfig] `mapstructure:"tenant"`

	// MaxSampleAge drops data points older than this when a request is sent (each attempt),
	// instead of sending what the backend refuses: a stock Prometheus refuses samples more than
	// 1 h older than its newest one, and refuses the whole request with them. 0 disables.
	MaxSampleAge time.Duration `mapstructure:"max_sample_age"`

	// MaxQueueBytes bounds each tenant's persistent queue: above it the oldest queued requests
	// are dropped (counted) until it fits, so a long outage cannot fill the disk and the newest
	// data is kept. 0 disables (sending_queue::queue_size then refuses the newest data).
	MaxQueueBytes int64 `mapstructure:"max_queue_bytes"`

	// Delivery chooses the order in which queued data reaches the backend.
	Delivery DeliveryConfig `mapstructure:"delivery"`

	// PromoteResourceAttributes are the resource attributes put on every series as labels (the
	// ones people query by); the others stay on target_info, once per resource. Ignored when
	// resource_to_telemetry_conversion::enabled is true (every attribute on every series).
	PromoteResourceAttributes []string `mapstructure:"promote_resource_attributes"`
}

// DeliveryConfig chooses between in-order delivery and fresh data first.
type DeliveryConfig struct {
	// Mode is in_order (every backend) or fresh_first (backends that accept out-of-order
	// samples: new data is sent at once, the backlog behind it).
	Mode string `mapstructure:"mode"`
	// BacklogShare is the share of the time the backlog may use in fresh_first (0 < share <= 1).
	BacklogShare float64 `mapstructure:"backlog_share"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// TenantConfig selects the tenant of each resource and how it is sent.
type TenantConfig struct {
	// Attribute is the resource attribute holding the tenant id.
	Attribute string `mapstructure:"attribute"`
	// Header is the HTTP header carrying the tenant id ("" sends none; then the endpoint must
	// contain {tenant}).
	Header string `mapstructure:"header"`
	// DefaultTenant receives data without a valid tenant attribute; empty drops such data.
	DefaultTenant string `mapstructure:"default_tenant"`
	// MaxTenants bounds the number of tenants (each has a queue and a client).
	MaxTenants int `mapstructure:"max_tenants"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var (
	_ confmap.Unmarshaler = (*Config)(nil)
	_ confmap.Validator   = (*Config)(nil)
)

// ourKeys are the keys of this exporter; all others belong to the embedded remote-write config.
var ourKeys = []string{"sending_queue", "tenant", "max_sample_age", "max_queue_bytes", "delivery", "promote_resource_attributes"}

// Unmarshal splits the configuration between our keys and the embedded remote-write config,
// whose own Unmarshal (top-level vs `http:` client settings) must see only its keys.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	ours := map[string]any{}
	for _, k := range ourKeys {
		if v, ok := raw[k]; ok {
			ours[k] = v
			delete(raw, k)
		}
	}
	inner := struct {
		PRW prw.Config `mapstructure:"prw"`
	}{PRW: cfg.Config}
	if err := confmap.NewFromStringMap(map[string]any{"prw": raw}).Unmarshal(&inner); err != nil {
		return err
	}
	cfg.Config = inner.PRW
	own := struct {
		QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
		Tenant        configoptional.Optional[TenantConfig]                    `mapstructure:"tenant"`
		MaxSampleAge  time.Duration                                            `mapstructure:"max_sample_age"`
		MaxQueueBytes int64                                                    `mapstructure:"max_queue_bytes"`
		Delivery      DeliveryConfig                                           `mapstructure:"delivery"`
		Promote       []string                                                 `mapstructure:"promote_resource_attributes"`
	}{QueueConfig: cfg.QueueConfig, Tenant: cfg.Tenant, MaxSampleAge: cfg.MaxSampleAge, MaxQueueBytes: cfg.MaxQueueBytes, Delivery: cfg.Delivery, Promote: cfg.PromoteResourceAttributes}
	if err := confmap.NewFromStringMap(ours).Unmarshal(&own); err != nil {
		return err
	}
	cfg.QueueConfig, cfg.Tenant, cfg.MaxSampleAge, cfg.MaxQueueBytes = own.QueueConfig, own.Tenant, own.MaxSampleAge, own.MaxQueueBytes
	cfg.Delivery, cfg.PromoteResourceAttributes = own.Delivery, own.Promote
	return nil
}

// Validate reports every problem of our keys at once. The embedded remote-write config is
// validated by its own Validate (confmap.Validate walks into it).
func (cfg *Config) Validate() error {
	var errs []error
	endpoint := cfg.HTTP.Endpoint
	templated := strings.Contains(endpoint, tenantPlaceholder)
	switch endpoint {
	case "":
		errs = append(errs, errors.New("endpoint: required (the remote-write URL, e.g. http://prometheus:9090/api/v1/write; may contain {tenant})"))
	default:
		probe := strings.ReplaceAll(endpoint, tenantPlaceholder, "tenant")
		if u, err := url.ParseRequestURI(probe); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint: %q is not an http(s) URL", endpoint))
		}
	}
	if cfg.RemoteWriteQueue.Enabled {
		errs = append(errs, errors.New("remote_write_queue: must stay disabled (enabled: false); this exporter queues in sending_queue, which can be persistent"))
	}
	if cfg.WAL.HasValue() {
		errs = append(errs, errors.New("wal: not supported; use sending_queue with storage: file_storage for durability"))
	}
	if cfg.MaxSampleAge < 0 {
		errs = append(errs, fmt.Errorf("max_sample_age: %s, must be 0 (keep every sample) or positive (e.g. 55m for a stock Prometheus)", cfg.MaxSampleAge))
	}
	if cfg.QueueConfig.HasValue() {
		q := cfg.QueueConfig.Get()
		if q.WaitForResult && q.StorageID != nil {
			errs = append(errs, errors.New("sending_queue: wait_for_result cannot be used with storage"))
		}
	}
	switch cfg.Delivery.Mode {
	case DeliveryInOrder:
	case DeliveryFreshFirst:
		if !cfg.QueueConfig.HasValue() {
			errs = append(errs, errors.New("delivery::mode: fresh_first needs sending_queue (its backlog is a second queue of the same kind)"))
		}
	default:
		errs = append(errs, fmt.Errorf("delivery::mode: %q, must be in_order (any backend) or fresh_first (backends accepting out-of-order samples)", cfg.Delivery.Mode))
	}
	if cfg.Delivery.BacklogShare <= 0 || cfg.Delivery.BacklogShare > 1 {
		errs = append(errs, fmt.Errorf("delivery::backlog_share: %g, must be in (0, 1] (share of the time the backlog may send in fresh_first)", cfg.Delivery.BacklogShare))
	}
	switch q := cfg.QueueConfig.Get(); {
	case cfg.MaxQueueBytes < 0:
		errs = append(errs, fmt.Errorf("max_queue_bytes: %d, must be 0 (no budget) or positive", cfg.MaxQueueBytes))
	case cfg.MaxQueueBytes == 0:
	case !cfg.QueueConfig.HasValue() || q.StorageID == nil:
		errs = append(errs, errors.New("max_queue_bytes: needs a persistent queue (sending_queue::storage); an in-memory queue is bounded by sending_queue::queue_size"))
	}

	for i, k := range cfg.PromoteResourceAttributes {
		if k == "" {
			errs = append(errs, fmt.Errorf("promote_resource_attributes[%d]: empty; list resource attribute keys such as device.id or site", i))
		}
	}

	if !cfg.Tenant.HasValue() {
		if templated {
			errs = append(errs, errors.New("endpoint: contains {tenant} but the tenant section is not configured (add `tenant:` to split by tenant)"))
		}
		return errors.Join(errs...)
	}
	t := cfg.Tenant.Get()
	if t.Attribute == "" {
		errs = append(errs, errors.New("tenant::attribute: must not be empty (the resource attribute holding the tenant id, default tenant.id)"))
	}
	if t.Header != "" && !httpguts.ValidHeaderFieldName(t.Header) {
		errs = append(errs, fmt.Errorf("tenant::header: %q is not a valid HTTP header name", t.Header))
	}
	if t.Header == "" && !templated {
		errs = append(errs, errors.New("tenant::header: empty and endpoint has no {tenant}: tenants could not be told apart (set a header such as X-Scope-OrgID or put {tenant} in endpoint)"))
	}
	if t.MaxTenants < 1 {
		errs = append(errs, fmt.Errorf("tenant::max_tenants: %d, must be at least 1", t.MaxTenants))
	}
	if t.DefaultTenant != "" && !validTenant(t.DefaultTenant) {
		errs = append(errs, fmt.Errorf("tenant::default_tenant: %q is not a valid tenant id (1-%d printable ASCII characters, no space or '/', not . or ..)", t.DefaultTenant, maxTenantLength))
	}
	return errors.Join(errs...)
}

// budgetShadowed tells whether sending_queue::queue_size (in bytes) stops the queue before
// max_queue_bytes does: the newest data is then refused before the budget drops the oldest. Not an
// error, so that lowering the queue size alone (one environment variable) never stops the collector.
func (cfg *Config) budgetShadowed() bool {
	q := cfg.QueueConfig.Get()
	return cfg.MaxQueueBytes > 0 && cfg.QueueConfig.HasValue() && q.Sizer == exporterhelper.RequestSizerTypeBytes && q.QueueSize <= cfg.MaxQueueBytes
}

// validTenant accepts ids that are safe both as a header value and as a URL path segment.
func validTenant(s string) bool {
	if s == "" || len(s) > maxTenantLength || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}
