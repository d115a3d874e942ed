package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// promUnits are the Prometheus unit suffixes of the UCUM units of the electrical vocabulary
// (internal/device/README.md) that the remote-write translator does not know. It spells out V, A, W,
// Hz, 1 … (volts, amperes, watts, hertz, ratio) but passes the rest through as they are, which would
// make electrical_power_apparent_VA, electrical_energy_active_Wh_total, a kvarh register
// …_kvarh_total: mixed case, unlike every other Prometheus name. Each is spelt out in lower case the
// way the translator spells W (watts), so a metric's Prometheus name is the same whatever protocol
// produced it. Units outside this map and the translator's reach the backend as they are.
var promUnits = map[string]string{
	"VA":    "volt_amperes",
	"var":   "volt_amperes_reactive",
	"Wh":    "watt_hours",
	"varh":  "volt_ampere_reactive_hours",
	"VAh":   "volt_ampere_hours",
	"deg":   "degrees",
	"kW":    "kilowatts",
	"kWh":   "kilowatt_hours",
	"kvar":  "kilovolt_amperes_reactive",
	"kvarh": "kilovolt_ampere_reactive_hours",
	"kVA":   "kilovolt_amperes",
	"kVAh":  "kilovolt_ampere_hours",
	"MW":    "megawatts",
	"MWh":   "megawatt_hours",
	"kV":    "kilovolts",
	"mA":    "milliamperes",
	"kHz":   "kilohertz",
	// UCUM's own spelling of the reactive units ("var.h", "kvar.h"): the same names.
	"var.h":  "volt_ampere_reactive_hours",
	"kvar.h": "kilovolt_ampere_reactive_hours",
	"VA.h":   "volt_ampere_hours",
	"kVA.h":  "kilovolt_ampere_hours",
}

// promUnit is the unit a metric is sent with: its Prometheus spelling when promUnits has one.
func promUnit(unit string) (string, bool) {
	u, ok := promUnits[unit]
	return u, ok
}

// unitNaming gives metrics the Prometheus spelling of their unit before the remote-write translator
// appends it to the name. What the queue holds keeps the UCUM unit.
type unitNaming struct {
	exporter.Metrics
}

// namePrometheusUnits wraps the remote-write sender.
func namePrometheusUnits(sender exporter.Metrics) exporter.Metrics {
	return &unitNaming{Metrics: sender}
}

func (u *unitNaming) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if hasPromUnits(md) {
		if md.IsReadOnly() {
			// Shared with other consumers (no sending_queue): work on our own copy.
			c := pmetric.NewMetrics()
			md.CopyTo(c)
			md = c
		}
		renameUnits(md)
	}
	return u.Metrics.ConsumeMetrics(ctx, md)
}

// hasPromUnits reports whether any metric of md has a unit to rename (most batches of health
// metrics have none: no copy).
func hasPromUnits(md pmetric.Metrics) bool {
	found := false
	eachMetric(md, func(m pmetric.Metric) {
		if _, ok := promUnit(m.Unit()); ok {
			found = true
		}
	})
	return found
}

// renameUnits sets the Prometheus spelling of each metric's unit. Idempotent: a retried request is
// unchanged.
func renameUnits(md pmetric.Metrics) {
	eachMetric(md, func(m pmetric.Metric) {
		if u, ok := promUnit(m.Unit()); ok {
			m.SetUnit(u)
		}
	})
}

func eachMetric(md pmetric.Metrics, f func(pmetric.Metric)) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				f(ms.At(k))
			}
		}
	}
}
