package modbussim

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/simonvetter/modbus"

	mb "github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
)

var exceptionCode = map[error]byte{
	modbus.ErrIllegalFunction:         1,
	modbus.ErrIllegalDataAddress:      2,
	modbus.ErrIllegalDataValue:        3,
	modbus.ErrServerDeviceFailure:     4,
	modbus.ErrAcknowledge:             5,
	modbus.ErrServerDeviceBusy:        6,
	modbus.ErrMemoryParityError:       8,
	modbus.ErrGWPathUnavailable:       10,
	modbus.ErrGWTargetFailedToRespond: 11,
}

// ServeRTU answers RTU-framed requests read from rw until it fails or closes: reads of the four
// tables, and writes of single and multiple registers and coils. Requests to units the bank does not
// hold, or silent units, get no answer, as on a real bus. A frame with a bad CRC is dropped.
func (b *Bank) ServeRTU(rw io.ReadWriter) error {
	r := bufio.NewReader(rw)
	buf := make([]byte, 0, 260)
	for {
		buf = buf[:8]
		if _, err := io.ReadFull(r, buf[:8]); err != nil {
			return err
		}
		fc := buf[1]
		if fc == 15 || fc == 16 {
			// unit fc addr(2) qty(2) bytecount data… crc(2): 7 header bytes, 6 of them read
			n := int(buf[6])
			buf = buf[:9+n]
			if _, err := io.ReadFull(r, buf[8:]); err != nil {
				return err
			}
		}
		frame := buf
		if mb.CRC16(frame[:len(frame)-2]) != uint16(frame[len(frame)-2])|uint16(frame[len(frame)-1])<<8 {
			// resynchronise: drop what is buffered
			_, _ = r.Discard(r.Buffered())
			continue
		}
		resp := b.handleRTU(frame[:len(frame)-2])
		if resp == nil {
			continue
		}
		crc := mb.CRC16(resp)
		resp = append(resp, byte(crc), byte(crc>>8))
		if _, err := rw.Write(resp); err != nil {
			return err
		}
	}
}

func (b *Bank) handleRTU(req []byte) []byte {
	unit, fc := req[0], req[1]
	b.mu.Lock()
	_, known := b.units[unit]
	silent := b.silent[unit]
	replyUnit := unit
	if b.wrongUnit[unit] > 0 {
		b.wrongUnit[unit]--
		replyUnit = unit + 1
	}
	b.mu.Unlock()
	if !known || silent || unit == 0 {
		return nil
	}
	addr := int(req[2])<<8 | int(req[3])
	qty := int(req[4])<<8 | int(req[5])
	out := []byte{replyUnit, fc}
	exc := func(err error) []byte {
		code, ok := exceptionCode[err]
		if !ok {
			code = 4
		}
		return []byte{replyUnit, fc | 0x80, code}
	}
	switch fc {
	case 3, 4:
		if qty < 1 || qty > 125 {
			return exc(modbus.ErrIllegalDataValue)
		}
		t := Holding
		if fc == 4 {
			t = Input
		}
		regs, _, err := b.read(unit, t, addr, qty)
		if err != nil {
			return exc(err)
		}
		out = append(out, byte(2*qty))
		for _, v := range regs {
			out = append(out, byte(v>>8), byte(v))
		}
	case 1, 2:
		if qty < 1 || qty > 2000 {
			return exc(modbus.ErrIllegalDataValue)
		}
		t := Coils
		if fc == 2 {
			t = Discrete
		}
		_, bits, err := b.read(unit, t, addr, qty)
		if err != nil {
			return exc(err)
		}
		packed := make([]byte, (qty+7)/8)
		for i, v := range bits {
			if v {
				packed[i/8] |= 1 << (i % 8)
			}
		}
		out = append(out, byte(len(packed)))
		out = append(out, packed...)
	case 6:
		if err := b.write(unit, Holding, addr, []uint16{uint16(qty)}, nil); err != nil {
			return exc(err)
		}
		out = append(out, req[2:6]...)
	case 5:
		if err := b.write(unit, Coils, addr, nil, []bool{qty == 0xff00}); err != nil {
			return exc(err)
		}
		out = append(out, req[2:6]...)
	case 16:
		regs := make([]uint16, qty)
		for i := range regs {
			regs[i] = uint16(req[7+2*i])<<8 | uint16(req[8+2*i])
		}
		if err := b.write(unit, Holding, addr, regs, nil); err != nil {
			return exc(err)
		}
		out = append(out, req[2:6]...)
	case 15:
		bits := make([]bool, qty)
		for i := range bits {
			bits[i] = req[7+i/8]&(1<<(i%8)) != 0
		}
		if err := b.write(unit, Coils, addr, nil, bits); err != nil {
			return exc(err)
		}
		out = append(out, req[2:6]...)
	default:
		return exc(modbus.ErrIllegalFunction)
	}
	return out
}

// RTUOverTCPServer serves the bank with RTU framing on TCP connections (a serial-to-Ethernet gateway
// in transparent mode).
type RTUOverTCPServer struct {
	ln     net.Listener
	bank   *Bank
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// ListenRTUOverTCP listens on addr (e.g. 127.0.0.1:0) and serves the bank.
func ListenRTUOverTCP(addr string, bank *Bank) (*RTUOverTCPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &RTUOverTCPServer{ln: ln, bank: bank, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the listening address.
func (s *RTUOverTCPServer) Addr() string { return s.ln.Addr().String() }

func (s *RTUOverTCPServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.bank.ServeRTU(c)
			_ = c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the server and its connections.
func (s *RTUOverTCPServer) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// ServeRTUContext serves rw until ctx ends (it closes rw through closeFn then).
func (b *Bank) ServeRTUContext(ctx context.Context, rw io.ReadWriter, closeFn func()) error {
	done := make(chan error, 1)
	go func() { done <- b.ServeRTU(rw) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		closeFn()
		<-done //nolint:errcheck // the stream was closed under it: its error says only that
		return ctx.Err()
	}
}
