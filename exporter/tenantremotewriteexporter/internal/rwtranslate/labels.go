// Copyright The OpenTelemetry Authors
// SPDX-License-Identifier: Apache-2.0

package rwtranslate // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter/internal/rwtranslate"

// The label rules below are contrib's (pkg/translator/prometheusremotewrite v0.159.0, helper.go
// createAttributes / createLabels), kept line for line so that the output is the same: they only run
// when a series is not in the cache.

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	conventions "go.opentelemetry.io/otel/semconv/v1.40.0"
)

const (
	sumSuffix    = "_sum"
	countSuffix  = "_count"
	bucketSuffix = "_bucket"
	leLabel      = "le"
	quantileName = "quantile"
	infBound     = "+Inf"
)

// identifyingAttrs are the resource attributes that become job and instance, left off target_info.
var identifyingAttrs = []string{
	string(conventions.ServiceNamespaceKey),
	string(conventions.ServiceNameKey),
	string(conventions.ServiceInstanceIDKey),
}

// byName sorts labels as contrib's ByLabelName does (sort.Stable keeps the order of equal names).
type byName []prompb.Label

func (a byName) Len() int           { return len(a) }
func (a byName) Less(i, j int) bool { return a[i].Name < a[j].Name }
func (a byName) Swap(i, j int)      { a[i], a[j] = a[j], a[i] }

// createAttributes is contrib's: the labels of a point from its attributes, the resource's job and
// instance, the external labels, the scope (unless disabled) and the extra name/value pairs, names
// sanitized, colliding names' values joined with ";". Unlike contrib it does not log an overwritten
// extra (components log through zap; contrib's log.Println goes to stderr).
func createAttributes(resource pcommon.Resource, attributes pcommon.Map, scope pcommon.InstrumentationScope, externalLabels map[string]string,
	ignoreAttrs []string, labelNamer otlptranslator.LabelNamer, disableScopeInfo bool, extras ...string,
) ([]prompb.Label, error) {
	resourceAttrs := resource.Attributes()
	serviceName, haveServiceName := resourceAttrs.Get(string(conventions.ServiceNameKey))
	instance, haveInstanceID := resourceAttrs.Get(string(conventions.ServiceInstanceIDKey))

	l := make(map[string]string, attributes.Len()+len(externalLabels)+len(extras)/2+2)
	labels := make([]prompb.Label, 0, attributes.Len())
	for key, value := range attributes.All() {
		if !slices.Contains(ignoreAttrs, key) {
			strVal := value.AsString()
			if strVal == "" {
				continue
			}
			labels = append(labels, prompb.Label{Name: strings.Clone(key), Value: strings.Clone(strVal)})
		}
	}
	sort.Stable(byName(labels))

	for _, label := range labels {
		finalKey, err := labelNamer.Build(label.Name)
		if err != nil {
			return nil, err
		}
		if existingValue, alreadyExists := l[finalKey]; alreadyExists {
			if existingValue != label.Value {
				l[finalKey] = existingValue + ";" + label.Value
			}
		} else {
			l[finalKey] = label.Value
		}
	}

	if haveServiceName {
		val := serviceName.AsString()
		if val != "" {
			if serviceNamespace, ok := resourceAttrs.Get(string(conventions.ServiceNamespaceKey)); ok {
				val = fmt.Sprintf("%s/%s", serviceNamespace.AsString(), val)
			}
			l[model.JobLabel] = strings.Clone(val)
		}
	}
	if haveInstanceID {
		val := instance.AsString()
		if val != "" {
			l[model.InstanceLabel] = strings.Clone(val)
		}
	}
	for key, value := range externalLabels {
		if _, alreadyExists := l[key]; alreadyExists {
			continue
		}
		l[key] = value
	}

	if !disableScopeInfo {
		if scope.Name() != "" {
			if key, err := labelNamer.Build("otel_scope_name"); err == nil {
				l[key] = strings.Clone(scope.Name())
			}
		}
		if scope.Version() != "" {
			if key, err := labelNamer.Build("otel_scope_version"); err == nil {
				l[key] = strings.Clone(scope.Version())
			}
		}
		for k, v := range scope.Attributes().All() {
			if k == "name" || k == "version" || k == "schema_url" {
				continue
			}
			if key, err := labelNamer.Build("otel_scope_" + k); err == nil {
				l[key] = strings.Clone(v.AsString())
			}
		}
	}

	for i := 0; i+1 < len(extras); i += 2 {
		name := extras[i]
		// Reserved labels (__name__) are kept as they are.
		if len(name) <= 4 || name[:2] != "__" || name[len(name)-2:] != "__" {
			var err error
			if name, err = labelNamer.Build(name); err != nil {
				return nil, err
			}
		}
		l[name] = extras[i+1]
	}

	// A new array of exactly the labels (contrib reuses the attributes' one, grown by append to up to
	// twice as many): the cache keeps it, 64 bytes a label.
	labels = make([]prompb.Label, 0, len(l))
	for k, v := range l {
		labels = append(labels, prompb.Label{Name: k, Value: v})
	}
	return labels, nil
}

// seriesLabels is contrib's createLabels followed by the sort its getOrCreateTimeSeries does: the
// base labels, the extra pairs and __name__, sorted by name. Equal names (an attribute "le" on a
// histogram point) are ordered by value too, where contrib's order depends on map iteration.
func seriesLabels(name string, base []prompb.Label, extras ...string) labelSet {
	labels := make([]prompb.Label, len(base), len(base)+len(extras)/2+1)
	copy(labels, base)
	for i := 0; i+1 < len(extras); i += 2 {
		labels = append(labels, prompb.Label{Name: extras[i], Value: extras[i+1]})
	}
	labels = append(labels, prompb.Label{Name: model.MetricNameLabel, Value: name})
	return newLabelSet(labels)
}

// labelSet is a series' sorted labels and their hash, which finds the series of a batch that share
// them.
type labelSet struct {
	labels []prompb.Label
	sig    uint64
}

func newLabelSet(labels []prompb.Label) labelSet {
	slices.SortFunc(labels, func(a, b prompb.Label) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	h := xxhash.New()
	for _, l := range labels {
		_, _ = h.WriteString(l.Name)
		_, _ = h.Write(seps)
		_, _ = h.WriteString(l.Value)
		_, _ = h.Write(seps)
	}
	return labelSet{labels: slices.Clip(labels), sig: h.Sum64()}
}

var seps = []byte{'\xff'}

func sameLabels(a, b []prompb.Label) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}
