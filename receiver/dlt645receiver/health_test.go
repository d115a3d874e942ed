package dlt645receiver

import (
	"maps"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver/internal/metadata"
)

// The health metrics written by the shared recorder are the ones metadata.yaml declares (the
// generated builder writes one point of each for comparison).
func TestHealthMetricsMatchMetadata(t *testing.T) {
	mb := metadata.NewMetricsBuilder(metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	ts := pcommon.NewTimestampFromTime(time.Now())
	mb.RecordIiotDeviceUpDataPoint(ts, 1)
	mb.RecordIiotDevicePollDurationDataPoint(ts, 0.25)
	mb.RecordIiotDevicePollErrorsDataPoint(ts, 1, metadata.AttributeErrorTypeTimeout)
	mb.RecordIiotDeviceRequestsDataPoint(ts, 1)
	mb.RecordIiotDeviceBreakerStateDataPoint(ts, 0)
	rb := mb.NewResourceBuilder()
	rb.SetDeviceID("d")
	rb.SetDeviceProtocolDlt645()
	rb.SetDeviceAddress("a")
	rb.SetDeviceManufacturer("m")
	rb.SetDeviceModelName("n")
	declared := mb.Emit(metadata.WithResource(rb.Emit()))

	written := devicetest.HealthPoll(metadata.ScopeName, device.ProtocolDLT645, device.AllHealthMetrics())
	devicetest.AssertHealthMatchesMetadata(t, declared, written, slices.Collect(maps.Keys(metadata.MapAttributeErrorType)))
}

// The `metrics` key (the generated config) switches each health metric of the recorder.
func TestHealthMetricsConfig(t *testing.T) {
	devicetest.AssertHealthSwitches(t, metadata.ScopeName, device.ProtocolDLT645, func(metrics map[string]any) (device.HealthMetrics, error) {
		cfg := createDefaultConfig().(*Config)
		err := confmap.NewFromStringMap(map[string]any{"metrics": metrics}).Unmarshal(cfg)
		return cfg.health(), err
	})
}
