//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// serveMeters runs the simulator for meters on a loopback port: the RS-485 line behind one DTU.
func serveMeters(t *testing.T, meters ...*dlt645sim.Meter) string {
	t.Helper()
	srv := dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, meters...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// The built collector with three DTUs dialling in (the PV site of the receiver's README), into a real
// Prometheus: before they dial, every meter is down with not_connected; once they register, exact
// values of every meter, with heartbeats in the middle of replies and between polls; the collector's
// own telemetry shows the connected DTUs; a DTU that drops takes only its meters down, and they come
// back when it redials; an unknown DTU changes nothing.
func TestDTUDLT645(t *testing.T) {
	prom := startPrometheus(t)
	dtuAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	telemetry := freePort(t)
	lineA := serveMeters(t, dltMeter(t, "000000000001"), dltMeter(t, "000000000002"))
	lineB := serveMeters(t, dltMeter(t, "000000000003"))
	lineC := serveMeters(t, dltMeter(t, "000000000004"))
	data := vars{"DTUAddr": dtuAddr, "RemoteWrite": prom.RemoteWriteURL(), "TelemetryPort": telemetry}
	startCollectorTestdata(t, nil, data, "dtu/config.yaml")

	// No DTU yet: the meters are down, not_connected.
	for _, dev := range []string{"pv-a-grid", "pv-b-inv1", "pv-c-aux"} {
		require.True(t, assertEventually(60*time.Second, func() bool {
			s, err := prom.QueryE(fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q,error_type="not_connected"}`, dev))
			return err == nil && len(s) == 1 && s[0].Value >= 1
		}), "%s is not down with not_connected", dev)
		prom.eventuallyValue(t, fmt.Sprintf(`iiot_device_up{device_id=%q}`, dev), 0, 10*time.Second)
	}

	hb := []byte("PING")
	dial := func(imei, line string, mid bool) *dtutest.DTU {
		return dtutest.Dial(t, dtuAddr, dtutest.Options{Registration: []byte("USR-G781 IMEI:" + imei), Heartbeat: hb,
			MidReply: mid, HeartbeatEvery: 300 * time.Millisecond, Device: line})
	}
	a := dial("862951034567890", lineA, true)
	dial("862951034567891", lineB, true)
	dial("862951034567892", lineC, false)
	registered := time.Now()
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-c-aux"}`, 1, 30*time.Second)
	t.Logf("registration to first poll seen in Prometheus: %s (poll interval 1s, remote-write flush included)", time.Since(registered))
	prom.expectValues(t, "dtu/expected.yaml", data)
	require.Positive(t, a.Beats())
	for _, dev := range []string{"pv-a-grid", "pv-a-inv1", "pv-b-inv1", "pv-c-aux"} {
		s := prom.Query(t, fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q,error_type=~"timeout|checksum|protocol"}`, dev))
		require.Empty(t, s, "%s: heartbeats broke frames: %v", dev, s)
	}
	s := prom.Query(t, `electrical_voltage_volts{device_id="pv-b-inv1",phase="A"}`)
	require.Len(t, s, 1)
	require.Equal(t, "dtu://862951034567891/000000000003", s[0].Labels["device_address"])

	// The collector's own telemetry: three DTUs connected, with their registration time.
	require.True(t, assertEventually(10*time.Second, func() bool {
		body := scrape(t, telemetry)
		for _, id := range []string{"862951034567890", "862951034567891", "862951034567892"} {
			if !hasSample(body, "iiot_dtu_connected", `dtu_id="`+id+`"`, "1") || !strings.Contains(body, `dtu_id="`+id+`"`) {
				return false
			}
		}
		return strings.Contains(body, "iiot_dtu_registration_time")
	}), "telemetry: %s", scrape(t, telemetry))

	// DTU A drops: its two meters go down (not_connected), the others stay up; it redials and they
	// come back.
	a.Close()
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-a-grid"}`, 0, 20*time.Second)
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-a-inv1"}`, 0, 20*time.Second)
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-b-inv1"}`, 1, 5*time.Second)
	require.True(t, assertEventually(10*time.Second, func() bool {
		return hasSample(scrape(t, telemetry), "iiot_dtu_connected", `dtu_id="862951034567890"`, "0")
	}))
	dial("862951034567890", lineA, true)
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-a-grid"}`, 1, 20*time.Second)
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-a-inv1"}`, 1, 20*time.Second)

	// A stranger is closed; nothing else changes.
	u := dtutest.Dial(t, dtuAddr, dtutest.Options{Registration: []byte("USR-G781 IMEI:999999999999999")})
	select {
	case <-u.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("unknown DTU not closed")
	}
	require.True(t, assertEventually(10*time.Second, func() bool {
		return hasSample(scrape(t, telemetry), "iiot_dtu_rejected", `reason="unknown_id"`, "1")
	}))
	prom.eventuallyValue(t, `iiot_device_up{device_id="pv-b-inv1"}`, 1, 5*time.Second)
}

// scrape returns the collector's own metrics (Prometheus text).
func scrape(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)) //nolint:noctx // a test on loopback
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// hasSample tells whether text has a sample of a metric whose name starts with name, with label and
// value.
func hasSample(text, name, label, value string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name) && strings.Contains(line, label) && strings.HasSuffix(line, " "+value) {
			return true
		}
	}
	return false
}
