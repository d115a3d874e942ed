package device_test

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// checkReading reports what is wrong with one reading of the electrical vocabulary.
func checkReading(t *testing.T, where, metric, unit string, kind device.MetricKind, attrs map[string]string) {
	t.Helper()
	if !strings.HasPrefix(metric, device.VocabularyPrefix) {
		return
	}
	q, ok := device.LookupQuantity(metric)
	if !assert.True(t, ok, "%s: %s is not in the electrical vocabulary", where, metric) {
		return
	}
	assert.Equal(t, q.Unit, unit, "%s: unit of %s", where, metric)
	assert.Equal(t, q.Kind, kind, "%s: kind of %s", where, metric)
	for k, v := range attrs {
		if allowed := q.AllowedValues(k); allowed != nil {
			assert.Contains(t, allowed, v, "%s: %s{%s}", where, metric, k)
		}
	}
	if q.Phases != nil {
		assert.Contains(t, attrs, device.AttrPhase, "%s: %s carries a phase", where, metric)
	}
}

// The README table is the vocabulary: every quantity with its unit, nothing else.
func TestVocabularyReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	sec := string(b)
	sec = sec[strings.Index(sec, "### Electrical vocabulary"):]
	sec = sec[:strings.Index(sec, "\nRules behind it")]
	name := regexp.MustCompile("`(electrical\\.[a-z_.]+)`")
	got := map[string]string{}
	for _, line := range strings.Split(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 7 || !strings.Contains(cells[2], "`electrical.") {
			continue
		}
		metrics := name.FindAllStringSubmatch(cells[2], -1)
		units := strings.Split(strings.TrimSpace(cells[3]), " / ")
		for i, m := range metrics {
			u := units[0]
			if len(units) == len(metrics) {
				u = units[i]
			}
			got[m[1]] = u
		}
	}
	want := map[string]string{}
	for _, q := range device.Vocabulary {
		want[q.Metric] = q.Unit
	}
	assert.Equal(t, want, got)
}

// Every electrical reading of the DL/T 645 catalogue, history records included, is in the vocabulary.
func TestVocabularyDLT645Catalogue(t *testing.T) {
	cat := dlt645.Builtin()
	n := 0
	check := func(e dlt645.Entry) {
		for _, o := range e.Readings() {
			attrs := map[string]string{}
			for _, a := range o.Attributes {
				attrs[a.Key] = a.Value
			}
			kind := device.KindGauge
			if o.Kind == dlt645.Sum {
				kind = device.KindSum
			}
			if strings.HasPrefix(o.Metric, device.VocabularyPrefix) {
				n++
			}
			checkReading(t, e.DI.Format(e.Version), o.Metric, o.Unit, kind, attrs)
		}
	}
	for _, v := range []dlt645.Version{dlt645.V2007, dlt645.V1997} {
		for _, e := range cat.Entries(v) {
			if e.Repeat {
				members, ok := cat.Block(v, e.DI)
				require.True(t, ok)
				for _, m := range members {
					check(m)
				}
				continue
			}
			check(e)
		}
	}
	for _, di := range []dlt645.DI{0x00010001, 0x0002000C, 0x01010001, 0x05060102} {
		e, ok := cat.Lookup(dlt645.V2007, di)
		require.True(t, ok, di.Format(dlt645.V2007))
		check(e)
	}
	assert.Greater(t, n, 500)
}

// reading is one metric a shipped config declares.
type reading struct {
	where, metric, unit, kind string
	attrs                     map[string]string
}

// configReadings collects what a shipped config declares, wherever it sits in the file: Modbus fields
// (profiles, device files, a receiver in a collector config: any "fields" list) and OPC UA nodes and
// groups (a device file or a receiver: any map with "nodes" or "groups" of node ids), with the OPC UA
// layering (metric_prefix, a group's unit, kind and attributes under a node's own).
func configReadings(path string, node any) []reading {
	var out []reading
	switch n := node.(type) {
	case []any:
		for i, c := range n {
			out = append(out, configReadings(fmt.Sprintf("%s[%d]", path, i), c)...)
		}
	case map[string]any:
		if fields, ok := n["fields"].([]any); ok {
			for i, x := range fields {
				fl, _ := x.(map[string]any)
				metric := str(fl["metric"])
				if metric == "" {
					metric = str(fl["name"]) // a field's metric defaults to its name
				}
				out = append(out, reading{fmt.Sprintf("%s.fields[%d] %s", path, i, str(fl["name"])), metric, str(fl["unit"]), str(fl["kind"]), strMap(fl["attributes"])})
			}
		}
		if _, isOPCUA := n["endpoint"]; isOPCUA || n["groups"] != nil {
			prefix := str(n["metric_prefix"])
			out = append(out, opcuaNodes(path+".nodes", n["nodes"], prefix, "", "", nil)...)
			groups, _ := n["groups"].([]any)
			for i, x := range groups {
				g, _ := x.(map[string]any)
				gp := str(g["metric_prefix"])
				if gp == "" {
					gp = prefix
				}
				out = append(out, opcuaNodes(fmt.Sprintf("%s.groups[%d].nodes", path, i), g["nodes"], gp, str(g["unit"]), str(g["kind"]), strMap(g["attributes"]))...)
			}
		}
		for k, c := range n {
			if k != "fields" && k != "nodes" && k != "groups" {
				out = append(out, configReadings(path+"."+k, c)...)
			}
		}
	}
	return out
}

func opcuaNodes(path string, list any, prefix, unit, kind string, attrs map[string]string) []reading {
	nodes, _ := list.([]any)
	var out []reading
	for i, x := range nodes {
		nd, _ := x.(map[string]any)
		if _, ok := nd["id"]; !ok {
			continue
		}
		merged := map[string]string{}
		maps.Copy(merged, attrs)
		maps.Copy(merged, strMap(nd["attributes"]))
		out = append(out, reading{fmt.Sprintf("%s[%d]", path, i), prefix + str(nd["name"]),
			cmp.Or(str(nd["unit"]), unit), cmp.Or(str(nd["kind"]), kind), merged})
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// namesElectrical matches a config line that names a metric of the vocabulary (outside comments).
var namesElectrical = regexp.MustCompile(`(^|[^#]*[\s:{,\[])electrical\.`)

// Every electrical reading of every shipped config — the Modbus profiles, the device files, the edge
// default and the demo — is in the vocabulary: name, unit, kind and attribute values, with a phase where
// the quantity has phases. A config that names an electrical metric in a shape this test cannot read
// fails it, so a new file cannot slip past.
func TestVocabularyShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../distributions/otelcol-iiot/*.yaml")
	require.NoError(t, err)
	for _, dir := range []string{"profiles", "devices"} {
		more, err := filepath.Glob("../../distributions/otelcol-iiot/" + dir + "/*.yaml")
		require.NoError(t, err)
		files = append(files, more...)
	}
	require.NotEmpty(t, files)
	seen := map[string][]string{} // metric → files
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		names := false
		for _, line := range strings.Split(string(b), "\n") {
			if namesElectrical.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				names = true
			}
		}
		var doc any
		require.NoError(t, yaml.Unmarshal(b, &doc), f)
		base := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		n := 0
		for _, r := range configReadings(base, doc) {
			kind := device.KindGauge
			if r.kind == "sum" {
				kind = device.KindSum
			}
			checkReading(t, r.where, r.metric, r.unit, kind, r.attrs)
			if strings.HasPrefix(r.metric, device.VocabularyPrefix) {
				n++
				if !slices.Contains(seen[r.metric], base) {
					seen[r.metric] = append(seen[r.metric], base)
				}
			}
			for _, old := range []string{"meter.", "inverter.ac."} {
				assert.False(t, strings.HasPrefix(r.metric, old), "%s: %s is an electrical quantity", r.where, r.metric)
			}
		}
		if names {
			assert.Positive(t, n, "%s names electrical metrics the test does not find", base)
		}
	}
	assert.Contains(t, seen, "electrical.voltage")
	assert.Subset(t, seen["electrical.energy.active"], []string{"profiles/eastron-sdm630.yaml", "devices/opcua.yaml", "otelcol-iiot/demo.yaml"})
}

func TestLookupQuantityRecords(t *testing.T) {
	q, ok := device.LookupQuantity("electrical.energy.active.settled")
	require.True(t, ok)
	assert.Equal(t, "Wh", q.Unit)
	assert.Equal(t, device.KindGauge, q.Kind, "a record at a past moment is a gauge")
	_, ok = device.LookupQuantity("electrical.energy.active.bogus")
	assert.False(t, ok)
	_, ok = device.LookupQuantity("electrical.settled")
	assert.False(t, ok)
	v, _ := device.LookupQuantity("electrical.voltage")
	assert.Nil(t, v.AllowedValues(device.AttrDirection))
	assert.Equal(t, []string{"A", "B", "C", "AB", "BC", "CA"}, v.AllowedValues(device.AttrPhase))
	assert.Equal(t, []string{device.AttrPhase}, v.Required())
	assert.Equal(t, []string{device.AttrPhase}, q.Required(), "a settled record keeps the quantity's phase")
	f, _ := device.LookupQuantity("electrical.frequency")
	assert.Empty(t, f.Required())
}
