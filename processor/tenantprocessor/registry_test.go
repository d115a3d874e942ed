package tenantprocessor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor/internal/metadatatest"
)

// registryGood is the registry of a site with two tenants; devices not in it belong to the
// default tenant tenant-c (required tenant.id, action default_tenant).
const registryGood = `# device.id -> attributes
a-1:
  tenant.id: tenant-a
  site: north
a-2:
  tenant.id: tenant-a
  site: north
a-3:
  tenant.id: tenant-a
  site: north
b-1:
  site: south
  tenant.id: tenant-b
b-2:
  site: south
  tenant.id: tenant-b
b-3:
  site: south
  tenant.id: tenant-b
`

const registryA4 = "a-4:\n  tenant.id: tenant-a\n  site: north\n"

var registryDevices = []string{"a-1", "a-2", "a-3", "a-4", "b-1", "b-2", "b-3", "x-1"}

// owner is a device's tenant and site as the exporter must see them.
type owner struct{ tenant, site string }

var (
	ownerA = owner{"tenant-a", "north"}
	ownerB = owner{"tenant-b", "south"}
	ownerC = owner{"tenant-c", ""}
)

// registryHarness is a started processor reading a real registry file, with its reload driven
// by the test: tick does what the processor does every reload_interval.
type registryHarness struct {
	t    *testing.T
	path string
	tp   *tenantProcessor
	tel  *componenttest.Telemetry
	logs *observer.ObservedLogs
	mod  time.Time
}

func newRegistryHarness(t *testing.T, initial *string, edit func(*RegistryConfig)) *registryHarness {
	h := &registryHarness{t: t, path: filepath.Join(t.TempDir(), "registry.yaml"), mod: time.Unix(1_700_000_000, 0)}
	if initial != nil {
		h.write(*initial)
	}
	cfg := createDefaultConfig().(*Config)
	r := cfg.Registry.GetOrInsertDefault()
	r.Path = h.path
	r.ReloadInterval = 0 // no ticker: the test calls check as the ticker would
	if edit != nil {
		edit(r)
	}
	cfg.Required = RequiredConfig{Attributes: []string{"tenant.id"}, Action: RequiredDefaultTenant, DefaultTenant: "tenant-c"}
	// compile, not Validate: some tests create the file only later (a registry gone at start).
	_, err := compile(cfg)
	require.NoError(t, err)

	h.tel = newTelemetry(t)
	set := h.tel.NewTelemetrySettings()
	core, logs := observer.New(zapcore.InfoLevel)
	set.Logger = zap.New(core)
	h.logs = logs
	tp, err := newTenantProcessor(set, cfg)
	require.NoError(t, err)
	require.NoError(t, tp.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, tp.shutdown(context.Background())) })
	h.tp = tp
	return h
}

// write replaces the file's content (as a truncating editor or cp does) with a new
// modification time, whatever the file system's resolution.
func (h *registryHarness) write(content string) {
	require.NoError(h.t, os.WriteFile(h.path, []byte(content), 0o600))
	h.mod = h.mod.Add(time.Second)
	require.NoError(h.t, os.Chtimes(h.path, h.mod, h.mod))
}

func (h *registryHarness) tick() { h.tp.watcher.check(context.Background(), false) }

// owners sends one data point per device through the processor and returns the tenant and
// site each device's data leaves with.
func (h *registryHarness) owners() map[string]owner {
	var resources []res
	for i, d := range registryDevices {
		resources = append(resources, res{attrs: map[string]any{"device.id": d}, metrics: []met{{name: "iiot.power", points: []pt{{value: float64(i)}}}}})
	}
	out, err := h.tp.processMetrics(context.Background(), build(resources...))
	require.NoError(h.t, err)
	got := map[string]owner{}
	for i := range out.ResourceMetrics().Len() {
		attrs := out.ResourceMetrics().At(i).Resource().Attributes()
		dev, _ := attrs.Get("device.id")
		var o owner
		if v, ok := attrs.Get("tenant.id"); ok {
			o.tenant = v.Str()
		}
		if v, ok := attrs.Get("site"); ok {
			o.site = v.Str()
		}
		got[dev.Str()] = o
	}
	return got
}

// settle ticks twice (a change is loaded once the file stayed the same for one interval) and
// checks the owners after each tick, so that no intermediate state escapes the assertion.
func (h *registryHarness) settle(want map[string]owner, step string) {
	for i := range 2 {
		h.tick()
		require.Equal(h.t, want, h.owners(), "%s, tick %d", step, i+1)
	}
}

func (h *registryHarness) warnings(reason string) int {
	n := 0
	for _, e := range h.logs.FilterLevelExact(zapcore.WarnLevel).All() {
		if e.ContextMap()["reason"] == reason {
			n++
		}
	}
	return n
}

func ownersOf(a4 owner) map[string]owner {
	return map[string]owner{
		"a-1": ownerA, "a-2": ownerA, "a-3": ownerA, "a-4": a4,
		"b-1": ownerB, "b-2": ownerB, "b-3": ownerB, "x-1": ownerC,
	}
}

// The incident of issue 11: a registry file emptied or cut short must never move a device's
// data to another tenant. Through a sequence of damaged files no data point of tenant A or B
// leaves with another tenant (the exporter derives X-Scope-OrgID and the URL from tenant.id);
// a good file is then applied.
func TestRegistryDamagedFilesKeepLastGood(t *testing.T) {
	good := registryGood
	h := newRegistryHarness(t, &good, nil)
	want := ownersOf(ownerC) // a-4 is not registered yet
	require.Equal(t, want, h.owners(), "first load")

	steps := []struct {
		name, content, reason string
	}{
		{"empty file (: > registry.yaml)", "", refusedEmpty},
		{"only comments left", "# device.id -> attributes\n", refusedEmpty},
		{"truncated mid-entry (b-3 keeps its key, loses its tenant)", registryGood[:strings.LastIndex(registryGood, "  tenant.id")], refusedTruncated},
		{"truncated inside the last tenant value (tenant.id: tena)", registryGood[:len(registryGood)-5], refusedTruncated},
		{"failed copy of a new version, cut in b-2", registryA4 + registryGood[:strings.Index(registryGood, "b-2:")+5], refusedTruncated},
		{"most entries gone (a-1, a-2 left)", registryGood[:strings.Index(registryGood, "a-3:")], refusedShrink},
	}
	for _, s := range steps {
		warned := len(h.logs.FilterLevelExact(zapcore.WarnLevel).All())
		h.write(s.content)
		h.settle(want, s.name)
		w := h.logs.FilterLevelExact(zapcore.WarnLevel).All()
		require.Len(t, w, warned+1, s.name)
		assert.Equal(t, s.reason, w[warned].ContextMap()["reason"], s.name)
	}
	// The same bad content written again (a config-management run, touch) is reported once.
	h.write("")
	h.settle(want, "empty file again")
	h.write("")
	h.settle(want, "empty file once more")
	assert.Equal(t, 3, h.warnings(refusedEmpty), "one warning per bad content, not per reload")

	// A good file (one device added) is applied.
	h.write(registryGood + registryA4)
	h.tick()
	require.Equal(t, want, h.owners(), "changed file not loaded before it is stable")
	h.tick()
	want = ownersOf(ownerA)
	require.Equal(t, want, h.owners(), "good file applied")

	metadatatest.AssertEqualProcessorTenantRegistryReloads(t, h.tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("result", "success")), Value: 2},
		{Attributes: aset(str("result", "refused"), str("reason", refusedEmpty)), Value: 3},
		{Attributes: aset(str("result", "refused"), str("reason", refusedTruncated)), Value: 3},
		{Attributes: aset(str("result", "refused"), str("reason", refusedShrink)), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	w := h.logs.FilterMessageSnippet("lost their tenant").All()
	require.Len(t, w, 3)
	assert.Equal(t, []any{"b-3"}, w[0].ContextMap()["examples"])
	assert.Equal(t, []any{"b-2"}, w[2].ContextMap()["examples"])
}

// The opt-ins: an empty registry or a large shrink that is intended is applied.
func TestRegistryShrinkOptIn(t *testing.T) {
	good := registryGood
	allDefault := map[string]owner{}
	for _, d := range registryDevices {
		allDefault[d] = ownerC
	}

	t.Run("allow_empty", func(t *testing.T) {
		h := newRegistryHarness(t, &good, func(r *RegistryConfig) { r.AllowEmpty = true })
		h.write("")
		h.tick()
		h.tick()
		assert.Equal(t, allDefault, h.owners())
		// allow_empty does not let a file cut short through
		h.write(registryGood)
		h.tick()
		h.tick()
		h.write(registryGood[:strings.Index(registryGood, "a-3:")])
		h.settle(ownersOf(ownerC), "most entries gone")
	})

	t.Run("max_shrink 1", func(t *testing.T) {
		h := newRegistryHarness(t, &good, func(r *RegistryConfig) { r.MaxShrink = 1 })
		h.write(registryGood[:strings.Index(registryGood, "a-3:")])
		h.tick()
		h.tick()
		want := map[string]owner{}
		for d, o := range allDefault {
			want[d] = o
		}
		want["a-1"], want["a-2"] = ownerA, ownerA
		assert.Equal(t, want, h.owners())
		// an empty file still needs allow_empty
		h.write("")
		h.settle(want, "empty")
	})

	t.Run("max_shrink 0.8", func(t *testing.T) {
		h := newRegistryHarness(t, &good, func(r *RegistryConfig) { r.MaxShrink = 0.8 })
		h.write(registryGood[:strings.Index(registryGood, "a-3:")]) // 4 of 6 removed: 0.67
		h.tick()
		h.tick()
		assert.Equal(t, ownerC, h.owners()["b-1"])
	})

	t.Run("default: exactly half removed is an edit", func(t *testing.T) {
		h := newRegistryHarness(t, &good, nil)
		h.write(registryGood[:strings.Index(registryGood, "b-1:")]) // 3 of 6
		h.tick()
		h.tick()
		assert.Equal(t, ownerC, h.owners()["b-1"])
		assert.Equal(t, ownerA, h.owners()["a-3"])
	})
}

// At start there is nothing to compare with: a fresh install may begin with an empty or no
// registry. What is loaded then is protected like any registry.
func TestRegistryEmptyAtStart(t *testing.T) {
	empty := ""
	h := newRegistryHarness(t, &empty, nil)
	allDefault := map[string]owner{}
	for _, d := range registryDevices {
		allDefault[d] = ownerC
	}
	assert.Equal(t, allDefault, h.owners())
	require.Len(t, h.logs.FilterMessageSnippet("has no entries; resources are labelled by rules").All(), 1)

	h.write(registryGood)
	h.tick()
	h.tick()
	assert.Equal(t, ownersOf(ownerC), h.owners())

	h.write("")
	h.settle(ownersOf(ownerC), "emptied after a good registry")
	assert.Equal(t, 1, h.warnings(refusedEmpty))

	// A missing file at start, then an empty one: applied (nothing to lose).
	h2 := newRegistryHarness(t, nil, nil)
	require.Len(t, h2.logs.FilterMessageSnippet("does not load").All(), 1)
	h2.write("")
	h2.tick()
	h2.tick()
	assert.Equal(t, allDefault, h2.owners())
	metadatatest.AssertEqualProcessorTenantRegistryReloads(t, h2.tel, []metricdata.DataPoint[int64]{
		{Attributes: aset(str("result", "success")), Value: 1},
		{Attributes: aset(str("result", "error")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}

func TestRegistrySuspicious(t *testing.T) {
	const yamlGood = "a: {tenant.id: ta, site: s}\nb: {tenant.id: ta}\nc: {tenant.id: tb}\nd: {site: s}\n"
	const csvGood = "device.id,site,tenant.id\na,s,ta\nb,s,ta\nc,s,tb\nd,s,\n"
	for _, tc := range []struct {
		name, format, cur, next string
		maxShrink               float64
		allowEmpty              bool
		want                    string
		dropped                 []string
	}{
		{name: "edit: one added, one changed, one removed", format: "yaml", cur: yamlGood, next: "a: {tenant.id: tb}\nb: {tenant.id: ta}\nd: {}\ne: {tenant.id: tc}\n", dropped: []string{"c"}},
		{name: "tenant renamed to a prefix is an edit", format: "yaml", cur: yamlGood, next: "a: {tenant.id: t}\nb: {tenant.id: ta}\nc: {tenant.id: tb}\nd: {site: s}\n"},
		{name: "entry without tenant was without one", format: "yaml", cur: yamlGood, next: "a: {tenant.id: ta}\nb: {tenant.id: ta}\nc: {tenant.id: tb}\nd:\n"},
		{name: "empty", format: "yaml", cur: yamlGood, next: "", want: refusedEmpty},
		{name: "empty allowed", format: "yaml", cur: yamlGood, next: "", allowEmpty: true},
		{name: "empty, max_shrink 1", format: "yaml", cur: yamlGood, next: "\n", maxShrink: 1, want: refusedEmpty},
		{name: "stripped tenant", format: "yaml", cur: yamlGood, next: "a: {site: s}\nb: {tenant.id: ta}\nc: {tenant.id: tb}\nd: {site: s}\n", want: refusedTruncated, dropped: []string{"a"}},
		{name: "empty tenant", format: "yaml", cur: yamlGood, next: "a: {tenant.id: ta}\nb: {tenant.id: ''}\nc: {tenant.id: tb}\nd: {site: s}\n", want: refusedTruncated, dropped: []string{"b"}},
		{name: "3 of 4 removed", format: "yaml", cur: yamlGood, next: "a: {tenant.id: ta}\n", want: refusedShrink, dropped: []string{"b", "c", "d"}},
		{name: "2 of 4 removed", format: "yaml", cur: yamlGood, next: "a: {tenant.id: ta}\nb: {tenant.id: ta}\n", dropped: []string{"c", "d"}},
		{name: "1 of 4 removed, max_shrink 0.2", format: "yaml", cur: yamlGood, next: "a: {tenant.id: ta}\nb: {tenant.id: ta}\nc: {tenant.id: tb}\n", maxShrink: 0.2, want: refusedShrink, dropped: []string{"d"}},
		{name: "3 of 4 removed, max_shrink 1", format: "yaml", cur: yamlGood, next: "a: {tenant.id: ta}\n", maxShrink: 1},
		{name: "csv header only", format: "csv", cur: csvGood, next: "device.id,site,tenant.id\n", want: refusedEmpty},
		{name: "csv cut after the last comma", format: "csv", cur: csvGood, next: csvGood[:strings.Index(csvGood, "c,s,tb")+4], want: refusedTruncated, dropped: []string{"c", "d"}},
		{name: "csv cut inside the tenant", format: "csv", cur: csvGood, next: csvGood[:strings.Index(csvGood, "c,s,tb")+5], want: refusedTruncated, dropped: []string{"d"}},
		{name: "csv cut at a row boundary", format: "csv", cur: csvGood, next: csvGood[:strings.Index(csvGood, "d,s,")], dropped: []string{"d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := parseRegistry([]byte(tc.cur), tc.format, "device.id")
			require.NoError(t, err)
			next, err := parseRegistry([]byte(tc.next), tc.format, "device.id")
			require.NoError(t, err)
			spec := &registrySpec{key: "device.id", tenantKey: "tenant.id", allowEmpty: tc.allowEmpty, maxShrink: 0.5}
			if tc.maxShrink != 0 {
				spec.maxShrink = tc.maxShrink
			}
			cutShort := len(tc.next) < len(tc.cur) && strings.HasPrefix(tc.cur, tc.next)
			v := spec.suspicious(cur, next, cutShort)
			assert.Equal(t, tc.want, v.reason)
			if tc.want != refusedEmpty && !tc.allowEmpty && spec.maxShrink < 1 {
				assert.Equal(t, tc.dropped, v.dropped)
			}
		})
	}
	// Nothing in use: anything that parses is applied.
	spec := &registrySpec{key: "device.id", tenantKey: "tenant.id", maxShrink: 0.5}
	assert.Empty(t, spec.suspicious(nil, &registryData{}, false).reason)
	assert.Empty(t, spec.suspicious(&registryData{entries: map[string][]kv{}}, &registryData{}, false).reason)
}
