//go:build unix

package modbus

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// ptyPair starts socat with two raw ptys and returns their paths.
func ptyPair(t *testing.T) (string, string) {
	t.Helper()
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat is not installed: the serial (rtu://) path needs a pty pair from socat (Debian package socat; make deps)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	re := regexp.MustCompile(`PTY is (\S+)`)
	var ptys []string
	sc := bufio.NewScanner(stderr)
	for len(ptys) < 2 && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			ptys = append(ptys, m[1])
		}
	}
	require.Len(t, ptys, 2, "socat did not report two ptys")
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return ptys[0], ptys[1]
}

// TestSerialRTU scans, checks and searches devices on a serial line (an RTU responder on the other end
// of a pty pair), with a meter that never answers among them.
func TestSerialRTU(t *testing.T) {
	a, b := ptyPair(t)
	dev, err := os.OpenFile(b, os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	bank := modbussim.NewBank(1, 2, 3)
	bank.SetSilent(2, true) // a dead meter on the bus
	bank.SetRegisters(1, modbussim.Holding, 10, f32(230.4)...)
	bank.SetRegisters(3, modbussim.Holding, 0, 7)
	done := make(chan struct{})
	go func() { defer close(done); _ = bank.ServeRTU(dev) }()
	t.Cleanup(func() { _ = dev.Close(); <-done })

	line := Line{BaudRate: 38400, DataBits: 8, Parity: "even", StopBits: 1}
	// Timeouts generous for a loaded machine: a pty and a simulator goroutine stand between the requests.
	ep := endpoint(t, "rtu://"+a)
	cfg := ScanConfig{Endpoint: ep, Line: line, Units: []int{1, 2, 3, 4}, Timeout: time.Second}
	res, err := Scan(cfg)
	require.NoError(t, err)
	assert.Equal(t, map[int]Kind{1: KindOK, 2: KindTimeout, 3: KindOK, 4: KindTimeout}, kinds(res))
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	assert.Contains(t, out.String(), "    baud_rate: 38400\n    parity: even\n    stop_bits: 1\n")

	fc := FindConfig{Endpoint: ep, Line: line, Unit: 1, Timeout: 2 * time.Second, Value: 230.4, Tolerance: 0.01, Tables: []Table{Holding}, From: 0, To: 40, Name: "voltage"}
	r, err := Find(fc)
	require.NoError(t, err)
	assert.Equal(t, Candidate{Table: Holding, Address: 10, Type: "float32", Order: "ABCD", Scale: 1}, strip(best(t, r)))
	out.Reset()
	WriteFind(&out, fc, r)
	c := loadModbusYAML(t, out.String())
	assert.Equal(t, "even", c.Connections[0].Parity)
	assert.Equal(t, 38400, c.Connections[0].BaudRate)
}
