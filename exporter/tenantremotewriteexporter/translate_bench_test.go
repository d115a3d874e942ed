package tenantremotewriteexporter

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// tickBatch is one poll tick of n Modbus devices as the sending queue hands it to the remote-write
// sender: the Modbus receiver's golden output (a device's readings and health metrics, with exemplars)
// repeated per device, each with its own device.id, service.name/instance and tenant.
func tickBatch(tb testing.TB, n int) pmetric.Metrics {
	tmpl, err := golden.ReadMetrics(filepath.Join("..", "..", "receiver", "modbusreceiver", "testdata", "golden", "fields.yaml"))
	require.NoError(tb, err)
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
	return md
}

// BenchmarkTranslateTick is the remote-write translation of one 50-device tick as the sender does it:
// promote_resource_attributes copied onto the points, the units renamed, then contrib's FromMetrics
// (with the edge default's settings: target_info on, disable_scope_info, suffixes). The batch is copied fresh outside the
// clock each round (the queue hands the sender a decoded request it may change).
func BenchmarkTranslateTick(b *testing.B) {
	base := tickBatch(b, 50)
	settings := prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true}
	b.ReportMetric(float64(base.DataPointCount()), "points/tick")
	for _, step := range []string{"promote", "translate", "all"} {
		b.Run(step, func(b *testing.B) {
			pre := pmetric.NewMetrics()
			base.CopyTo(pre)
			promote(pre, defaultPromoted)
			renameUnits(pre)
			for b.Loop() {
				b.StopTimer()
				md := pmetric.NewMetrics()
				if step == "translate" {
					pre.CopyTo(md)
				} else {
					base.CopyTo(md)
				}
				b.StartTimer()
				if step != "translate" {
					promote(md, defaultPromoted)
					renameUnits(md)
				}
				if step != "promote" {
					if _, err := prwt.FromMetrics(md, settings); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
