package opcuareceiver

import (
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

// ignoreValidity: the server certificate's remaining validity counts down with the clock.
var ignoreValidity = pmetrictest.IgnoreMetricValues("opcua.certificate.remaining_validity")

// The first poll of the simulator's plant, as it leaves the receiver: the resource, the health
// metrics, every kind of value (Double, Float, Boolean, an array by index; the UInt32 Counter as the grid
// meter's import energy, kWh scaled to Wh: an exact integer sum) with its
// name, unit and attributes, a Bad and an unknown-namespace node as stale points, the Uncertain
// value, the String node left out, the errors counted by type. Regenerate with
// UPDATE_GOLDEN=1 go test -run TestGolden ./receiver/opcuareceiver and review the diff.
func TestGoldenPoll(t *testing.T) {
	srv := startSim(t, sim.Config{})
	cfg := testConfig(srv.Endpoint())
	cfg.Nodes = plantNodes()
	cfg.Groups = plantMeter()
	cfg.ResourceAttributes = map[string]string{"site": "lab"}
	h := startReceiver(t, cfg)
	devicetest.CompareGolden(t, filepath.Join("testdata", "golden", "poll.yaml"), devicetest.FirstEmissions(t, h.metrics, 1),
		ignoreValidity)
}
