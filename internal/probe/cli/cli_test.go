package cli

import (
	"bytes"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	opcuasim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	rc := Main(args, &out, &errOut)
	return rc, out.String(), errOut.String()
}

// TestUsage: mistakes in the command line exit 2 and name the flag and what is allowed, all at once.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"modbus scan", "opcua browse"}},
		{[]string{"modbus", "dance"}, []string{`unknown command "modbus dance"`}},
		{[]string{"modbus", "scan"}, []string{"--endpoint: required"}},
		{[]string{"modbus", "scan", "--endpoint", "tcp://h:1", "--units", "1-300"}, []string{`--units: "1-300" is not a number or range within 0-255`}},
		{[]string{"modbus", "scan", "--endpoint", "rtu:///dev/x", "--parity", "mark", "--timeout", "0s"}, []string{"--parity: unknown \"mark\"", "--timeout: must be > 0"}},
		{[]string{"modbus", "check", "--endpoint", "tcp://h:1"}, []string{"--profile: required"}},
		{[]string{"modbus", "check", "--endpoint", "tcp://h:1", "--profile", "nope", "--profile-dir", "/nonexistent"}, []string{`--profile: "nope" is neither a file nor a profile`}},
		{[]string{"modbus", "find", "--endpoint", "tcp://h:1"}, []string{"--value: required"}},
		{[]string{"modbus", "find", "--endpoint", "tcp://h:1", "--value", "0"}, []string{"--value: 0 matches every empty register"}},
		{[]string{"modbus", "find", "--endpoint", "tcp://h:1", "--value", "1", "--table", "coil"}, []string{`--table: unknown "coil"`}},
		{[]string{"dlt645", "scan", "--endpoint", "serial:///dev/x", "--baud-rate", "1234", "--address", "12x"}, []string{"--baud-rate: 1234 is not supported", "--address:"}},
		{[]string{"opcua", "browse", "--endpoint", "tcp://h:1", "--depth", "99"}, []string{`unknown scheme "tcp"`, "--depth: must be 0 to 50"}},
		{[]string{"modbus", "scan", "--endpoint", "tcp://h:1", "extra"}, []string{"unexpected arguments"}},
	} {
		rc, out, errOut := run(tc.args...)
		assert.Equal(t, 2, rc, "%v", tc.args)
		assert.Empty(t, out, "%v", tc.args)
		for _, w := range tc.want {
			assert.Contains(t, errOut, w, "%v", tc.args)
		}
	}
	rc, _, _ := run("modbus", "scan", "-h")
	assert.Equal(t, 0, rc)
}

// TestModbusScanCommand runs the command end to end against the simulated meters; an endpoint that
// refuses exits 1 with the reason.
func TestModbusScanCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	bank := modbussim.NewBank(1, 3)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 4, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })

	rc, out, errOut := run("modbus", "scan", "--endpoint", "tcp://"+addr, "--units", "1-4")
	require.Equal(t, 0, rc, errOut)
	assert.Contains(t, out, "2 answered")
	assert.Contains(t, out, "# - {id: unit-3, unit_id: 3, profile: PROFILE}")

	require.NoError(t, srv.Stop())
	rc, out, errOut = run("modbus", "scan", "--endpoint", "tcp://"+addr, "--units", "1-4")
	assert.Equal(t, 1, rc)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "connection refused")
}

// TestCommands runs each command through the command line against the simulators: the flags reach
// the probes, the YAML is on stdout and nothing else is.
func TestCommands(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	bank := modbussim.NewBank(3)
	m := &modbussim.DTSU666{Bank: bank, Unit: 3}
	m.Update(100, 1)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 4, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })
	profiles := "../../../distributions/otelcol-iiot/profiles"

	rc, out, errOut := run("modbus", "check", "--endpoint", "tcp://"+addr, "--unit", "3", "--profile", "chint_dtsu666", "--profile-dir", profiles, "--id", "feeder")
	require.Equal(t, 0, rc, errOut)
	assert.Contains(t, out, "      - id: feeder\n        unit_id: 3\n        profile: chint_dtsu666\n")

	rc, out, errOut = run("modbus", "scan", "--endpoint", "tcp://"+addr, "--units", "1-3", "--profiles", "all", "--profile-dir", profiles)
	require.Equal(t, 0, rc, errOut)
	assert.Contains(t, out, "- {id: chint_dtsu666-3, unit_id: 3, profile: chint_dtsu666}")

	rc, out, errOut = run("modbus", "find", "--endpoint", "tcp://"+addr, "--unit", "3", "--value", "50", "--tolerance", "1",
		"--range", "8250-8270", "--table", "holding", "--name", "frequency", "--unit-name", "Hz")
	require.Equal(t, 0, rc, errOut)
	assert.Contains(t, out, "- {name: frequency, address: 8260, type: float32, scale: 0.01, unit: Hz}")

	dsrv := sim.NewServer(sim.Options{}, func() *sim.Meter {
		mt := sim.NewMeter(dlt645.Address{0x01}, dlt645.V2007)
		require.NoError(t, mt.Set(0x00010000, 12.5))
		return mt
	}())
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = dsrv.Serve(dln) }()
	t.Cleanup(func() { _ = dsrv.Close(); <-done })
	rc, out, errOut = run("dlt645", "scan", "--endpoint", "tcp://"+dln.Addr().String(), "--timeout", "200ms")
	require.Equal(t, 0, rc, errOut)
	assert.Contains(t, out, `address: "000000000001"`)

	ol, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ol.Addr().(*net.TCPAddr).Port
	require.NoError(t, ol.Close())
	osrv, err := opcuasim.Start(opcuasim.Config{Port: port})
	require.NoError(t, err)
	t.Cleanup(osrv.Close)
	rc, out, errOut = run("opcua", "browse", "--endpoint", osrv.Endpoint(), "--root", "nsu=urn:otelcol-iiot:opcuasim;s=Folder.Line2", "--id", "plc")
	require.Equal(t, 0, rc, errOut)
	assert.Contains(t, out, `- {id: "nsu=urn:otelcol-iiot:opcuasim;s=Line2.Temperature", name: temperature}`)
}
