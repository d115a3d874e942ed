package modbus_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	lib "github.com/simonvetter/modbus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve answers on a loopback socket with bank, in RTU or ASCII framing; it returns the client side.
func serve(t *testing.T, bank *modbussim.Bank, ascii bool) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var srv net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srv = c
		if ascii {
			_ = bank.ServeRTU(&modbustest.ASCIILine{Line: c})
		} else {
			_ = bank.ServeRTU(c)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.Close()
		_ = ln.Close()
		wg.Wait()
		if srv != nil {
			_ = srv.Close()
		}
	})
	return c
}

func TestClientReads(t *testing.T) {
	for _, fr := range []modbus.Framing{modbus.RTU, modbus.ASCII} {
		t.Run(fr.Name(), func(t *testing.T) {
			bank := modbussim.NewBank(1, 2)
			bank.SetRegisters(2, modbussim.Holding, 10, 0x1234, 0xABCD)
			bank.SetRegisters(2, modbussim.Input, 0, 7)
			bank.SetBits(2, modbussim.Coils, 3, true, false, true)
			bank.SetBits(2, modbussim.Discrete, 0, false, true)
			c := modbus.NewClient(serve(t, bank, fr == modbus.ASCII), fr, clock.Real{})
			c.Timeout = 2 * time.Second
			ctx := context.Background()

			b, err := c.Read(ctx, 2, modbus.ReadHoldingRegisters, 10, 2)
			require.NoError(t, err)
			require.Equal(t, []byte{0x12, 0x34, 0xAB, 0xCD}, b)
			b, err = c.Read(ctx, 2, modbus.ReadInputRegisters, 0, 1)
			require.NoError(t, err)
			require.Equal(t, []byte{0, 7}, b)
			b, err = c.Read(ctx, 2, modbus.ReadCoils, 3, 3)
			require.NoError(t, err)
			require.Equal(t, []bool{true, false, true}, modbus.Bits(b, 3))
			b, err = c.Read(ctx, 2, modbus.ReadDiscreteInputs, 0, 2)
			require.NoError(t, err)
			require.Equal(t, []bool{false, true}, modbus.Bits(b, 2))

			// An exception keeps the stream in step.
			bank.Fail(2, modbussim.Holding, 100, 100, errors.New("no such register"))
			_, err = c.Read(ctx, 2, modbus.ReadHoldingRegisters, 100, 1)
			var ex *modbus.Exception
			require.ErrorAs(t, err, &ex)
			require.Equal(t, byte(4), ex.Code)
			require.False(t, c.InDoubt())

			// A silent unit times out and leaves the stream in doubt; the next read settles first.
			c.Timeout = 100 * time.Millisecond
			_, err = c.Read(ctx, 9, modbus.ReadHoldingRegisters, 0, 1)
			require.ErrorIs(t, err, modbus.ErrTimeout)
			require.True(t, c.InDoubt())
			c.Timeout = 2 * time.Second

			// A reply from another unit is a protocol error.
			bank.WrongUnit(1, 1)
			_, err = c.Read(ctx, 1, modbus.ReadHoldingRegisters, 0, 1)
			require.ErrorIs(t, err, modbus.ErrProtocol)

			b, err = c.Read(ctx, 2, modbus.ReadHoldingRegisters, 11, 1)
			require.NoError(t, err)
			require.Equal(t, []byte{0xAB, 0xCD}, b)
			require.False(t, c.InDoubt())
		})
	}
}

// A late reply (the device answered after the timeout) is drained before the next request, never
// taken for its answer.
func TestClientDrainsLateReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer a.Close()
	b, err := ln.Accept()
	require.NoError(t, err)
	defer b.Close()
	c := modbus.NewClient(a, modbus.ASCII, clock.Real{})
	c.Timeout = 50 * time.Millisecond
	timedOut := make(chan struct{})
	done, wrote := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		// First request: answered (0x0001) only once the client has given up on it.
		if _, err := b.Read(buf); err != nil {
			return
		}
		<-timedOut
		_, _ = b.Write(modbus.ASCII.Append(nil, modbus.Frame{Unit: 1, PDU: []byte{3, 2, 0, 1}}))
		close(wrote)
		// Second request: the right answer 0x0002.
		if _, err := b.Read(buf); err != nil {
			return
		}
		_, _ = b.Write(modbus.ASCII.Append(nil, modbus.Frame{Unit: 1, PDU: []byte{3, 2, 0, 2}}))
	}()
	_, err = c.Read(context.Background(), 1, modbus.ReadHoldingRegisters, 0, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	close(timedOut)
	<-wrote // on loopback the late reply is in the client's socket buffer once written
	got, err := c.Read(context.Background(), 1, modbus.ReadHoldingRegisters, 0, 1)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 2}, got)
	<-done
}

// MBAP framing against the library's Modbus/TCP server (the framing a DTU that converts to Modbus/TCP
// speaks): a value, a read too long to send, an exception (the stream stays in step).
func TestClientMBAP(t *testing.T) {
	bank := modbussim.NewBank(3)
	bank.SetRegisters(3, modbussim.Input, 5, 0xBEEF)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	srv, err := lib.NewServer(&lib.ServerConfiguration{URL: "tcp://" + addr, MaxClients: 2, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer func() { _ = srv.Stop() }()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	c := modbus.NewClient(conn, modbus.MBAP, clock.Real{})
	got, err := c.Read(context.Background(), 3, modbus.ReadInputRegisters, 5, 1)
	require.NoError(t, err)
	require.Equal(t, []byte{0xBE, 0xEF}, got)
	_, err = c.Read(context.Background(), 3, modbus.ReadInputRegisters, 0, 126)
	require.Error(t, err, "more than 125 registers is refused before it is sent")
	bank.Fail(3, modbussim.Input, 9, 9, errors.New("gone"))
	_, err = c.Read(context.Background(), 3, modbus.ReadInputRegisters, 9, 1)
	var ex *modbus.Exception
	require.ErrorAs(t, err, &ex)
	require.False(t, c.InDoubt())
}
