package modbus

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// freeAddr returns a loopback address with a port that was free a moment ago (the simonvetter server
// does not report the port it bound).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startServer serves bank with the simonvetter Modbus/TCP server on loopback.
func startServer(t testing.TB, bank *modbussim.Bank) string {
	t.Helper()
	addr := freeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 16, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })
	return addr
}

func endpoint(t testing.TB, s string) probe.Endpoint {
	t.Helper()
	ep, err := probe.ParseEndpoint(s, "tcp", "rtuovertcp", "rtu")
	require.NoError(t, err)
	return ep
}

// pymodbus starts test/pymodbus_server.py with Debian's python3-pymodbus on a free loopback port and
// returns its address. Extra args go to the script.
func pymodbus(t *testing.T, args ...string) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pymodbus.server, serial_asyncio").Run(); err != nil {
		t.Skipf("pymodbus is not installed (Debian packages python3-pymodbus python3-serial-asyncio; make deps): %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, append([]string{filepath.Join("testdata", "pymodbus_server.py"), "--port", port}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pymodbus stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		require.Equal(t, "ready", line, "pymodbus server did not start")
	case <-time.After(20 * time.Second):
		t.Fatal("pymodbus server did not print ready within 20s")
	}
	// pymodbus prints ready before serve_forever binds the socket.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	return addr
}

// loadModbusYAML unmarshals the probe's output into the modbus receiver's configuration and validates
// it, as the collector does with a devices/modbus.yaml file.
func loadModbusYAML(t *testing.T, out string) *modbusreceiver.Config {
	t.Helper()
	ret, err := confmap.NewRetrievedFromYAML([]byte(out))
	require.NoError(t, err, out)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	cfg := modbusreceiver.NewFactory().CreateDefaultConfig().(*modbusreceiver.Config)
	require.NoError(t, conf.Unmarshal(cfg), out)
	require.NoError(t, cfg.Validate(), out)
	return cfg
}

func f32(v float32) []uint16 { return modbussim.Float32Regs(v) }
