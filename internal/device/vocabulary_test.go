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
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

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
			devicetest.CheckReading(t, devicetest.Reading{Where: e.DI.Format(e.Version), Metric: o.Metric, Unit: o.Unit, Kind: kind, Attrs: attrs})
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
		for _, r := range devicetest.ConfigReadings(base, doc) {
			devicetest.CheckReading(t, r)
			if strings.HasPrefix(r.Metric, device.VocabularyPrefix) {
				n++
				if !slices.Contains(seen[r.Metric], base) {
					seen[r.Metric] = append(seen[r.Metric], base)
				}
			}
			for _, old := range []string{"meter.", "inverter.ac."} {
				assert.False(t, strings.HasPrefix(r.Metric, old), "%s: %s is an electrical quantity", r.Where, r.Metric)
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
