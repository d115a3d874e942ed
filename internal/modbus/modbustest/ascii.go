// Package modbustest holds test helpers of the Modbus client: a Modbus ASCII device made of the RTU
// responder of internal/sim (modbussim.Bank.ServeRTU) behind an ASCII-to-RTU translating stream.
package modbustest

import (
	"errors"
	"io"

	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
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
