package tenantprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadata"
)

func ptr[T any](v T) *T { return &v }

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		name      string
		check     func(t *testing.T, cfg *Config)
		errs      []string
		unmarshal string
	}{
		{
			name: "",
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, map[string]string{"env": "prod"}, cfg.Defaults)
				assert.False(t, cfg.Registry.HasValue())
				assert.False(t, cfg.Budget.HasValue())
			},
		},
		{
			name: "full",
			check: func(t *testing.T, cfg *Config) {
				require.True(t, cfg.Registry.HasValue())
				assert.Equal(t, RegistryConfig{Path: "testdata/registry/devices.yaml", Key: "device.id", ReloadInterval: 5 * time.Second, AllowEmpty: true, MaxShrink: 0.25}, *cfg.Registry.Get())
				require.Len(t, cfg.Rules, 2)
				assert.Equal(t, RuleConfig{
					Name: "inverters",
					Match: map[string]Condition{
						"device.id": {Glob: "inv-*"},
						"site":      {Regex: "^sz-[0-9]+$"},
					},
					Set:  map[string]string{"tenant.id": "pv-owner", "device_group": "inverters-${site}"},
					Stop: true,
				}, cfg.Rules[0])
				assert.Equal(t, Condition{Exact: ptr("dlt645")}, cfg.Rules[1].Match["device.protocol"])
				assert.Equal(t, Condition{Exists: ptr(false)}, cfg.Rules[1].Match["tenant.id"])
				assert.Equal(t, JobInstanceConfig{Job: "${device.protocol}", Instance: "${site}/${device.id}"}, cfg.JobInstance)
				assert.Equal(t, RequiredConfig{Attributes: []string{"tenant.id", "site"}, Action: RequiredDefaultTenant, DefaultTenant: "site-operator"}, cfg.Required)
				assert.Equal(t, SchemaConfig{AllowedKeyPattern: "^[a-z][a-z0-9_.]*$", ForbiddenKeys: []string{"user.id", "*.session.id"}, MaxValueLength: 128, Action: SchemaDropAttribute}, cfg.Schema)
				require.True(t, cfg.Budget.HasValue())
				assert.Equal(t, BudgetConfig{MaxSeries: 5000, PerTenant: map[string]int{"grid-operator": 20000}, IdleTimeout: 10 * time.Minute, Action: BudgetOverflow, MaxTenants: 16}, *cfg.Budget.Get())
			},
		},
		{
			name: "csv_registry",
			check: func(t *testing.T, cfg *Config) {
				r := cfg.Registry.Get()
				assert.Equal(t, "device.id", r.Key)
				assert.Equal(t, 10*time.Second, r.ReloadInterval)
				assert.False(t, r.AllowEmpty, "an empty file does not replace a registry by default")
				assert.Equal(t, 0.5, r.MaxShrink)
				f, ok := registryFormat(r.Path, r.Format)
				assert.True(t, ok)
				assert.Equal(t, "csv", f)
			},
		},
		{
			name: "bad",
			errs: []string{
				"tenant_attribute: must not be empty",
				`registry::format: "" (path "/etc/registry.json"): want yaml or csv`,
				"registry::key: must not be empty",
				"registry::reload_interval: -1s, must not be negative",
				"registry::max_shrink: 1.5, want a fraction from 0 to 1",
				`rules[0] "broken": match "device.id": want exactly one of exact, glob, regex, exists (got 2)`,
				`rules[0] "broken": match "site": regex: error parsing regexp`,
				`rules[0] "broken": set "tenant.id": unclosed ${`,
				"rules[1]: set: at least one attribute to set is required",
				"job_instance::job: empty ${}",
				"required::attributes[0]: empty attribute name",
				"required::default_tenant: required with action default_tenant",
				"schema::allowed_key_pattern: error parsing regexp",
				"schema::forbidden_keys[0]: empty key",
				"schema::max_value_length: -1, must not be negative",
				`schema::action: "remove", want drop_attribute or drop_data`,
				"budget::max_series: 0, must be at least 1",
				"budget::per_tenant::x: 0, must be at least 1",
				"budget::idle_timeout: 10ms, must be at least 1s",
				`budget::action: "spill", want overflow or drop`,
				"budget::max_tenants: 0, must be at least 1",
			},
		},
		{
			name: "self_violating",
			errs: []string{
				`schema: attribute "Tenant-ID" written by this processor violates the schema (key_pattern)`,
				"defaults::region: value longer than schema::max_value_length (8)",
			},
		},
		{
			name: "shrink_negative",
			errs: []string{"registry::max_shrink: -0.1, want a fraction from 0 to 1 (0: refuse any reload that removes an entry or its tenant; 1: no limit)"},
		},
		{
			name: "shrink_off",
			check: func(t *testing.T, cfg *Config) {
				assert.Zero(t, cfg.Registry.Get().MaxShrink, "0 is a valid setting, not replaced by the default")
			},
		},
		{
			name: "missing_registry",
			errs: []string{`registry::path: "testdata/registry/devcies.yaml": no such file or directory`},
		},
		{
			name:      "typo",
			unmarshal: "rulez",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.name).String())
			require.NoError(t, err)
			cfg := createDefaultConfig().(*Config)
			err = sub.Unmarshal(cfg)
			if tt.unmarshal != "" {
				require.ErrorContains(t, err, tt.unmarshal)
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				tt.check(t, cfg)
				return
			}
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	require.NoError(t, confmap.Validate(cfg))
	c := cfg.(*Config)
	assert.Equal(t, "tenant.id", c.TenantAttribute)
	reg := c.Registry
	assert.Equal(t, RegistryConfig{Key: "device.id", ReloadInterval: 10 * time.Second, MaxShrink: 0.5}, *reg.GetOrInsertDefault())
	b := c.Budget
	assert.Equal(t, BudgetConfig{MaxSeries: 10000, IdleTimeout: 15 * time.Minute, Action: BudgetOverflow, MaxTenants: 100}, *b.GetOrInsertDefault())
}

func TestTemplateParse(t *testing.T) {
	tm, err := parseTemplate("${site}/${device.id}-x")
	require.NoError(t, err)
	assert.Equal(t, []string{"site", "device.id"}, tm.refs)
	v, ok := tm.render(map[string]string{"site": "sz-1", "device.id": "inv-7"})
	assert.True(t, ok)
	assert.Equal(t, "sz-1/inv-7-x", v)
	_, ok = tm.render(map[string]string{"site": "sz-1"})
	assert.False(t, ok, "a missing reference leaves the attribute unset")

	tm, err = parseTemplate("plain")
	require.NoError(t, err)
	v, ok = tm.render(nil)
	assert.True(t, ok)
	assert.Equal(t, "plain", v)

	for _, bad := range []string{"${", "a${b", "${}"} {
		_, err := parseTemplate(bad)
		assert.Error(t, err, bad)
	}
}

func TestGlob(t *testing.T) {
	c, err := compileCondition("k", Condition{Glob: "inv-??.*"})
	require.NoError(t, err)
	assert.True(t, c.holds(map[string]string{"k": "inv-01.a"}))
	assert.False(t, c.holds(map[string]string{"k": "inv-1.a"}))
	assert.False(t, c.holds(map[string]string{"k": "xinv-01.a"}))
	assert.False(t, c.holds(map[string]string{}))
}
