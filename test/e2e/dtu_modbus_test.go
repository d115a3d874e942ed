//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
)

// The built collector with a modbus and a dlt645 receiver on one DTU port, into a real Prometheus:
// before the DTUs dial in, the devices are down with not_connected; then a transparent DTU in front of
// pymodbus' RTU server (heartbeats in the middle of replies), a DTU converting to Modbus TCP and a DTU
// in front of a DL/T 645 meter give exact values; the RTU DTU drops (its device down, not_connected)
// and redials (up again).
func TestDTUModbus(t *testing.T) {
	rtuPort, _ := startPymodbus(t, "rtu")
	tcpPort, _ := startPymodbus(t, "socket")
	prom := startPrometheus(t)
	sink := startTraceSink(t)
	dtuAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	line := serveMeters(t, dltMeter(t, "000000000001"))
	data := vars{"DTUAddr": dtuAddr, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "dtu_modbus/config.yaml")

	for _, dev := range []string{"inv-rtu", "gw-tcp", "meter-1"} {
		require.True(t, assertEventually(60*time.Second, func() bool {
			s, err := prom.QueryE(fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q,error_type="not_connected"}`, dev))
			return err == nil && len(s) == 1 && s[0].Value >= 1
		}), "%s is not down with not_connected", dev)
	}

	dial := func(imei string, port int, mid bool) *dtutest.DTU {
		return dtutest.Dial(t, dtuAddr, dtutest.Options{Registration: []byte("USR-G781 IMEI:" + imei), Heartbeat: []byte("PING"),
			MidReply: mid, HeartbeatEvery: 300 * time.Millisecond, Device: "127.0.0.1:" + strconv.Itoa(port)})
	}
	rtu := dial("862951034567890", rtuPort, true)
	dial("862951034567891", tcpPort, false)
	dtutest.Dial(t, dtuAddr, dtutest.Options{Registration: []byte("USR-G781 IMEI:862951034567892"), Heartbeat: []byte("PING"),
		HeartbeatEvery: 300 * time.Millisecond, Device: line})
	registered := time.Now()
	prom.eventuallyValue(t, `iiot_device_up{device_id="inv-rtu"}`, 1, 30*time.Second)
	t.Logf("registration to first poll seen in Prometheus: %s (poll interval 1s, remote-write flush included)", time.Since(registered))
	prom.expectValues(t, "dtu_modbus/expected.yaml", data)
	for _, dev := range []string{"inv-rtu", "gw-tcp"} {
		s := prom.Query(t, fmt.Sprintf(`iiot_device_poll_errors_total{device_id=%q,error_type=~"timeout|checksum|protocol"}`, dev))
		require.Empty(t, s, "%s: heartbeats broke frames: %v", dev, s)
	}

	rtu.Close()
	prom.eventuallyValue(t, `iiot_device_up{device_id="inv-rtu"}`, 0, 20*time.Second)
	prom.eventuallyValue(t, `iiot_device_up{device_id="gw-tcp"}`, 1, 5*time.Second)
	dial("862951034567890", rtuPort, true)
	prom.eventuallyValue(t, `iiot_device_up{device_id="inv-rtu"}`, 1, 20*time.Second)
}
