package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// defaultPromoted are the resource attributes people query by: they become labels of every series
// (tenant.id → tenant_id, …). job and instance come from service.name and service.instance.id as
// always; every other resource attribute (device.address, device.manufacturer, …) is sent once per
// resource on target_info, not repeated on each series.
var defaultPromoted = []string{"tenant.id", "site", "device.id", "device_group", "device.protocol"}

// promoting copies the promoted resource attributes onto every data point before the remote-write
// translator runs, so that they become labels while the rest stays on target_info. What the queue
// holds is unchanged (resource attributes once per resource), which keeps the queue small too. Only
// in front of contrib's translator: ours (rwtranslate) takes the promoted keys and adds the labels
// itself, without growing every point's attributes of a flushed batch (~5 attributes a point,
// 4 MB a 5 s flush of 50 devices, live at once with the batch).
type promoting struct {
	exporter.Metrics
	keys []string
}

// promoteResourceAttributes wraps the remote-write sender when the setting applies: with
// resource_to_telemetry_conversion enabled every attribute is promoted by the contrib exporter and
// the list has nothing to add.
func (e *tenantExporter) promoteResourceAttributes(sender exporter.Metrics) exporter.Metrics {
	if !e.promotes() {
		return sender
	}
	return &promoting{Metrics: sender, keys: e.cfg.PromoteResourceAttributes}
}

// promotedKeys are the resource attributes to put on every point, nil when the setting does not apply.
func (e *tenantExporter) promotedKeys() []string {
	if !e.promotes() {
		return nil
	}
	return e.cfg.PromoteResourceAttributes
}

// promotes tells whether points get attributes added on their way out (the exporter then mutates data).
func (e *tenantExporter) promotes() bool {
	return !e.cfg.ResourceToTelemetrySettings.Enabled && len(e.cfg.PromoteResourceAttributes) > 0
}

func (p *promoting) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if md.IsReadOnly() {
		// Shared with other consumers (no sending_queue): work on our own copy.
		c := pmetric.NewMetrics()
		md.CopyTo(c)
		md = c
	}
	promote(md, p.keys)
	return p.Metrics.ConsumeMetrics(ctx, md)
}

// promote puts the listed resource attributes on every data point of md. A point's own attribute
// of the same key wins (it is the reading's own label). Idempotent, so a retried request is unchanged.
func promote(md pmetric.Metrics, keys []string) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		var found []string
		for _, k := range keys {
			if _, ok := res.Get(k); ok {
				found = append(found, k)
			}
		}
		if len(found) == 0 {
			continue
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				promoteMetric(ms.At(k), res, found)
			}
		}
	}
}

func promoteMetric(m pmetric.Metric, res pcommon.Map, keys []string) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		promoteAll(m.Gauge().DataPoints(), res, keys)
	case pmetric.MetricTypeSum:
		promoteAll(m.Sum().DataPoints(), res, keys)
	case pmetric.MetricTypeHistogram:
		promoteAll(m.Histogram().DataPoints(), res, keys)
	case pmetric.MetricTypeExponentialHistogram:
		promoteAll(m.ExponentialHistogram().DataPoints(), res, keys)
	case pmetric.MetricTypeSummary:
		promoteAll(m.Summary().DataPoints(), res, keys)
	case pmetric.MetricTypeEmpty:
	}
}

// points is what every data point slice offers.
type points[P interface{ Attributes() pcommon.Map }] interface {
	Len() int
	At(int) P
}

func promoteAll[P interface{ Attributes() pcommon.Map }](ps points[P], res pcommon.Map, keys []string) {
	for i := 0; i < ps.Len(); i++ {
		attrs := ps.At(i).Attributes()
		// One allocation for the point's attributes instead of one per doubling.
		attrs.EnsureCapacity(attrs.Len() + len(keys))
		for _, k := range keys {
			if _, ok := attrs.Get(k); ok {
				continue
			}
			v, _ := res.Get(k)
			v.CopyTo(attrs.PutEmpty(k))
		}
	}
}
