package device_test

import (
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

// Every electrical field of the shipped Modbus profiles is in the vocabulary.
func TestVocabularyModbusProfiles(t *testing.T) {
	files, err := filepath.Glob("../../distributions/otelcol-iiot/profiles/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var seen []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc struct {
			Profiles map[string]struct {
				Fields []struct {
					Name       string            `yaml:"name"`
					Metric     string            `yaml:"metric"`
					Unit       string            `yaml:"unit"`
					Kind       string            `yaml:"kind"`
					Attributes map[string]string `yaml:"attributes"`
				} `yaml:"fields"`
			} `yaml:"profiles"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), f)
		for pname, p := range doc.Profiles {
			for _, fl := range p.Fields {
				kind := device.KindGauge
				if fl.Kind == "sum" {
					kind = device.KindSum
				}
				checkReading(t, pname+"."+fl.Name, fl.Metric, fl.Unit, kind, fl.Attributes)
				if strings.HasPrefix(fl.Metric, device.VocabularyPrefix) && !slices.Contains(seen, fl.Metric) {
					seen = append(seen, fl.Metric)
				}
				for _, old := range []string{"meter.", "inverter.ac."} {
					assert.False(t, strings.HasPrefix(fl.Metric, old), "%s.%s: %s is an electrical quantity", pname, fl.Name, fl.Metric)
				}
			}
		}
	}
	assert.Contains(t, seen, "electrical.energy.active")
	assert.Contains(t, seen, "electrical.voltage")
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
}
