package modbustest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	mb "github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// BusSim is one RS-485 bus with Modbus RTU devices and DL/T 645 meters on it. It answers every
// request, and counts a collision whenever a request arrives while another is still being answered
// (bytes behind a complete request before its reply went out), or bytes that frame in neither
// protocol (two senders at once garble each other).
type BusSim struct {
	// Bank answers the Modbus units, Meters the DL/T 645 meters.
	Bank   *modbussim.Bank
	Meters *dlt645sim.Server
	// Think is how long a device takes to answer, as a real one does (a few ms): requests that come
	// meanwhile collide.
	Think time.Duration

	// ModbusTx and DLT645Tx count the requests answered.
	ModbusTx, DLT645Tx atomic.Int64
	mu                 sync.Mutex
	collisions         []string
}

func (s *BusSim) collide(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collisions = append(s.collisions, fmt.Sprintf(format, args...))
}

// Collisions lists every overlap seen.
func (s *BusSim) Collisions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.collisions...)
}

// Serve answers on line until it fails. The Modbus devices are the bank's RTU responder behind a pipe.
func (s *BusSim) Serve(line io.ReadWriter) error {
	dev, sim := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Bank.ServeRTU(sim) }()
	defer func() { _ = dev.Close(); _ = sim.Close(); <-done }()
	var in []byte
	buf := make([]byte, 512)
	reply := make([]byte, 512)
	for {
		n, err := line.Read(buf)
		if err != nil {
			return err
		}
		in = append(in, buf[:n]...)
		for {
			for len(in) > 0 && in[0] == dlt645.WakeUp {
				in = in[1:]
			}
			if len(in) == 0 {
				break
			}
			if in[0] == 0x68 {
				f, used, err := dlt645.Decode(in)
				if errors.Is(err, dlt645.ErrShort) {
					break
				}
				if err != nil {
					s.collide("bytes framing in neither protocol: % X (%v)", in, err)
					in = in[:0]
					break
				}
				in = in[used:]
				if len(in) > 0 {
					s.collide("a request came while a DL/T 645 request was being answered: % X", in)
				}
				s.DLT645Tx.Add(1)
				if extra, _ := readFor(line, buf, s.Think); len(extra) > 0 {
					s.collide("a request came while a DL/T 645 request was being answered: % X", extra)
				}
				for _, r := range s.Meters.Handle(f, time.Now()) {
					b, _ := r.Encode(4)
					if _, err := line.Write(b); err != nil {
						return err
					}
				}
				continue
			}
			if len(in) < 8 {
				break
			}
			req := in[:8]
			if mb.CRC16(req[:6]) != uint16(req[6])|uint16(req[7])<<8 {
				s.collide("bytes framing in neither protocol: % X", in)
				in = in[:0]
				break
			}
			in = in[8:]
			if len(in) > 0 {
				s.collide("a request came while a Modbus request was being answered: % X", in)
			}
			s.ModbusTx.Add(1)
			if extra, _ := readFor(line, buf, s.Think); len(extra) > 0 {
				s.collide("a request came while a Modbus request was being answered: % X", extra)
			}
			if _, err := dev.Write(req); err != nil {
				return err
			}
			var got []byte
			for {
				m, err := dev.Read(reply)
				if err != nil {
					return err
				}
				got = append(got, reply[:m]...)
				if _, used, _ := mb.RTU.Decode(got); used > 0 {
					break
				}
			}
			if _, err := line.Write(got); err != nil {
				return err
			}
		}
	}
}

// readFor is the device thinking for d before it answers: it returns what arrives on line meanwhile
// (nothing, when the bus is used one transaction at a time).
func readFor(line io.ReadWriter, buf []byte, d time.Duration) ([]byte, error) {
	dl, ok := line.(interface{ SetReadDeadline(time.Time) error })
	if !ok {
		return nil, nil
	}
	if err := dl.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	defer func() { _ = dl.SetReadDeadline(time.Time{}) }()
	n, err := line.Read(buf)
	return append([]byte(nil), buf[:n]...), err
}
