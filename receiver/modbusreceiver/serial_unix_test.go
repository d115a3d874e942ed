//go:build unix

package modbusreceiver

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// A real serial path: a socat pty pair, our RTU responder on one end, the receiver on the other.
func TestReceiverSerialOverPTY(t *testing.T) {
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat is not installed: the serial (rtu://) path needs a pty pair from socat (apt-get install socat)")
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

	dev, err := os.OpenFile(ptys[1], os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	bank := modbussim.NewBank(1, 2, 3)
	for u := uint8(1); u <= 3; u++ {
		bank.SetRegisters(u, modbussim.Input, 0, f32regs(float32(u)*100+0.5)...)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = bank.ServeRTU(dev) }()
	t.Cleanup(func() { dev.Close(); <-done })

	cfg := loadConfig(t, `
poll: {interval: 200ms, timeout: 200ms}
connections:
  - endpoint: rtu://`+ptys[0]+`
    baud_rate: 38400
    parity: even
    stop_bits: 1
    devices:
      - {id: m1, unit_id: 1, fields: [{name: power, table: input, address: 0, type: float32}]}
      - {id: m2, unit_id: 2, fields: [{name: power, table: input, address: 0, type: float32}]}
      - {id: m3, unit_id: 3, fields: [{name: power, table: input, address: 0, type: float32}]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		for u := 1; u <= 3; u++ {
			p, ok := latest(pts, "m"+itoa(u), "power", nil)
			if !ok || p.value != float64(u)*100+0.5 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
}
