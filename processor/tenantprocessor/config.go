package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
)

// Config of the tenant processor. Every section is optional.
type Config struct {
	// TenantAttribute is the resource attribute holding the tenant id.
	TenantAttribute string `mapstructure:"tenant_attribute"`
	// Registry is a YAML or CSV file mapping a key attribute (device.id) to attributes.
	Registry configoptional.Optional[RegistryConfig] `mapstructure:"registry"`
	// Rules are applied in order to every resource.
	Rules []RuleConfig `mapstructure:"rules"`
	// Defaults are set on resources that do not have the attribute (static values).
	Defaults map[string]string `mapstructure:"defaults"`
	// JobInstance maps attributes to service.name / service.instance.id (Prometheus job/instance).
	JobInstance JobInstanceConfig `mapstructure:"job_instance"`
	// Required attributes and what happens to data lacking them.
	Required RequiredConfig `mapstructure:"required"`
	// Schema constrains attribute keys and values (resource and data point / span attributes).
	Schema SchemaConfig `mapstructure:"schema"`
	// Budget limits the active series per tenant (metrics only).
	Budget configoptional.Optional[BudgetConfig] `mapstructure:"budget"`
}

// RegistryConfig is the device registry file.
type RegistryConfig struct {
	// Path of the file (.yaml/.yml or .csv).
	Path string `mapstructure:"path"`
	// Format overrides detection by extension: yaml or csv.
	Format string `mapstructure:"format"`
	// Key is the resource attribute whose value is looked up in the file.
	Key string `mapstructure:"key"`
	// ReloadInterval is how often the file is checked for changes (0 disables reloading).
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// AllowEmpty lets a file without entries replace a registry that has entries. Refused by
	// default: an empty file is far more often a truncated one than an intended one.
	AllowEmpty bool `mapstructure:"allow_empty"`
	// MaxShrink is the largest fraction of the entries in use that one reload may remove or
	// strip of their tenant; a reload taking more, or one whose entries look cut off, is
	// refused. 1 turns both checks off.
	MaxShrink float64 `mapstructure:"max_shrink"`
}

// RuleConfig matches resource attributes (all conditions must hold) and sets attributes.
type RuleConfig struct {
	// Name identifies the rule in errors.
	Name string `mapstructure:"name"`
	// Match maps an attribute name to a condition; an empty match matches every resource.
	Match map[string]Condition `mapstructure:"match"`
	// Set maps attribute names to values; ${attr} inserts the value of another attribute as it
	// was before this rule (write $${attr} in a collector config file, which expands ${…}).
	Set map[string]string `mapstructure:"set"`
	// Stop ends rule evaluation for the resource when this rule matched.
	Stop bool `mapstructure:"stop"`
}

// Condition on one attribute; exactly one of the fields is set.
type Condition struct {
	Exact  *string `mapstructure:"exact"`
	Glob   string  `mapstructure:"glob"`
	Regex  string  `mapstructure:"regex"`
	Exists *bool   `mapstructure:"exists"`
}

// JobInstanceConfig holds templates for service.name and service.instance.id.
type JobInstanceConfig struct {
	// Job becomes service.name (Prometheus job), e.g. "${device.protocol}".
	Job string `mapstructure:"job"`
	// Instance becomes service.instance.id (Prometheus instance), e.g. "${device.id}".
	Instance string `mapstructure:"instance"`
}

// RequiredAction is what happens to data whose resource lacks a required attribute.
type RequiredAction string

const (
	RequiredDefaultTenant RequiredAction = "default_tenant"
	RequiredDrop          RequiredAction = "drop"
	RequiredPass          RequiredAction = "pass"
)

// RequiredConfig lists attributes every resource must have (non-empty).
type RequiredConfig struct {
	Attributes []string `mapstructure:"attributes"`
	// Action: default_tenant (hand the data to DefaultTenant), drop, or pass (count only).
	Action RequiredAction `mapstructure:"action"`
	// DefaultTenant is the tenant of data lacking required attributes (action default_tenant).
	DefaultTenant string `mapstructure:"default_tenant"`
}

// SchemaAction is what happens on a schema violation.
type SchemaAction string

const (
	SchemaDropAttribute SchemaAction = "drop_attribute"
	SchemaDropData      SchemaAction = "drop_data"
)

// SchemaConfig constrains attribute keys and values.
type SchemaConfig struct {
	// AllowedKeyPattern is a regular expression every key must match (anchor it with ^…$).
	AllowedKeyPattern string `mapstructure:"allowed_key_pattern"`
	// ForbiddenKeys are keys (or globs such as "*.session.id") that must not appear.
	ForbiddenKeys []string `mapstructure:"forbidden_keys"`
	// MaxValueLength is the longest allowed string value in bytes (0: no limit).
	MaxValueLength int `mapstructure:"max_value_length"`
	// Action: drop_attribute (default) or drop_data (the data point, span, or whole resource).
	Action SchemaAction `mapstructure:"action"`
	// AttributeValues lists the values allowed for attribute keys (resource, data point and span
	// attributes), e.g. phase: [A, B, C, total].
	AttributeValues map[string][]string `mapstructure:"attribute_values"`
	// MetricUnits gives the unit each listed metric must have.
	MetricUnits map[string]string `mapstructure:"metric_units"`
	// MetricPrefixes: a metric whose name starts with one of these must be listed in MetricUnits (or in
	// the vocabulary).
	MetricPrefixes []string `mapstructure:"metric_prefixes"`
	// Vocabulary enforces a built-in vocabulary: "electrical" (internal/device): metrics named
	// electrical.* must be its quantities with their units, and their phase, direction and quadrant
	// attributes its values.
	Vocabulary string `mapstructure:"vocabulary"`
}

// BudgetAction is what happens to data points of series beyond the budget.
type BudgetAction string

const (
	BudgetOverflow BudgetAction = "overflow"
	BudgetDrop     BudgetAction = "drop"
)

// BudgetConfig limits the active series per tenant.
type BudgetConfig struct {
	// MaxSeries is the number of active series allowed per tenant.
	MaxSeries int `mapstructure:"max_series"`
	// PerTenant overrides MaxSeries for named tenants.
	PerTenant map[string]int `mapstructure:"per_tenant"`
	// IdleTimeout frees a series not seen for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// Action: overflow (fold into one series per tenant and metric, attribute
	// otel.metric.overflow=true) or drop.
	Action BudgetAction `mapstructure:"action"`
	// MaxTenants bounds the tenants tracked; further tenants share the budget of "_other".
	MaxTenants int `mapstructure:"max_tenants"`
}

var _ confmap.Validator = (*Config)(nil)

// Validate reports every problem at once; it compiles everything the processor will use.
func (cfg *Config) Validate() error {
	_, err := compile(cfg)
	return errors.Join(err, cfg.registryExists())
}

// registryExists reports a registry path that names no file: a misspelt path would otherwise start a
// collector that labels nothing. A file that exists but does not load is the watcher's business (it
// keeps the last good registry and retries), since an edit in progress can make it fail for a moment.
func (cfg *Config) registryExists() error {
	if !cfg.Registry.HasValue() || cfg.Registry.Get().Path == "" {
		return nil
	}
	path := cfg.Registry.Get().Path
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("registry::path: %q: %w", path, errors.Unwrap(err))
	case fi.IsDir():
		return fmt.Errorf("registry::path: %q is a directory, want a .yaml, .yml or .csv file", path)
	}
	return nil
}

// compile turns the configuration into the processor's plan, collecting every error.
func compile(cfg *Config) (*plan, error) {
	c := &compiler{p: &plan{tenantKey: cfg.TenantAttribute}}
	if cfg.TenantAttribute == "" {
		c.add("tenant_attribute: must not be empty (default tenant.id)")
	}
	c.registry(cfg)
	c.rules(cfg.Rules)
	c.defaultsAndJobInstance(cfg)
	c.required(cfg.Required)
	s, schemaErrs := compileSchema(cfg.Schema)
	c.errs = append(c.errs, schemaErrs...)
	c.p.schema = s
	c.budget(cfg)
	c.selfCheck(cfg.TenantAttribute)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	c.p.finish()
	return c.p, nil
}

// compiler builds the plan one concern at a time, collecting every error.
type compiler struct {
	p    *plan
	errs []error
}

func (c *compiler) add(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *compiler) registry(cfg *Config) {
	if !cfg.Registry.HasValue() {
		return
	}
	r := cfg.Registry.Get()
	switch r.Path {
	case "":
		c.add("registry::path: required (a .yaml, .yml or .csv file)")
	default:
		f, ok := registryFormat(r.Path, r.Format)
		if !ok {
			c.add("registry::format: %q (path %q): want yaml or csv (or a .yaml/.yml/.csv path)", r.Format, r.Path)
		}
		c.p.registry = &registrySpec{
			path: r.Path, format: f, key: r.Key, interval: r.ReloadInterval,
			tenantKey: cfg.TenantAttribute, allowEmpty: r.AllowEmpty, maxShrink: r.MaxShrink,
		}
	}
	if r.Key == "" {
		c.add("registry::key: must not be empty (default device.id)")
	}
	if r.ReloadInterval < 0 {
		c.add("registry::reload_interval: %s, must not be negative (0 disables reloading)", r.ReloadInterval)
	}
	if !(r.MaxShrink >= 0 && r.MaxShrink <= 1) { // also NaN
		c.add("registry::max_shrink: %v, want a fraction from 0 to 1 (0: refuse any reload that removes an entry or its tenant; 1: no limit)", r.MaxShrink)
	}
}

func (c *compiler) rules(rules []RuleConfig) {
	for i, rc := range rules {
		where := fmt.Sprintf("rules[%d]", i)
		if rc.Name != "" {
			where += fmt.Sprintf(" %q", rc.Name)
		}
		r := rule{stop: rc.Stop}
		for _, key := range sortedKeys(rc.Match) {
			cond, err := compileCondition(key, rc.Match[key])
			if err != nil {
				c.add("%s: match %q: %v", where, key, err)
				continue
			}
			r.conds = append(r.conds, cond)
		}
		if len(rc.Set) == 0 {
			c.add("%s: set: at least one attribute to set is required", where)
		}
		for _, key := range sortedKeys(rc.Set) {
			if key == "" {
				c.add("%s: set: empty attribute name", where)
				continue
			}
			t, err := parseTemplate(rc.Set[key])
			if err != nil {
				c.add("%s: set %q: %v", where, key, err)
				continue
			}
			r.set = append(r.set, setOp{key: key, tmpl: t})
		}
		c.p.rules = append(c.p.rules, r)
	}
}

func (c *compiler) defaultsAndJobInstance(cfg *Config) {
	for _, key := range sortedKeys(cfg.Defaults) {
		if key == "" {
			c.add("defaults: empty attribute name")
			continue
		}
		c.p.defaults = append(c.p.defaults, kv{key, cfg.Defaults[key]})
	}
	for _, ji := range []struct {
		key, name, value string
	}{{attrServiceName, "job", cfg.JobInstance.Job}, {attrServiceInstance, "instance", cfg.JobInstance.Instance}} {
		if ji.value == "" {
			continue
		}
		t, err := parseTemplate(ji.value)
		if err != nil {
			c.add("job_instance::%s: %v", ji.name, err)
			continue
		}
		c.p.jobInstance = append(c.p.jobInstance, setOp{key: ji.key, tmpl: t})
	}
}

func (c *compiler) required(req RequiredConfig) {
	for i, a := range req.Attributes {
		if a == "" {
			c.add("required::attributes[%d]: empty attribute name", i)
		}
	}
	c.p.required = slices.Clone(req.Attributes)
	c.p.requiredAction = req.Action
	c.p.defaultTenant = req.DefaultTenant
	switch req.Action {
	case RequiredPass, RequiredDrop:
	case RequiredDefaultTenant:
		if req.DefaultTenant == "" {
			c.add("required::default_tenant: required with action default_tenant")
		}
	default:
		c.add("required::action: %q, want default_tenant, drop or pass", req.Action)
	}
}

func (c *compiler) budget(cfg *Config) {
	if !cfg.Budget.HasValue() {
		return
	}
	b := cfg.Budget.Get()
	if b.MaxSeries < 1 {
		c.add("budget::max_series: %d, must be at least 1", b.MaxSeries)
	}
	for _, t := range sortedKeys(b.PerTenant) {
		if b.PerTenant[t] < 1 {
			c.add("budget::per_tenant::%s: %d, must be at least 1", t, b.PerTenant[t])
		}
	}
	if b.IdleTimeout < time.Second {
		c.add("budget::idle_timeout: %s, must be at least 1s", b.IdleTimeout)
	}
	if b.Action != BudgetOverflow && b.Action != BudgetDrop {
		c.add("budget::action: %q, want overflow or drop", b.Action)
	}
	if b.MaxTenants < 1 {
		c.add("budget::max_tenants: %d, must be at least 1", b.MaxTenants)
	}
	c.p.budget = b
}

// selfCheck: attributes this processor writes must pass its own schema.
func (c *compiler) selfCheck(tenantKey string) {
	p := c.p
	if p.schema == nil {
		return
	}
	written := []string{tenantKey}
	for _, r := range p.rules {
		for _, op := range r.set {
			written = append(written, op.key)
		}
	}
	for _, d := range p.defaults {
		written = append(written, d.key)
	}
	for _, op := range p.jobInstance {
		written = append(written, op.key)
	}
	seen := map[string]bool{}
	for _, k := range written {
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if reason := p.schema.keyVerdict(k); reason != reasonNone {
			c.add("schema: attribute %q written by this processor violates the schema (%s)", k, reason)
		}
	}
	if p.schema.maxLen > 0 {
		for _, d := range p.defaults {
			if len(d.value) > p.schema.maxLen {
				c.add("defaults::%s: value longer than schema::max_value_length (%d)", d.key, p.schema.maxLen)
			}
		}
	}
}

func compileCondition(key string, c Condition) (condition, error) {
	out := condition{key: key}
	n := 0
	if c.Exact != nil {
		n++
		out.kind, out.exact = condExact, *c.Exact
	}
	if c.Glob != "" {
		n++
		out.kind, out.re = condRegex, regexp.MustCompile(globToRegexp(c.Glob))
	}
	if c.Regex != "" {
		n++
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			return out, fmt.Errorf("regex: %w", err)
		}
		out.kind, out.re = condRegex, re
	}
	if c.Exists != nil {
		n++
		out.kind, out.exists = condExists, *c.Exists
	}
	if n != 1 {
		return out, fmt.Errorf("want exactly one of exact, glob, regex, exists (got %d)", n)
	}
	return out, nil
}

// globToRegexp converts a glob (* any run, ? one character) into an anchored regular expression.
func globToRegexp(g string) string {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// registryFormat returns the registry format from the explicit setting or the file extension.
func registryFormat(path, format string) (string, bool) {
	switch strings.ToLower(format) {
	case "yaml", "yml":
		return "yaml", true
	case "csv":
		return "csv", true
	case "":
	default:
		return "", false
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return "yaml", true
	case ".csv":
		return "csv", true
	}
	return "", false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
