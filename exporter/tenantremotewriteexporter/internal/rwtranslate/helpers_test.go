package rwtranslate

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// root is the repository, from this package.
var root = filepath.Join("..", "..", "..", "..")

func readGolden(tb testing.TB, path ...string) pmetric.Metrics {
	tb.Helper()
	md, err := golden.ReadMetrics(filepath.Join(append([]string{root}, path...)...))
	require.NoError(tb, err)
	return md
}

// edgeUnits are the exporter's Prometheus spellings (units.go promUnits) of the units in the goldens.
var edgeUnits = map[string]string{"VA": "volt_amperes", "var": "volt_amperes_reactive", "Wh": "watt_hours", "varh": "volt_ampere_reactive_hours", "deg": "degrees", "kWh": "kilowatt_hours"}

// edgePromoted is the exporter's default promote_resource_attributes (promote.go).
var edgePromoted = []string{"tenant.id", "site", "device.id", "device_group", "device.protocol"}

// tickBatch is one poll tick of n Modbus devices as the exporter's sender translates it (the
// exporter's translate_bench_test.go, then promote and renameUnits): the Modbus receiver's golden
// repeated per device with its own device.id, service.name/instance and tenant, the promoted resource
// attributes copied onto the points, the units spelt as Prometheus does.
func tickBatch(tb testing.TB, n int) pmetric.Metrics {
	tmpl := readGolden(tb, "receiver", "modbusreceiver", "testdata", "golden", "fields.yaml")
	md := pmetric.NewMetrics()
	for d := range n {
		for i := range tmpl.ResourceMetrics().Len() {
			rm := md.ResourceMetrics().AppendEmpty()
			tmpl.ResourceMetrics().At(i).CopyTo(rm)
			attrs := rm.Resource().Attributes()
			id := fmt.Sprintf("dev-%02d", d)
			attrs.PutStr("device.id", id)
			attrs.PutStr("service.name", "modbus/plant")
			attrs.PutStr("service.instance.id", id)
			attrs.PutStr("tenant.id", "pv-owner")
			attrs.PutStr("device_group", "meters")
		}
	}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		res := rms.At(i).Resource().Attributes()
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if u, ok := edgeUnits[m.Unit()]; ok {
					m.SetUnit(u)
				}
				for _, attrs := range pointAttributes(m) {
					for _, key := range edgePromoted {
						if _, ok := attrs.Get(key); ok {
							continue
						}
						if v, ok := res.Get(key); ok {
							v.CopyTo(attrs.PutEmpty(key))
						}
					}
				}
			}
		}
	}
	return md
}

// pointAttributes are the attributes of each of the metric's points.
func pointAttributes(m pmetric.Metric) []pcommon.Map {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return attributesOf(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		return attributesOf(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		return attributesOf(m.Histogram().DataPoints())
	case pmetric.MetricTypeExponentialHistogram:
		return attributesOf(m.ExponentialHistogram().DataPoints())
	case pmetric.MetricTypeSummary:
		return attributesOf(m.Summary().DataPoints())
	case pmetric.MetricTypeEmpty:
	}
	return nil
}

func attributesOf[P interface{ Attributes() pcommon.Map }](points interface {
	Len() int
	At(int) P
},
) []pcommon.Map {
	out := make([]pcommon.Map, points.Len())
	for i := range out {
		out[i] = points.At(i).Attributes()
	}
	return out
}

// requireSame checks that Translate gives what contrib's FromMetrics gives for md, series for series
// (in one order) as the remote-write request's bytes, and the same error. With promoted attributes,
// FromMetrics is given a copy of md with them copied onto the points.
func requireSame(tb testing.TB, settings prwt.Settings, tr *Translator, md pmetric.Metrics) {
	tb.Helper()
	ref := md
	if len(tr.promoted) > 0 {
		ref = pmetric.NewMetrics()
		md.CopyTo(ref)
		promoteOntoPoints(ref, tr.promoted)
	}
	want, wantErr := prwt.FromMetrics(ref, settings)
	got, gotErr := tr.Translate(md)
	if wantErr == nil {
		require.NoError(tb, gotErr)
	} else {
		require.EqualError(tb, gotErr, wantErr.Error())
	}
	wantBytes, wantText := canonical(tb, values(want))
	gotBytes, gotText := canonical(tb, got)
	if !bytes.Equal(wantBytes, gotBytes) {
		require.Equal(tb, wantText, gotText)
		require.Fail(tb, "same text, other bytes")
	}
}

// canonical marshals the series as one WriteRequest after sorting them by labels. Labels are sorted
// by name and value on a copy: contrib leaves equal names (an attribute "le" on a histogram) in map
// order, and our labels are shared with the cache.
func canonical(tb testing.TB, series []prompb.TimeSeries) ([]byte, string) {
	tb.Helper()
	sorted := make([]prompb.TimeSeries, len(series))
	for i, ts := range series {
		ts.Labels = slices.Clone(ts.Labels)
		slices.SortStableFunc(ts.Labels, func(a, b prompb.Label) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Value, b.Value))
		})
		sorted[i] = ts
	}
	slices.SortStableFunc(sorted, func(a, b prompb.TimeSeries) int {
		return slices.CompareFunc(a.Labels, b.Labels, func(x, y prompb.Label) int {
			return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Value, y.Value))
		})
	})
	req := prompb.WriteRequest{Timeseries: sorted}
	b, err := req.Marshal()
	require.NoError(tb, err)
	var text strings.Builder
	for _, ts := range sorted {
		text.WriteString(ts.String())
		text.WriteByte('\n')
	}
	return b, text.String()
}

func values(m map[string]*prompb.TimeSeries) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, 0, len(m))
	for _, ts := range m {
		out = append(out, *ts)
	}
	return out
}

// promoteOntoPoints copies the listed resource attributes onto every point that has no attribute of
// that key, the plainest way: what the translator's promotion must come to.
func promoteOntoPoints(md pmetric.Metrics, keys []string) {
	for _, rm := range md.ResourceMetrics().All() {
		res := rm.Resource().Attributes()
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, attrs := range pointAttributes(m) {
					for _, k := range keys {
						v, ok := res.Get(k)
						if !ok {
							continue
						}
						if _, ok := attrs.Get(k); !ok {
							v.CopyTo(attrs.PutEmpty(k))
						}
					}
				}
			}
		}
	}
}
