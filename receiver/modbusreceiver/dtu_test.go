package modbusreceiver

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"gopkg.in/yaml.v3"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver"
)

// startRTUServer serves bank RTU-framed on a free loopback port (a device behind a transparent DTU):
// each accepted socket is a serial line to the bank.
func startRTUServer(t *testing.T, bank *modbussim.Bank) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _ = bank.ServeRTU(c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

var notConnected = map[string]string{device.AttrErrorType: string(device.ErrNotConnected)}

func value(s sinks, dev, metric string, attrs map[string]string) (float64, bool) {
	p, ok := latest(points(s.metrics.AllMetrics()), dev, metric, attrs)
	return p.value, ok && !p.stale
}

// Three DTUs dial in on one port: a transparent one in front of pymodbus' RTU server (heartbeats in the
// middle of its replies), a transparent one in front of our simulator, and one that converts to Modbus
// TCP. Before they dial in the devices are down with not_connected; each device is then read exactly
// through its own DTU; a DTU that drops takes its device down (not_connected), and it comes back
// when the DTU redials.
func TestDTUModbus(t *testing.T) {
	py := startPymodbus(t, "rtu")
	bank := modbussim.NewBank(7)
	bank.SetRegisters(7, modbussim.Holding, 100, f32regs(49.98)...)
	simAddr := startRTUServer(t, bank)
	tcpBank := modbussim.NewBank(1)
	tcpBank.SetRegisters(1, modbussim.Input, 0, 1234)
	tcpAddr := startTCPServer(t, tcpBank)
	listen := freeAddr(t)
	cfg := loadConfig(t, `
poll: {interval: 300ms, timeout: 300ms}
breaker: {failure_threshold: 3, initial_backoff: 1m}
traces: {success_sample_ratio: 1}
dtu:
  endpoint: `+listen+`
  registration: {regex: 'IMEI:(\d{15})'}
  heartbeat: {text: "HB"}
connections:
  - endpoint: dtu://862951034567890
    baud_rate: 9600
    devices:
      - id: d
        unit_id: 1`+asciiFields+`
  - endpoint: dtu://862951034567891
    devices:
      - id: meter
        unit_id: 7
        fields: [{name: hz, table: holding, address: 100, type: float32}]
  - endpoint: dtu://862951034567892
    framing: tcp
    devices:
      - id: gw
        unit_id: 1
        fields: [{name: count, table: input, address: 0, type: uint16}]
`)
	s := startReceiver(t, cfg)

	// Nobody has dialled in: down, not_connected, breakers open (the probe cuts the minute short once
	// the DTU is there).
	require.Eventually(t, func() bool {
		for _, d := range []string{"d", "meter", "gw"} {
			if v, _ := value(s, d, device.MetricBreakerState, nil); v != 2 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	v, _ := value(s, "d", device.MetricPollErrors, notConnected)
	assert.GreaterOrEqual(t, v, 3.0)
	up, _ := value(s, "meter", device.MetricUp, nil)
	assert.Zero(t, up)

	reg := func(n int) []byte { return []byte("IMEI:86295103456789" + string(rune('0'+n))) }
	dtutest.Dial(t, listen, dtutest.Options{Registration: reg(0), Heartbeat: []byte("HB"), MidReply: true, Device: py})
	dtutest.Dial(t, listen, dtutest.Options{Registration: reg(1), Heartbeat: []byte("HB"), HeartbeatEvery: 20 * time.Millisecond, Device: simAddr})
	gw := dtutest.Dial(t, listen, dtutest.Options{Registration: reg(2), Heartbeat: []byte("HB"), Device: tcpAddr})

	require.Eventually(t, func() bool {
		for name := range asciiWant {
			if _, ok := value(s, "d", name, nil); !ok {
				return false
			}
		}
		_, ok1 := value(s, "meter", "hz", nil)
		_, ok2 := value(s, "gw", "count", nil)
		return ok1 && ok2
	}, 20*time.Second, 10*time.Millisecond)
	for name, want := range asciiWant {
		v, _ := value(s, "d", name, nil)
		assert.Equal(t, want, v, name)
	}
	hz, _ := value(s, "meter", "hz", nil)
	assert.InDelta(t, 49.98, hz, 1e-4)
	count, _ := value(s, "gw", "count", nil)
	assert.Equal(t, 1234.0, count)

	// The converting DTU drops: its device goes down with not_connected; it redials and is read again.
	before, _ := value(s, "gw", device.MetricPollErrors, notConnected)
	gw.Close()
	require.Eventually(t, func() bool {
		v, _ := value(s, "gw", device.MetricPollErrors, notConnected)
		up, _ := value(s, "gw", device.MetricUp, nil)
		return v > before && up == 0
	}, 10*time.Second, 10*time.Millisecond)
	tcpBank.SetRegisters(1, modbussim.Input, 0, 4321)
	dtutest.Dial(t, listen, dtutest.Options{Registration: reg(2), Heartbeat: []byte("HB"), Device: tcpAddr})
	require.Eventually(t, func() bool {
		v, ok := value(s, "gw", "count", nil)
		up, _ := value(s, "gw", device.MetricUp, nil)
		return ok && v == 4321 && up == 1
	}, 20*time.Second, 10*time.Millisecond)
	// The other devices kept being read.
	up, _ = value(s, "meter", device.MetricUp, nil)
	assert.Equal(t, 1.0, up)
}

// A modbus and a dlt645 receiver naming one dtu.endpoint share one listener: each DTU reaches its own
// receiver. The same DTU id in both, or other settings for the endpoint, fail the second start naming
// both receivers.
func TestDTUListenerSharedWithDLT645(t *testing.T) {
	bank := modbussim.NewBank(3)
	bank.SetRegisters(3, modbussim.Holding, 0, 777)
	simAddr := startRTUServer(t, bank)
	listen := freeAddr(t)
	dtuBlock := `
dtu:
  endpoint: ` + listen + `
  heartbeat: {text: "HB"}
`
	s := startReceiver(t, loadConfig(t, `
poll: {interval: 300ms, timeout: 300ms}`+dtuBlock+`
connections:
  - endpoint: dtu://inverter-1
    devices: [{id: inv, unit_id: 3, fields: [{name: x, address: 0}]}]
`))
	start := func(yml string) (func(), error) {
		f := dlt645receiver.NewFactory()
		cfg := devicetest.LoadConfig(t, f, yml)
		r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, new(consumertest.MetricsSink))
		require.NoError(t, err)
		err = r.Start(context.Background(), componenttest.NewNopHost())
		return func() { require.NoError(t, r.Shutdown(context.Background())) }, err
	}
	stop, err := start(dtuBlock + `
buses:
  - endpoint: dtu://meter-1
    meters: [{id: m1, address: "000000000001", identifiers: ["02010100"]}]
`)
	require.NoError(t, err)
	defer stop()

	// One port: the meter's DTU registers on it too (its id is the dlt645 receiver's, so it is kept).
	m := dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("meter-1"), Heartbeat: []byte("HB")})
	dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("inverter-1"), Heartbeat: []byte("HB"), Device: simAddr})
	require.Eventually(t, func() bool {
		v, ok := value(s, "inv", "x", nil)
		return ok && v == 777
	}, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, m.Beat())
	assert.False(t, m.IsClosed(), "the dlt645 receiver's DTU is known on the shared port")

	stop2, err := start(dtuBlock + `
buses:
  - endpoint: dtu://inverter-1
    meters: [{id: m2, address: "000000000002", identifiers: ["02010100"]}]
`)
	require.Error(t, err)
	assert.Regexp(t, `^dtu: DTU "inverter-1" on `+listen+` is bound to receiver modbus(/\S+)? and to receiver dlt645(/\S+)?; a DTU is one line, polled by one receiver$`, err.Error())
	stop2()

	stop3, err := start(`
dtu:
  endpoint: ` + listen + `
  heartbeat: {text: "BEAT"}
buses:
  - endpoint: dtu://meter-2
    meters: [{id: m3, address: "000000000003", identifiers: ["02010100"]}]
`)
	require.Error(t, err)
	assert.Regexp(t, `^dtu: receiver dlt645(/\S+)? listens on `+listen+` with other settings than receiver modbus(/\S+)?`, err.Error())
	stop3()
}

// The DTU keys are checked, each error naming its key.
func TestDTUConfigErrors(t *testing.T) {
	err := unmarshal(t, `
connections:
  - endpoint: dtu://a
    framing: mbap
    devices: [{id: a, fields: [{name: x, address: 0}]}]
  - endpoint: dtu://a
    devices: [{id: b, fields: [{name: x, address: 0}]}]
  - endpoint: tcp://127.0.0.1:502
    framing: rtu
    devices: [{id: c, fields: [{name: x, address: 0}]}]
  - endpoint: dtu://g
    framing: tcp
    devices: [{id: d, unit_id: 255, fields: [{name: x, address: 0}]}]
  - endpoint: dtu://h
    devices: [{id: e, unit_id: 255, fields: [{name: x, address: 0}]}]
`).Validate()
	require.Error(t, err)
	assert.Equal(t, `connections[0].framing: unknown "mbap" (want rtu, tcp or ascii: what the DTU passes on)`+"\n"+
		`connections[1].endpoint: DTU "a" is already the endpoint of connections[0] (one DTU is one serial line: list every device under one connection)`+"\n"+
		`connections[2].framing: applies only to dtu:// endpoints (the scheme sets the framing of the others)`+"\n"+
		`connections[4].devices[0] "e": unit_id: must be 1 to 247, got 255`+"\n"+
		`dtu.endpoint: required by the dtu:// connections: the host:port the DTUs dial (e.g. 127.0.0.1:9000)`, err.Error())

	err = unmarshal(t, `
dtu: {endpoint: "127.0.0.1:9000"}
connections:
  - endpoint: tcp://127.0.0.1:502
    devices: [{id: c, fields: [{name: x, address: 0}]}]
`).Validate()
	require.EqualError(t, err, "dtu: no connection has a dtu://<id> endpoint; bind connections to DTU ids, or remove dtu.endpoint")
}

// readmeExample returns the receivers of the first YAML example under the README's heading.
func readmeExample(t *testing.T, heading string) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), heading+"\n")
	require.True(t, ok)
	_, after, ok = strings.Cut(after, "```yaml\n")
	require.True(t, ok)
	src, _, _ := strings.Cut(after, "```")
	var doc struct {
		Receivers map[string]map[string]any `yaml:"receivers"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(src), &doc))
	return doc.Receivers
}

// The README's DTU example is a valid configuration of both receivers.
func TestDTUReadmeExample(t *testing.T) {
	rs := readmeExample(t, "### DTU dial-in")
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(rs["modbus"]).Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "dtu://862951034567892", cfg.Connections[2].Endpoint)
	assert.Equal(t, framingTCP, cfg.Connections[2].Framing)
	dcfg := dlt645receiver.NewFactory().CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(rs["dlt645"]).Unmarshal(dcfg))
	require.NoError(t, dcfg.(interface{ Validate() error }).Validate())
	assert.Equal(t, cfg.DTU, dcfg.(*dlt645receiver.Config).DTU, "one endpoint, one set of settings")
}
