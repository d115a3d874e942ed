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

	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/modbustest"
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
	bank := modbustest.NewBank(1, 3)
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
