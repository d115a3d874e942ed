package modbus_test

import (
	"context"
	"io"
	"log"
	"net"
	"testing"
	"time"

	lib "github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// BenchmarkReadRTUOverTCP compares one read of 100 holding registers through a loopback RTU-over-TCP
// server: our client and the library's (which the receiver used for rtuovertcp:// before). ASCII is
// our client over an ASCII server.
func BenchmarkReadRTUOverTCP(b *testing.B) {
	bank := modbussim.NewBank(1)
	for r := 0; r < 100; r++ {
		bank.SetRegisters(1, modbussim.Holding, r, uint16(r))
	}
	srv, err := modbussim.ListenRTUOverTCP("127.0.0.1:0", bank)
	require.NoError(b, err)
	b.Cleanup(func() { _ = srv.Close() })

	b.Run("ours", func(b *testing.B) {
		conn, err := net.Dial("tcp", srv.Addr())
		require.NoError(b, err)
		defer conn.Close()
		c := modbus.NewClient(conn, modbus.RTU, clock.Real{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Read(context.Background(), 1, modbus.ReadHoldingRegisters, 0, 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("simonvetter", func(b *testing.B) {
		c, err := lib.NewClient(&lib.ClientConfiguration{URL: "rtuovertcp://" + srv.Addr(), Timeout: time.Second, Logger: log.New(io.Discard, "", 0)})
		require.NoError(b, err)
		require.NoError(b, c.Open())
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.ReadRawBytes(0, 200, lib.HOLDING_REGISTER); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours_ascii", func(b *testing.B) {
		asrv, err := modbustest.ListenASCIIOverTCP("127.0.0.1:0", bank)
		require.NoError(b, err)
		defer asrv.Close()
		conn, err := net.Dial("tcp", asrv.Addr())
		require.NoError(b, err)
		defer conn.Close()
		c := modbus.NewClient(conn, modbus.ASCII, clock.Real{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Read(context.Background(), 1, modbus.ReadHoldingRegisters, 0, 100); err != nil {
				b.Fatal(err)
			}
		}
	})
}
