package memlimit

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// resolve runs the collector's own resolution (providers, ${env:} expansion, converters) on files,
// with the converter made by NewFactory, as the built collector does at start and on every reload.
func newResolver(t *testing.T, factory confmap.ConverterFactory, files ...string) *confmap.Resolver {
	t.Helper()
	var uris []string
	for _, f := range files {
		uris = append(uris, "file:"+f)
	}
	r, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:               uris,
		ProviderFactories:  []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
		ConverterFactories: []confmap.ConverterFactory{factory},
		DefaultScheme:      "env",
	})
	require.NoError(t, err)
	return r
}

// keepLimit restores the process's memory limit after a test that sets the real one.
func keepLimit(t *testing.T) int64 {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	return before
}

// The edge default's memory_limiter (limit_mib and spike_limit_mib from the environment) sets the
// runtime's limit to its soft limit; a reload with other values moves it, a reload without a
// memory_limiter in the pipelines restores the runtime's default.
func TestEdgeDefaultAndReload(t *testing.T) {
	initial := keepLimit(t)
	root := repoRoot(t)
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("OTELCOL_IIOT_CONFIG_DIR", filepath.Join(root, "distributions", "otelcol-iiot"))
	t.Setenv("OTELCOL_IIOT_MEMORY_LIMIT_MIB", "300")
	t.Setenv("OTELCOL_IIOT_MEMORY_SPIKE_MIB", "60")
	edge := filepath.Join(root, "distributions", "otelcol-iiot", "config.yaml")
	r := newResolver(t, NewFactory(), edge)
	ctx := context.Background()

	_, err := r.Resolve(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(240*mib), debug.SetMemoryLimit(-1), "limit_mib - spike_limit_mib")

	// the edge default as shipped (no environment): 256 - 64
	t.Setenv("OTELCOL_IIOT_MEMORY_LIMIT_MIB", "")
	t.Setenv("OTELCOL_IIOT_MEMORY_SPIKE_MIB", "")
	os.Unsetenv("OTELCOL_IIOT_MEMORY_LIMIT_MIB")
	os.Unsetenv("OTELCOL_IIOT_MEMORY_SPIKE_MIB")
	_, err = r.Resolve(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(192*mib), debug.SetMemoryLimit(-1))

	// reload: an overlay that takes the limiter out of every pipeline
	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlay.yaml")
	require.NoError(t, os.WriteFile(overlay, []byte(`
service:
  pipelines:
    metrics: {processors: [tenant, tdigest]}
    traces: {processors: [tenant]}
`), 0o600))
	r2 := newResolver(t, NewFactory(), edge, overlay)
	_, err = r2.Resolve(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(192*mib), debug.SetMemoryLimit(-1), "a new converter finds the limit set by the first")

	// the same converter across reloads: the file changes under it
	cfg := filepath.Join(dir, "config.yaml")
	write := func(s string) {
		require.NoError(t, os.WriteFile(cfg, []byte(s), 0o600))
	}
	debug.SetMemoryLimit(initial)
	r3 := newResolver(t, NewFactory(), cfg)
	write(`
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 100}
service:
  pipelines:
    metrics: {receivers: [otlp], processors: [memory_limiter], exporters: [debug]}
`)
	_, err = r3.Resolve(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(80*mib), debug.SetMemoryLimit(-1), "spike unset: 20% of the limit, as the processor does")
	write(`
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 100}
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [debug]}
`)
	_, err = r3.Resolve(ctx)
	require.NoError(t, err)
	assert.Equal(t, initial, debug.SetMemoryLimit(-1), "limiter defined but in no pipeline: runtime default again")
	require.NoError(t, r.Shutdown(ctx))
	require.NoError(t, r2.Shutdown(ctx))
	require.NoError(t, r3.Shutdown(ctx))
}

// GOMEMLIMIT in the environment wins: the converter never touches the limit.
func TestEnvironmentWins(t *testing.T) {
	keepLimit(t)
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "123MiB")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 100, spike_limit_mib: 10}
service:
  pipelines:
    metrics: {processors: [memory_limiter]}
`), 0o600))
	r := newResolver(t, NewFactory(), cfg)
	_, err := r.Resolve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))
	require.NoError(t, r.Shutdown(context.Background()))
}

// fakeLimit stands for debug.SetMemoryLimit.
type fakeLimit struct {
	v   int64
	set []int64
}

func (f *fakeLimit) fn(v int64) int64 {
	old := f.v
	if v >= 0 {
		f.v = v
		f.set = append(f.set, v)
	}
	return old
}

func convert(t *testing.T, c *converter, raw map[string]any) {
	t.Helper()
	require.NoError(t, c.Convert(context.Background(), confmap.NewFromStringMap(raw)))
}

func pipelines(procs ...string) map[string]any {
	p := make([]any, len(procs))
	for i, s := range procs {
		p[i] = s
	}
	return map[string]any{"pipelines": map[string]any{"metrics": map[string]any{"processors": p}}}
}

func TestLowestLimiterInUse(t *testing.T) {
	f := &fakeLimit{v: math.MaxInt64}
	core, logs := observer.New(zap.InfoLevel)
	c := newConverter(zap.New(core), func(string) string { return "" }, f.fn, func() (uint64, error) { return 1000 * mib, nil })
	convert(t, c, map[string]any{
		"processors": map[string]any{
			"memory_limiter":       map[string]any{"limit_mib": 400, "spike_limit_mib": 100},
			"memory_limiter/small": map[string]any{"limit_percentage": 20, "spike_limit_percentage": 5},
			"memory_limiter/spare": map[string]any{"limit_mib": 50}, // in no pipeline
			"batch":                nil,
		},
		"service": pipelines("memory_limiter", "memory_limiter/small", "batch"),
	})
	assert.Equal(t, int64(150*mib), f.v, "20%-5% of 1000 MiB is below 400-100 MiB; the unused one does not count")
	require.Equal(t, 1, logs.FilterMessageSnippet("set to the memory_limiter's soft limit").Len())
	assert.Equal(t, "memory_limiter/small", logs.All()[0].ContextMap()["processor"])

	// the same configuration again (a reload that changed something else): no new call, no new log
	convert(t, c, map[string]any{
		"processors": map[string]any{"memory_limiter/small": map[string]any{"limit_percentage": 20, "spike_limit_percentage": 5}},
		"service":    pipelines("memory_limiter/small"),
	})
	assert.Len(t, f.set, 1)
	assert.Equal(t, 1, logs.Len())

	// no pipelines at all (e.g. `components`): back to what the runtime had
	convert(t, c, map[string]any{})
	assert.Equal(t, int64(math.MaxInt64), f.v)
}

// What the processor would refuse, or cannot compute, leaves the limit alone and the configuration to
// the processor's validation: the converter never fails a resolution.
func TestInvalidOrUnknownLeavesLimit(t *testing.T) {
	for name, cfg := range map[string]any{
		"spike above limit":  map[string]any{"limit_mib": 100, "spike_limit_mib": 100},
		"no limit":           map[string]any{"check_interval": "1s"},
		"not a map":          "limit_mib",
		"wrong type":         map[string]any{"limit_mib": "lots"},
		"percentage unknown": map[string]any{"limit_percentage": 50},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeLimit{v: 7}
			c := newConverter(zap.NewNop(), func(string) string { return "" }, f.fn, func() (uint64, error) { return 0, errors.New("no /proc") })
			convert(t, c, map[string]any{"processors": map[string]any{"memory_limiter": cfg}, "service": pipelines("memory_limiter")})
			assert.Equal(t, int64(7), f.v)
			assert.Empty(t, f.set)
		})
	}
	f := &fakeLimit{v: 7}
	c := newConverter(zap.NewNop(), func(string) string { return "" }, f.fn, nil)
	convert(t, c, map[string]any{"service": map[string]any{"pipelines": "not a map"}})
	assert.Empty(t, f.set)
}

func TestTotalMemory(t *testing.T) {
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	require.NoError(t, os.WriteFile(meminfo, []byte("MemFree:  10 kB\nMemTotal:       2048 kB\n"), 0o600))
	n, err := memTotal(meminfo)
	require.NoError(t, err)
	assert.Equal(t, uint64(2048*1024), n)
	require.NoError(t, os.WriteFile(meminfo, []byte("MemFree:  10 kB\n"), 0o600))
	_, err = memTotal(meminfo)
	require.Error(t, err)

	self := filepath.Join(dir, "cgroup")
	require.NoError(t, os.WriteFile(self, []byte("0::/system.slice/otelcol-iiot.service\n"), 0o600))
	cg := filepath.Join(dir, "sys", "system.slice", "otelcol-iiot.service")
	require.NoError(t, os.MkdirAll(cg, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(cg, "memory.max"), []byte("536870912\n"), 0o600))
	v, ok := cgroupLimit(self, filepath.Join(dir, "sys"))
	assert.True(t, ok)
	assert.Equal(t, uint64(512*mib), v)
	require.NoError(t, os.WriteFile(filepath.Join(cg, "memory.max"), []byte("max\n"), 0o600))
	_, ok = cgroupLimit(self, filepath.Join(dir, "sys"))
	assert.False(t, ok, "max: no limit")

	total, err := totalMemory() // this machine: whatever it is, not zero
	require.NoError(t, err)
	assert.Positive(t, total)
}
