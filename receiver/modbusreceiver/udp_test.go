package modbusreceiver

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	mb "github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// startUDPServer answers Modbus/UDP (MBAP in datagrams) reads of holding and input registers from
// bank on a free loopback port; answers counts its answers.
func startUDPServer(t *testing.T, bank *modbussim.Bank) (addr string, answers func() int) {
	t.Helper()
	return startUDPServerAt(t, "127.0.0.1:0", bank)
}

// startUDPServerAt is startUDPServer on addr.
func startUDPServerAt(t *testing.T, addr string, bank *modbussim.Bank) (string, func() int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	require.NoError(t, err)
	h := bank.Handler()
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			l, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f, _, err := mb.MBAP.Decode(buf[:l])
			if err != nil || len(f.PDU) != 5 {
				continue
			}
			fc := f.PDU[0]
			start, qty := binary.BigEndian.Uint16(f.PDU[1:]), binary.BigEndian.Uint16(f.PDU[3:])
			var regs []uint16
			switch fc {
			case 3:
				regs, err = h.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: f.Unit, Addr: start, Quantity: qty})
			case 4:
				regs, err = h.HandleInputRegisters(&modbus.InputRegistersRequest{UnitId: f.Unit, Addr: start, Quantity: qty})
			default:
				continue
			}
			if err != nil {
				continue // a unit the bank does not hold: silent, as a datagram lost
			}
			pdu := []byte{fc, byte(2 * len(regs))}
			for _, r := range regs {
				pdu = binary.BigEndian.AppendUint16(pdu, r)
			}
			_, _ = pc.WriteTo(mb.MBAP.Append(nil, mb.Frame{TxID: f.TxID, Unit: f.Unit, PDU: pdu}), from)
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return pc.LocalAddr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// Modbus/UDP: exact values by both register functions; a unit that does not answer times out, its
// device down with error.type timeout, while the other device of the endpoint is read.
func TestModbusUDP(t *testing.T) {
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 10, f32regs(-7.25)...)
	bank.SetRegisters(1, modbussim.Input, 3, 0xFFFE)
	addr, answers := startUDPServer(t, bank)
	cfg := loadConfig(t, `
poll: {interval: 200ms, timeout: 100ms, retries: 0}
connections:
  - endpoint: udp://`+addr+`
    devices:
      - id: d
        unit_id: 1
        fields:
          - {name: f, table: holding, address: 10, type: float32}
          - {name: t, table: input, address: 3, type: int16}
      - {id: gone, unit_id: 9, fields: [{name: x, address: 0}]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		_, ok1 := latest(pts, "d", "f", nil)
		_, ok2 := latest(pts, "d", "t", nil)
		e, _ := latest(pts, "gone", device.MetricPollErrors, map[string]string{device.AttrErrorType: string(device.ErrTimeout)})
		return ok1 && ok2 && e.value >= 1
	}, 10*time.Second, 10*time.Millisecond)
	pts := points(s.metrics.AllMetrics())
	f, _ := latest(pts, "d", "f", nil)
	tv, _ := latest(pts, "d", "t", nil)
	assert.Equal(t, -7.25, f.value)
	assert.Equal(t, -2.0, tv.value)
	up, _ := latest(pts, "gone", device.MetricUp, nil)
	assert.Zero(t, up.value)
	assert.Positive(t, answers())
}

// The README's UDP example is valid.
func TestModbusUDPReadmeExample(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(readmeExample(t, "### Modbus/UDP")["modbus/udp"]).Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
}
