package dlt645receiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// One poll of a meter, as it leaves the receiver: resource, health metrics, readings with their
// units, kinds and attributes, the stale reading of an error word. Regenerate with
// UPDATE_GOLDEN=1 go test -run TestGoldenPoll ./receiver/dlt645receiver and review the diff.
func TestGoldenPoll(t *testing.T) {
	m := threePhase2007(t, "000000000001")
	m.SetError(0x02800002, 0x02)
	_, addr := startSim(t, sim.Options{}, m)
	cfg := loadYAML(t, `
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - id: golden
        address: "1"
        manufacturer: Acme
        identifiers: ["0001FF00", "00020000", "0201FF00", "0202FF00", "02030000", "02060000", "02800002"]
        resource_attributes: {site: lab}
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	ms := &buses[0].meters[0]
	rec := device.NewRecorder(ms.identity, device.RecorderSettings{
		Scope:  device.Scope{Name: metadata.ScopeName, Version: "test"},
		Health: device.AllHealthMetrics(),
		Start:  time.Now(),
	})
	mp := newMeterPoller(ms, b, rec, clock.Real{}, zap.NewNop())
	p := rec.Begin(time.Now())
	mp.Poll(context.Background(), p)
	got, _ := p.End(time.Now(), poll.BreakerClosed)
	// The endpoint's port changes from run to run, and so do the exemplar's trace and span ids.
	rm := got.ResourceMetrics().At(0)
	rm.Resource().Attributes().PutStr("device.address", "tcp://sim/000000000001")
	metrics := rm.ScopeMetrics().At(0).Metrics()
	for i := 0; i < metrics.Len(); i++ {
		if metrics.At(i).Type() == pmetric.MetricTypeGauge {
			dps := metrics.At(i).Gauge().DataPoints()
			for j := 0; j < dps.Len(); j++ {
				dps.At(j).Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
			}
		}
	}

	path := filepath.Join("testdata", "golden", "poll.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, golden.WriteMetrics(t, path, got))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, got,
		pmetrictest.IgnoreTimestamp(), pmetrictest.IgnoreStartTimestamp(),
		pmetrictest.IgnoreMetricValues("iiot.device.poll.duration"), pmetrictest.IgnoreExemplars(),
		pmetrictest.IgnoreMetricDataPointsOrder()))
}
