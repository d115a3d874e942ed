package rwtranslate

import (
	"testing"

	prwt "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// BenchmarkTranslate is the exporter's BenchmarkTranslateTick/translate (one 50-device tick after
// promote and renameUnits, with the edge's settings) by contrib's FromMetrics, by a Translator whose
// cache is warm (every tick after the first), and by a new Translator each tick (all misses). The
// batch is copied fresh outside the clock each round, as the queue hands the sender a decoded request.
func BenchmarkTranslate(b *testing.B) {
	base := tickBatch(b, 50)
	settings := prwt.Settings{AddMetricSuffixes: true, DisableScopeInfo: true}
	points := base.DataPointCount()
	warm, err := New(settings)
	if err != nil {
		b.Fatal(err)
	}
	translators := map[string]func(pmetric.Metrics) error{
		"contrib": func(md pmetric.Metrics) error {
			_, err := prwt.FromMetrics(md, settings)
			return err
		},
		"cached": func(md pmetric.Metrics) error {
			_, err := warm.Translate(md)
			return err
		},
		"cold": func(md pmetric.Metrics) error {
			tr, err := New(settings)
			if err != nil {
				return err
			}
			_, err = tr.Translate(md)
			return err
		},
	}
	for _, name := range []string{"contrib", "cached", "cold"} {
		translate := translators[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				md := pmetric.NewMetrics()
				base.CopyTo(md)
				b.StartTimer()
				if err := translate(md); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/point")
		})
	}
}
