package devicetest

import (
	"cmp"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Reading is one reading a config or catalogue declares, for CheckReading.
type Reading struct {
	Where, Metric, Unit string
	Kind                device.MetricKind
	Attrs               map[string]string
}

// CheckReading reports what is wrong with one reading of the electrical vocabulary (readings outside
// it pass): name, unit, kind, attribute values, and the attributes the quantity requires.
func CheckReading(t testing.TB, r Reading) {
	t.Helper()
	where, metric, unit, kind, attrs := r.Where, r.Metric, r.Unit, r.Kind, r.Attrs
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
	for _, k := range q.Required() {
		assert.Contains(t, attrs, k, "%s: %s carries a %s", where, metric, k)
	}
}

// ConfigReadings collects what a shipped config declares, wherever it sits in the file: Modbus fields
// (profiles, device files, a receiver in a collector config: any "fields" list) and OPC UA nodes and
// groups (a device file or a receiver: any map with "nodes" or "groups" of node ids), with the OPC UA
// layering (metric_prefix, a group's unit, kind and attributes under a node's own).
func ConfigReadings(path string, node any) []Reading {
	var out []Reading
	switch n := node.(type) {
	case []any:
		for i, c := range n {
			out = append(out, ConfigReadings(fmt.Sprintf("%s[%d]", path, i), c)...)
		}
	case map[string]any:
		if fields, ok := n["fields"].([]any); ok {
			for i, x := range fields {
				fl, _ := x.(map[string]any)
				metric := str(fl["metric"])
				if metric == "" {
					metric = str(fl["name"]) // a field's metric defaults to its name
				}
				out = append(out, Reading{fmt.Sprintf("%s.fields[%d] %s", path, i, str(fl["name"])), metric, str(fl["unit"]), kindOf(str(fl["kind"])), strMap(fl["attributes"])})
			}
		}
		if _, isOPCUA := n["endpoint"]; isOPCUA || n["groups"] != nil {
			prefix := "opcua." // the receiver's default metric_prefix
			if p, ok := n["metric_prefix"]; ok {
				prefix = str(p)
			}
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
				out = append(out, ConfigReadings(path+"."+k, c)...)
			}
		}
	}
	return out
}

func opcuaNodes(path string, list any, prefix, unit, kind string, attrs map[string]string) []Reading {
	nodes, _ := list.([]any)
	var out []Reading
	for i, x := range nodes {
		nd, _ := x.(map[string]any)
		if _, ok := nd["id"]; !ok {
			continue
		}
		merged := map[string]string{}
		maps.Copy(merged, attrs)
		maps.Copy(merged, strMap(nd["attributes"]))
		out = append(out, Reading{fmt.Sprintf("%s[%d]", path, i), prefix + str(nd["name"]),
			cmp.Or(str(nd["unit"]), unit), kindOf(cmp.Or(str(nd["kind"]), kind)), merged})
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

func kindOf(s string) device.MetricKind {
	if s == "sum" {
		return device.KindSum
	}
	return device.KindGauge
}
