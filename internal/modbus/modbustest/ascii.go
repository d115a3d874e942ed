// Package modbustest holds test helpers of the Modbus client: a Modbus ASCII device made of the RTU
// responder of internal/sim (modbussim.Bank.ServeRTU) behind an ASCII-to-RTU translating stream.
package modbustest

import (
	"errors"
	"io"
	"net"
	"sync"

	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// ASCIILine turns a line carrying Modbus ASCII into the byte stream of an RTU responder: Read returns
// each ASCII request read from the line as one RTU frame, Write sends an RTU reply as ASCII. Bytes
// that do not frame (noise, a bad LRC) are dropped, as a device drops them.
type ASCIILine struct {
	Line io.ReadWriter
	in   []byte
	rtu  []byte
	buf  []byte
}

// Read returns the next request as an RTU frame.
func (a *ASCIILine) Read(p []byte) (int, error) {
	for len(a.rtu) == 0 {
		f, n, err := modbus.ASCII.Decode(a.in)
		if n > 0 {
			a.in = a.in[:copy(a.in, a.in[n:])]
			if err == nil {
				a.rtu = modbus.RTU.Append(a.rtu[:0], f)
			}
			continue
		}
		if err != nil {
			a.in = a.in[:0]
			continue
		}
		if a.buf == nil {
			a.buf = make([]byte, 600)
		}
		m, rerr := a.Line.Read(a.buf)
		a.in = append(a.in, a.buf[:m]...)
		if rerr != nil && m == 0 {
			return 0, rerr
		}
	}
	n := copy(p, a.rtu)
	a.rtu = a.rtu[:copy(a.rtu, a.rtu[n:])]
	return n, nil
}

// Write sends one RTU reply frame as an ASCII frame.
func (a *ASCIILine) Write(p []byte) (int, error) {
	if len(p) < 4 {
		return 0, errors.New("modbustest: RTU reply shorter than 4 bytes")
	}
	out := modbus.ASCII.Append(nil, modbus.Frame{Unit: p[0], PDU: p[1 : len(p)-2]})
	if _, err := a.Line.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ASCIIServer serves a bank with ASCII framing on TCP connections (a serial server in transparent
// mode in front of ASCII devices).
type ASCIIServer struct {
	ln    net.Listener
	bank  *modbussim.Bank
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// ListenASCIIOverTCP listens on addr (127.0.0.1:0) and serves bank.
func ListenASCIIOverTCP(addr string, bank *modbussim.Bank) (*ASCIIServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &ASCIIServer{ln: ln, bank: bank, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address.
func (s *ASCIIServer) Addr() string { return s.ln.Addr().String() }

func (s *ASCIIServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.bank.ServeRTU(&ASCIILine{Line: c})
			_ = c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the server and its connections.
func (s *ASCIIServer) Close() error {
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// ASCIIFrames cuts ASCII frames for the fault proxy (faultproxy.Framer).
func ASCIIFrames(b []byte) int {
	_, n, err := modbus.ASCII.Decode(b)
	if err != nil {
		return -1
	}
	return n
}
