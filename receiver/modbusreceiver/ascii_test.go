package modbusreceiver

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"gopkg.in/yaml.v3"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver"
)

// startPymodbus runs test/e2e/modbus/server.py (Debian's python3-pymodbus) with framer on a free
// loopback port and returns its address.
func startPymodbus(t *testing.T, framer string) string {
	t.Helper()
	const python = "/usr/bin/python3" // Debian's interpreter, where python3-pymodbus is installed
	out, err := exec.Command(python, "-c", "import pymodbus").CombinedOutput()
	require.NoError(t, err, "python3-pymodbus is missing (run 'make deps'): %s", out)
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "test", "e2e", "modbus", "server.py")
	cmd := exec.Command(python, script, "--port", port, "--framer", framer)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	ready := make(chan bool, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-scanned; _ = cmd.Wait() })
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("pymodbus server (%s) did not start: %s", framer, stderr.String())
	}
	return addr
}

// asciiFields reads every type pymodbus' server.py holds, by every function.
const asciiFields = `
        fields:
          - {name: f_abcd, table: holding, address: 0, type: float32}
          - {name: f_cdab, table: holding, address: 2, type: float32, byte_order: CDAB}
          - {name: i32, table: holding, address: 4, type: int32}
          - {name: scaled, table: holding, address: 6, type: uint16, scale: 0.1}
          - {name: forty_two, table: holding, address: 11, type: uint16}
          - {name: temp, table: input, address: 3, type: int16}
          - {name: di0, table: discrete, address: 0, type: bool}
          - {name: c0, table: coil, address: 0, type: bool}
          - {name: c1, table: coil, address: 1, type: bool}
          - {name: c2, table: coil, address: 2, type: bool}
`

var asciiWant = map[string]float64{
	"f_abcd": 230.5, "f_cdab": -12.25, "i32": -123456, "scaled": 234.5, "forty_two": 42, "temp": -321,
	"di0": 1, "c0": 1, "c1": 0, "c2": 1,
}

// Modbus ASCII over TCP against pymodbus' ASCII framer: exact values of every type, by every function.
func TestModbusASCIIOverTCP(t *testing.T) {
	addr := startPymodbus(t, "ascii")
	cfg := loadConfig(t, `
poll: {interval: 500ms, timeout: 500ms}
connections:
  - endpoint: asciiovertcp://`+addr+`
    devices:
      - id: d
        unit_id: 1`+asciiFields)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		for name := range asciiWant {
			if _, ok := latest(pts, "d", name, nil); !ok {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	pts := points(s.metrics.AllMetrics())
	for name, want := range asciiWant {
		p, _ := latest(pts, "d", name, nil)
		assert.Equal(t, want, p.value, name)
	}
	_, failed := latest(pts, "d", "iiot.device.poll.errors", nil)
	assert.False(t, failed, "no failed request")
}

// unmarshal builds a Config from YAML without validating it.
func unmarshal(t *testing.T, yml string) *Config {
	t.Helper()
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(yml), &raw))
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
	return cfg
}

// Two connections of one receiver on one port (whatever the framing) are one bus: a validate error.
func TestSamePortTwiceIsInvalid(t *testing.T) {
	err := unmarshal(t, `
connections:
  - endpoint: rtu:///dev/ttyUSB0
    devices: [{id: a, fields: [{name: x, address: 0}]}]
  - endpoint: ascii:///dev/ttyUSB0
    devices: [{id: b, fields: [{name: x, address: 0}]}]
  - endpoint: rtuovertcp://10.0.0.1:4001
    devices: [{id: c, fields: [{name: x, address: 0}]}]
  - endpoint: asciiovertcp://10.0.0.1:4001
    devices: [{id: d, fields: [{name: x, address: 0}]}]
  - endpoint: tcp://10.0.0.1:502
    devices: [{id: e, fields: [{name: x, address: 0}]}]
  - endpoint: tcp://10.0.0.1:502
    devices: [{id: f, unit_id: 2, fields: [{name: x, address: 0}]}]
`).Validate()
	require.Error(t, err)
	assert.Equal(t, "connections[1].endpoint: /dev/ttyUSB0 is the port of connections[0] too (one connection per serial port or serial server: list every device under one)\n"+
		"connections[3].endpoint: 10.0.0.1:4001 is the port of connections[2] too (one connection per serial port or serial server: list every device under one)", err.Error())
}

// A modbus and a dlt645 receiver on one port with other line settings: the second start fails,
// naming both users and both settings.
func TestLineConflictNamesBoth(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyRS485")
	mcfg := loadConfig(t, `
connections:
  - endpoint: rtu://`+dev+`
    baud_rate: 9600
    devices: [{id: inverter, fields: [{name: x, address: 0}]}]
`)
	ms := startReceiver(t, mcfg)
	_ = ms
	dcfg := devicetest.LoadConfig(t, dlt645receiver.NewFactory(), `
buses:
  - endpoint: serial://`+dev+`
    baud_rate: 2400
    meters: [{id: m1, address: "000000000001", identifiers: ["00010000"]}]
`)
	r, err := dlt645receiver.NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(dlt645receiver.NewFactory().Type()), dcfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	require.Regexp(t, "^"+regexp.QuoteMeta("serial port "+dev+": receiver modbus")+`(/\S+)? connections\[0\] uses 9600 baud 8N2 but receiver dlt645(/\S+)? buses\[0\] uses 2400 baud 8E1: the users of one port must use the same line settings$`, err.Error())
	require.NoError(t, r.Shutdown(context.Background()))
}
