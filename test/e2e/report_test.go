//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// Report by exception, end to end: the built collector polls two identical simulated meters every
// second into a real Prometheus, one with report by exception (deadband 0.5, max_silence 5s). The
// steady meter's series is present at every instant yet carries a fraction of the samples; a step
// arrives at once, not after max_silence; a failed reading goes stale at once.
func TestReportByExceptionPrometheus(t *testing.T) {
	prom := startPrometheus(t)
	rbe, plain := dltMeter(t, "000000000001"), dltMeter(t, "000000000002")
	srv := dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, rbe, plain)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	cfg := fmt.Sprintf(`
exporters:
  prometheus_remote_write:
    endpoint: %s
    resource_to_telemetry_conversion: {enabled: true}
receivers:
  dlt645:
    poll: {interval: 1s, timeout: 300ms, retries: 1, jitter: 0}
    buses:
      - endpoint: tcp://%s
        meters:
          - {id: rbe, address: "000000000001", identifiers: &ids ["00010000", "0201FF00", "02800002"],
             report: {enabled: true, deadband: 0.5, max_silence: 5s}}
          - {id: plain, address: "000000000002", identifiers: *ids}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    metrics: {receivers: [dlt645], exporters: [prometheus_remote_write]}
`, prom.RemoteWriteURL(), l.Addr().String())
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	startCollectorFiles(t, nil, path)

	voltage := func(dev string) string { return fmt.Sprintf(`electrical_voltage_volts{device_id=%q,phase="A"}`, dev) }
	prom.eventuallyValue(t, voltage("rbe"), 220.1, 20*time.Second)
	prom.eventuallyValue(t, voltage("plain"), 220.1, 20*time.Second)

	// 16 s of a steady meter: the held series is there at every look (the health metrics too).
	for end := time.Now().Add(16 * time.Second); time.Now().Before(end); {
		s := prom.Query(t, voltage("rbe"))
		require.Len(t, s, 1, "the held series is present")
		require.Len(t, prom.Query(t, `iiot_device_up{device_id="rbe"}`), 1)
		time.Sleep(500 * time.Millisecond) //nolint:forbidigo // sampling Prometheus over wall time
	}
	count := func(dev string) float64 {
		s := prom.Query(t, fmt.Sprintf(`count_over_time(%s[15s])`, voltage(dev)))
		require.Len(t, s, 1, dev)
		return s[0].Value
	}
	nRBE, nPlain := count("rbe"), count("plain")
	ups := prom.Query(t, `count_over_time(iiot_device_up{device_id="rbe"}[15s])`)
	require.Len(t, ups, 1)
	t.Logf("voltage samples in 15 s: %v with report by exception, %v without; health samples: %v", nRBE, nPlain, ups[0].Value)
	require.GreaterOrEqual(t, nPlain, 12.0)
	require.LessOrEqual(t, nRBE, 4.0, "one sample per max_silence (5 s)")
	require.GreaterOrEqual(t, nRBE, 2.0)
	require.GreaterOrEqual(t, ups[0].Value, 12.0, "the health metrics are never held")

	// A step is sent at the next poll, well before max_silence.
	require.NoError(t, rbe.Set(0x02010100, 231.4))
	prom.eventuallyValue(t, voltage("rbe"), 231.4, 3*time.Second)
	// A failure is sent at once: the series goes stale.
	rbe.SetError(0x0201FF00, 0x02)
	require.True(t, assertEventually(4*time.Second, func() bool {
		s, err := prom.QueryE(voltage("rbe"))
		return err == nil && len(s) == 0
	}), "the failed reading's series is not stale")
}
