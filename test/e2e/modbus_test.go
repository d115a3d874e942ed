//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startPymodbus runs test/e2e/modbus/server.py (Debian's python3-pymodbus) on a free port
// with the given framer and returns the port and its control directory.
func startPymodbus(t *testing.T, framer string) (int, string) {
	t.Helper()
	port := freePort(t)
	_, control := startPymodbusOn(t, framer, port)
	return port, control
}

// startPymodbusOn runs the server on port and returns its process (killed on cleanup) and control
// directory.
func startPymodbusOn(t *testing.T, framer string, port int) (*exec.Cmd, string) {
	t.Helper()
	const python = "/usr/bin/python3" // Debian's interpreter, where python3-pymodbus is installed
	out, err := exec.Command(python, "-c", "import pymodbus; print(pymodbus.__version__)").CombinedOutput()
	require.NoError(t, err, "python3-pymodbus is missing (run 'make deps'): %s", out)
	control := t.TempDir()
	cmd := exec.Command(python, filepath.Join(repoRoot(t), "test", "e2e", "modbus", "server.py"),
		"--port", fmt.Sprint(port), "--framer", framer, "--control", control)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("pymodbus server (%s) did not start: %s", framer, stderr.String())
	}
	return cmd, control
}

// The built collector polls a real pymodbus server over Modbus/TCP and with RTU framing over TCP,
// into a real Prometheus: exact floats in two word orders, int32, a scaled value, bits, a counter as a
// monotonic sum; then a register that starts raising exceptions goes stale on its own while the other
// fields keep flowing, and the exception is counted and traced.
func TestModbusEndToEnd(t *testing.T) {
	tcpPort, tcpControl := startPymodbus(t, "socket")
	rtuPort, _ := startPymodbus(t, "rtu")
	prom := startPrometheus(t)
	sink := startTraceSink(t)

	data := vars{"TCPPort": tcpPort, "RTUPort": rtuPort, "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": sink.Endpoint()}
	startCollectorTestdata(t, nil, data, "common.yaml", "modbus/config.yaml")

	prom.expectValues(t, "modbus/expected.yaml", data)
	for _, dev := range []string{"e2e-tcp", "e2e-rtu"} {
		sel := fmt.Sprintf(`{device_id=%q}`, dev)
		// The counter is a monotonic sum that counts up (+7 every 0.5 s on the server).
		first := prom.Query(t, `modbus_e2e_counter_total`+sel)
		require.Len(t, first, 1)
		require.GreaterOrEqual(t, first[0].Value, 1000.0)
		require.True(t, assertEventually(15*time.Second, func() bool {
			s, err := prom.QueryE(`modbus_e2e_counter_total` + sel)
			return err == nil && len(s) == 1 && s[0].Value > first[0].Value
		}), "the counter of %s does not count up", dev)
	}

	// Register 10 disappears on the TCP server: reads covering it raise exception 2 (illegal address).
	require.NoError(t, os.WriteFile(filepath.Join(tcpControl, "fail"), nil, 0o600))
	require.True(t, assertEventually(30*time.Second, func() bool {
		s, err := prom.QueryE(`modbus_e2e_hole{device_id="e2e-tcp"}`)
		return err == nil && len(s) == 0 // a stale marker, long before the 1m lookback would drop it
	}), "the failing field did not go stale")
	require.True(t, assertEventually(15*time.Second, func() bool {
		s, err := prom.QueryE(`iiot_device_poll_errors_total{device_id="e2e-tcp",error_type="exception"}`)
		return err == nil && len(s) == 1 && s[0].Value >= 1
	}), "the exception is not counted")
	// The other fields of the same read keep flowing, fresh: a sample polled after the exception was
	// counted arrives.
	counted := time.Now().Unix()
	prom.eventuallyValue(t, fmt.Sprintf(`count(timestamp(modbus_e2e_after{device_id="e2e-tcp"}) > %d)`, counted+1), 1, 10*time.Second)
	prom.eventuallyValue(t, `modbus_e2e_after{device_id="e2e-tcp"}`, 42, 10*time.Second)
	prom.eventuallyValue(t, `modbus_e2e_float_abcd{device_id="e2e-tcp"}`, 230.5, 10*time.Second)
	prom.eventuallyValue(t, `count(timestamp(modbus_e2e_after{device_id="e2e-tcp"}) > time() - 5)`, 1, 10*time.Second)
	prom.eventuallyValue(t, `iiot_device_up{device_id="e2e-tcp"}`, 1, 10*time.Second)
	// The other device is untouched.
	prom.eventuallyValue(t, `modbus_e2e_hole{device_id="e2e-rtu"}`, 77, 10*time.Second)

	// Traces: the poll spans and a request span that carries the exception.
	require.True(t, assertEventually(30*time.Second, func() bool {
		polls, exc := 0, 0
		for _, s := range sink.Spans(t) {
			if s.Resource["device.id"] != "e2e-tcp" {
				continue
			}
			switch s.Name {
			case "modbus.poll":
				polls++
			case "modbus.read_holding_registers":
				if fmt.Sprint(s.Attrs["modbus.exception_code"]) == "2" && s.Status == "Error" {
					exc++
				}
			}
		}
		return polls > 0 && exc > 0
	}), "no poll span with a request span carrying exception code 2")
}
