package devicetest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// FirstEmissions waits until n devices (by device.id) have emitted into sink and returns the first
// emission of each, in one pmetric.Metrics: a device's first poll is deterministic where later ones
// depend on how many polls a test happened to catch.
func FirstEmissions(t testing.TB, sink *consumertest.MetricsSink, n int) pmetric.Metrics {
	t.Helper()
	out := pmetric.NewMetrics()
	require.Eventually(t, func() bool {
		out = pmetric.NewMetrics()
		seen := map[string]bool{}
		for _, md := range sink.AllMetrics() {
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				rm := md.ResourceMetrics().At(i)
				id, _ := rm.Resource().Attributes().Get("device.id")
				if !seen[id.AsString()] {
					seen[id.AsString()] = true
					rm.CopyTo(out.ResourceMetrics().AppendEmpty())
				}
			}
		}
		return len(seen) == n
	}, 15*time.Second, 10*time.Millisecond, "waiting for the first emission of %d devices", n)
	return out
}

// loopbackPort is a test server's address in device.address; its port changes from run to run.
var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// CompareGolden compares got with the golden file at path (golden.ReadMetrics); UPDATE_GOLDEN=1
// rewrites the file first (review the diff). Only what changes from run to run is left out:
// timestamps, the poll duration's value, exemplars (trace and span ids) and the port of a loopback
// test server in device.address; opts add what else a receiver's output holds of that kind (e.g. a
// value that depends on the clock). Every other metric name, unit, kind, value and attribute counts.
func CompareGolden(t testing.TB, path string, got pmetric.Metrics, opts ...pmetrictest.CompareMetricsOption) {
	t.Helper()
	got = copyMetrics(got)
	for i := 0; i < got.ResourceMetrics().Len(); i++ {
		attrs := got.ResourceMetrics().At(i).Resource().Attributes()
		if v, ok := attrs.Get("device.address"); ok {
			attrs.PutStr("device.address", loopbackPort.ReplaceAllString(v.Str(), "sim"))
		}
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
		require.NoError(t, golden.WriteMetrics(t, path, got))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err, "no golden file: run with UPDATE_GOLDEN=1 and review it")
	require.NoError(t, pmetrictest.CompareMetrics(want, got, append([]pmetrictest.CompareMetricsOption{
		pmetrictest.IgnoreTimestamp(), pmetrictest.IgnoreStartTimestamp(),
		pmetrictest.IgnoreMetricValues("iiot.device.poll.duration"), pmetrictest.IgnoreExemplars(),
		pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder(),
	}, opts...)...))
}

func copyMetrics(md pmetric.Metrics) pmetric.Metrics {
	out := pmetric.NewMetrics()
	md.CopyTo(out)
	return out
}
