package modbusreceiver

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// backupCase is one transport with a first endpoint that is down and a backup that serves.
type backupCase struct {
	name string
	// setup returns the endpoints (first, backup), the connection's other keys and the receiver's
	// (YAML flow maps), and how to bring the first endpoint up serving primary.
	setup func(t *testing.T, primary, backup *modbussim.Bank) backupSetup
}

type backupSetup struct {
	first, second string
	connKeys, top string
	started       func() // after the receiver started (nil: nothing)
	up            func()
}

// serveLine serves bank on one end of a pty pair in dir (RTU or ASCII framing) until the test ends,
// and returns the other end.
func serveLine(t *testing.T, dir string, bank *modbussim.Bank, ascii bool) string {
	t.Helper()
	pair, err := dlt645sim.NewPTYPair(context.Background(), dir)
	require.NoError(t, err)
	bits := 8
	if ascii {
		bits = 7
	}
	line, err := dlt645.OpenSerial(dlt645.SerialConfig{Device: pair.A, BaudRate: 9600, DataBits: bits, Parity: "even", StopBits: 1})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if ascii {
			_ = bank.ServeRTU(&modbustest.ASCIILine{Line: line})
			return
		}
		_ = bank.ServeRTU(line)
	}()
	t.Cleanup(func() { _ = line.Close(); <-done; _ = pair.Close() })
	return pair.B
}

var backupCases = []backupCase{
	{name: "rtuovertcp", setup: func(t *testing.T, primary, backup *modbussim.Bank) backupSetup {
		first := freeAddr(t)
		b, err := modbussim.ListenRTUOverTCP("127.0.0.1:0", backup)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return backupSetup{first: "rtuovertcp://" + first, second: "rtuovertcp://" + b.Addr(), connKeys: "baud_rate: 9600", up: func() {
			p, err := modbussim.ListenRTUOverTCP(first, primary)
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
		}}
	}},
	{name: "asciiovertcp", setup: func(t *testing.T, primary, backup *modbussim.Bank) backupSetup {
		first := freeAddr(t)
		b, err := modbustest.ListenASCIIOverTCP("127.0.0.1:0", backup)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return backupSetup{first: "asciiovertcp://" + first, second: "asciiovertcp://" + b.Addr(), up: func() {
			p, err := modbustest.ListenASCIIOverTCP(first, primary)
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
		}}
	}},
	{name: "udp", setup: func(t *testing.T, primary, backup *modbussim.Bank) backupSetup {
		first := freeAddr(t) // nobody answers there: each poll gets no reply
		second, _ := startUDPServer(t, backup)
		return backupSetup{first: "udp://" + first, second: "udp://" + second, up: func() { startUDPServerAt(t, first, primary) }}
	}},
	{name: "rtu", setup: func(t *testing.T, primary, backup *modbussim.Bank) backupSetup {
		if runtime.GOOS != "linux" {
			t.Skip("pty pairs of socat: Linux")
		}
		dir := t.TempDir() // the first USB adapter is unplugged: no device file
		second := serveLine(t, t.TempDir(), backup, false)
		return backupSetup{first: "rtu://" + filepath.Join(dir, "ttyB"), second: "rtu://" + second, connKeys: "baud_rate: 9600\n    parity: even", up: func() {
			serveLine(t, dir, primary, false)
		}}
	}},
	{name: "ascii", setup: func(t *testing.T, primary, backup *modbussim.Bank) backupSetup {
		if runtime.GOOS != "linux" {
			t.Skip("pty pairs of socat: Linux")
		}
		dir := t.TempDir()
		second := serveLine(t, t.TempDir(), backup, true)
		return backupSetup{first: "ascii://" + filepath.Join(dir, "ttyB"), second: "ascii://" + second, connKeys: "baud_rate: 9600", up: func() {
			serveLine(t, dir, primary, true)
		}}
	}},
	{name: "dtu", setup: func(t *testing.T, primary, backup *modbussim.Bank) backupSetup {
		listen := freeAddr(t)
		dial := func(id string, bank *modbussim.Bank) {
			dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("IMEI:" + id), Device: startRTUServer(t, bank)})
		}
		return backupSetup{
			first: "dtu://862951034567890", second: "dtu://862951034567891",
			top:     `dtu: {endpoint: "` + listen + `", registration: {regex: 'IMEI:(\d{15})'}}`,
			started: func() { dial("862951034567891", backup) }, // the second DTU is up, the first not
			up:      func() { dial("862951034567890", primary) },
		}
	}},
}

// On every transport a connection may list backups: the first endpoint is down, after
// failover_after failed connects (on udp://, polls without an answer) the backup serves; the first
// comes back and serves again after failback_after (manual clock), not before. Each poll's span says
// which endpoint served it.
func TestBackupEndpointEveryTransport(t *testing.T) {
	for _, tc := range backupCases {
		t.Run(tc.name, func(t *testing.T) {
			primaryBank, backupBank := modbussim.NewBank(1), modbussim.NewBank(1)
			primaryBank.SetRegisters(1, modbussim.Holding, 0, 1)
			backupBank.SetRegisters(1, modbussim.Holding, 0, 2)
			st := tc.setup(t, primaryBank, backupBank)
			conn := ""
			if st.connKeys != "" {
				conn = "\n    " + st.connKeys
			}
			cfg := loadConfig(t, `
poll: {interval: 1s, timeout: 300ms, retries: 0, jitter: 0}
breaker: {failure_threshold: 0}
traces: {success_sample_ratio: 1}
`+st.top+`
connections:
  - endpoints: [`+st.first+`, `+st.second+`]
    failover_after: 2
    failback_after: 1m`+conn+`
    devices:
      - {id: d, fields: [{name: v, address: 0}]}
`)
			clk := clock.NewManual(time.Now())
			s := startReceiverOn(t, cfg, clk)
			if st.started != nil {
				st.started()
			}
			checkFailover(t, clk, s, st.first, st.second, st.up)
		})
	}
}

// checkFailover steps the manual clock through failover and failback.
func checkFailover(t *testing.T, clk *clock.Manual, s sinks, first, second string, up func()) {
	t.Helper()
	step := func(cond func() bool, max time.Duration) bool {
		t.Helper()
		for end := clk.Now().Add(max); ; clk.Advance(100 * time.Millisecond) {
			require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 10*time.Second, 100*time.Microsecond)
			if cond() {
				return true
			}
			if !clk.Now().Before(end) {
				return false
			}
		}
	}
	value := func() float64 {
		p, ok := latest(points(s.metrics.AllMetrics()), "d", "v", nil)
		if !ok || p.stale {
			return 0
		}
		return p.value
	}
	servedBy := func() []any {
		var out []any
		for _, sp := range spans(s.traces.AllTraces()) {
			if sp.name == "modbus.poll" {
				out = append(out, sp.attrs[attrServedBy])
			}
		}
		return out
	}
	require.True(t, step(func() bool { return value() == 2 }, 10*time.Second), "the backup serves")
	assert.Equal(t, []any{first, first, second}, servedBy(), "two failed connects to the first endpoint, then the backup")

	up()
	require.False(t, step(func() bool { return value() == 1 }, 50*time.Second), "no failback before failback_after")
	require.True(t, step(func() bool { return value() == 1 }, 20*time.Second), "failback after failback_after")
	polls := servedBy()
	assert.Equal(t, first, polls[len(polls)-1])
	assert.Equal(t, second, polls[len(polls)-2])
}

// A backup's port or DTU id belongs to its connection as the first's does: another connection naming
// it is a validate error, naming both keys.
func TestBackupEndpointPortsOwned(t *testing.T) {
	err := unmarshal(t, `
dtu: {endpoint: "127.0.0.1:9000"}
connections:
  - endpoints: [rtu:///dev/ttyUSB0, rtu:///dev/ttyUSB1]
    devices: [{id: a, fields: [{name: x, address: 0}]}]
  - endpoint: rtu:///dev/ttyUSB1
    devices: [{id: b, fields: [{name: x, address: 0}]}]
  - endpoints: [dtu://A1, dtu://B2]
    devices: [{id: c, fields: [{name: x, address: 0}]}]
  - endpoint: dtu://B2
    devices: [{id: d, fields: [{name: x, address: 0}]}]
`).Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connections[1].endpoint: /dev/ttyUSB1 is the port of connections[0].endpoints[1] too")
	assert.Contains(t, err.Error(), `connections[3].endpoint: DTU "B2" is already the endpoint of connections[2].endpoints[1]`)
}
