package modbussim

import (
	"context"
	"io"
	"log"
	"math"
	"net"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// readFloat reads the float32 (ABCD) at addr of a unit's input or holding registers.
func readFloat(t *testing.T, url string, unit uint8, addr uint16, typ modbus.RegType) float32 {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: url, Timeout: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, c.Open())
	defer c.Close()
	require.NoError(t, c.SetUnitId(unit))
	v, err := c.ReadFloat32(addr, typ)
	require.NoError(t, err)
	return v
}

func TestServeDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ tcp, rtu string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- ServeDemo(ctx, DemoOptions{
			TCP: freeAddr(t), RTUOverTCP: "127.0.0.1:0",
			SDM630Unit: 1, InverterUnit: 2, DTSU666Unit: 3,
			Update: 10 * time.Millisecond, DayLength: time.Minute, Serial: "X1",
		}, log.New(io.Discard, "", 0), func(tcp, rtu string) { ready <- addrs{tcp, rtu} })
	}()
	a := <-ready

	// The SDM630's phase A voltage (input 0) and the DTSU666's (holding 0x2006, in 0.1 V) on both transports.
	v := readFloat(t, "tcp://"+a.tcp, 1, 0, modbus.INPUT_REGISTER)
	require.InDelta(t, 230, v, 3)
	v = readFloat(t, "rtuovertcp://"+a.rtu, 3, 0x2006, modbus.HOLDING_REGISTER)
	require.InDelta(t, 2300, v, 30)
	// Energy counts up as the demo ticks.
	first := readFloat(t, "tcp://"+a.tcp, 1, 72, modbus.INPUT_REGISTER)
	require.InDelta(t, 12345.6, first, 1)
	require.Eventually(t, func() bool {
		return readFloat(t, "tcp://"+a.tcp, 1, 72, modbus.INPUT_REGISTER) > first
	}, 10*time.Second, 20*time.Millisecond)

	cancel()
	require.NoError(t, <-done)
}

func TestDemoUnits(t *testing.T) {
	_, err := NewDemo(DemoOptions{SDM630Unit: 248})
	require.ErrorContains(t, err, "unit ids must be 1 to 247")

	// A unit id of 0 leaves the device out: its registers are not served.
	d, err := NewDemo(DemoOptions{SDM630Unit: 1})
	require.NoError(t, err)
	regs := d.Bank.Registers(1, Input, 0, 2)
	require.InDelta(t, 230, math.Float32frombits(uint32(regs[0])<<16|uint32(regs[1])), 3)
	_, _, err = d.Bank.read(2, Holding, 40000, 2)
	require.Error(t, err)
}
