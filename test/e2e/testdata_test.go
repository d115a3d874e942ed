//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The collector configs and the expected values of these tests are files under the repository's
// top-level testdata/e2e/, one directory per test. They are Go text/templates: a test fills in what it
// only knows at run time (free ports, temporary directories, peer endpoints) as {{.Name}}; a
// placeholder the test does not fill fails the test. Collector-side ${env:…} references pass through.

// vars holds the values of a template's placeholders.
type vars map[string]any

// templateFuncs: list "a" "b" makes a list to range over (e.g. the devices one expectation applies to).
var templateFuncs = template.FuncMap{"list": func(v ...any) []any { return v }}

// testdataPath is the path of a file under testdata/e2e/.
func testdataPath(t testing.TB, rel string) string {
	return filepath.Join(repoRoot(t), "testdata", "e2e", filepath.FromSlash(rel))
}

// render fills the template testdata/e2e/rel with data.
func render(t testing.TB, rel string, data vars) string {
	t.Helper()
	raw, err := os.ReadFile(testdataPath(t, rel))
	require.NoError(t, err)
	tpl, err := template.New(rel).Option("missingkey=error").Funcs(templateFuncs).Parse(string(raw))
	require.NoError(t, err, "template %s", rel)
	var b strings.Builder
	require.NoError(t, tpl.Execute(&b, data), "template %s", rel)
	return b.String()
}

// renderFile renders testdata/e2e/rel into dir (under its base name) and returns the file's path.
func renderFile(t testing.TB, dir, rel string, data vars) string {
	t.Helper()
	path := filepath.Join(dir, filepath.Base(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(render(t, rel, data)), 0o600))
	return path
}

// startCollectorTestdata runs the collector on configs rendered from testdata/e2e/ with data, merged in
// order as --config flags are (common.yaml, the exporters and telemetry most tests share, goes first
// when a test uses it).
func startCollectorTestdata(t testing.TB, env map[string]string, data vars, configs ...string) *collector {
	t.Helper()
	return startBinaryTestdata(t, buildCollector(t), env, data, configs...)
}

// startGatewayTestdata is startCollectorTestdata for the gateway distribution (components the edge
// does not carry, e.g. the spanquantiles connector).
func startGatewayTestdata(t testing.TB, env map[string]string, data vars, configs ...string) *collector {
	t.Helper()
	return startBinaryTestdata(t, buildGateway(t), env, data, configs...)
}

func startBinaryTestdata(t testing.TB, bin string, env map[string]string, data vars, configs ...string) *collector {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, c := range configs {
		files = append(files, renderFile(t, filepath.Join(dir, fmt.Sprint(i)), c, data))
	}
	return startBinaryFiles(t, bin, env, files...)
}

// expectation is one PromQL query and the value of its only sample.
type expectation struct {
	Query string  `yaml:"query"`
	Value float64 `yaml:"value"`
	// Within overrides how long the value may take to arrive (default 10 s).
	Within time.Duration `yaml:"within"`
}

// loadExpectations renders and parses an expected-values file of testdata/e2e/.
func loadExpectations(t testing.TB, rel string, data vars) []expectation {
	t.Helper()
	var out []expectation
	require.NoError(t, yaml.Unmarshal([]byte(render(t, rel, data)), &out), "expectations %s", rel)
	require.NotEmpty(t, out, "expectations %s", rel)
	for _, e := range out {
		require.NotEmpty(t, e.Query, "expectations %s: an entry has no query", rel)
	}
	return out
}

// expectValues waits, in order, for each expected value of testdata/e2e/rel.
func (p *prometheus) expectValues(t testing.TB, rel string, data vars) {
	t.Helper()
	for _, e := range loadExpectations(t, rel, data) {
		wait := e.Within
		if wait == 0 {
			wait = 10 * time.Second
		}
		p.eventuallyValue(t, e.Query, e.Value, wait)
	}
}

// renderTree renders every file under testdata/e2e/src into dst, at the same relative paths (a config
// directory the collector reads device lists and registries from).
func renderTree(t testing.TB, dst, src string, data vars) {
	t.Helper()
	root := testdataPath(t, src)
	require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		renderFile(t, filepath.Join(dst, filepath.Dir(rel)), filepath.ToSlash(filepath.Join(src, rel)), data)
		return nil
	}))
}

// Every file under testdata/e2e is a template that parses, and a placeholder left unfilled fails.
func TestTestdataTemplates(t *testing.T) {
	root := testdataPath(t, "")
	n := 0
	require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		_, err = template.New(path).Option("missingkey=error").Funcs(templateFuncs).Parse(string(raw))
		require.NoError(t, err, path)
		n++
		return nil
	}))
	require.Greater(t, n, 10)

	tpl := template.Must(template.New("").Option("missingkey=error").Parse("endpoint: {{.Port}}"))
	require.Error(t, tpl.Execute(io.Discard, vars{"Other": 1}), "an unfilled placeholder must fail")
}
