package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	mb "github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
)

// rawLink asks one unit for holding register 0 over a TCP socket with its own framing (Modbus/TCP or
// RTU over TCP). The scan does not use the library there: the library skips what it does not
// understand and waits, so a reply in the wrong framing (an RTU gateway scanned as tcp://, the most
// common commissioning mistake) looks like silence. Reading the bytes ourselves tells silence from a
// garbled answer, and says which framing the answer was in.
type rawLink struct {
	scheme  string // tcp or rtuovertcp
	address string
	timeout time.Duration
	conn    net.Conn
	tid     uint16
}

func (l *rawLink) open() error {
	if l.conn != nil {
		return nil
	}
	c, err := net.DialTimeout("tcp", l.address, max(l.timeout, time.Second))
	if err != nil {
		return fmt.Errorf("cannot open %s://%s: %w", l.scheme, l.address, err)
	}
	l.conn = c
	return nil
}

func (l *rawLink) close() {
	if l.conn != nil {
		_ = l.conn.Close()
	}
	l.conn = nil
}

// readHolding0 sends "read holding register 0" to unit and returns the register, or an *Outcome.
// After a timeout or a garbled reply the socket is closed (a late reply must not answer the next unit).
func (l *rawLink) readHolding0(unit uint8) (uint16, error) {
	if err := l.open(); err != nil {
		return 0, &Outcome{Kind: KindConnection, Err: err}
	}
	pdu := []byte{0x03, 0, 0, 0, 1}
	var req []byte
	if l.scheme == "tcp" {
		l.tid++
		req = binary.BigEndian.AppendUint16(nil, l.tid)
		req = append(req, 0, 0, 0, byte(len(pdu)+1), unit)
		req = append(req, pdu...)
	} else {
		req = append([]byte{unit}, pdu...)
		req = binary.LittleEndian.AppendUint16(req, mb.CRC16(req))
	}
	_ = l.conn.SetDeadline(time.Now().Add(l.timeout))
	if _, err := l.conn.Write(req); err != nil {
		l.close()
		return 0, &Outcome{Kind: KindConnection, Err: err}
	}
	var buf []byte
	chunk := make([]byte, 512)
	for {
		n, err := l.conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if v, o, done := l.parse(unit, buf); done {
			if o != nil {
				if o.Kind == KindGarbled {
					l.close()
				}
				return 0, o
			}
			return v, nil
		}
		if err != nil {
			l.close()
			switch {
			case len(buf) > 0:
				return 0, &Outcome{Kind: KindGarbled, Err: fmt.Errorf("incomplete reply % x%s", head(buf), hint(l.scheme, buf))}
			case errors.Is(err, os.ErrDeadlineExceeded):
				return 0, &Outcome{Kind: KindTimeout, Err: fmt.Errorf("no answer within %s", l.timeout)}
			}
			return 0, &Outcome{Kind: KindConnection, Err: err}
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// hint says which framing garbled bytes look like.
func hint(scheme string, b []byte) string {
	if scheme == "tcp" && rtuFrame(b) > 0 {
		return ": an RTU frame; the endpoint is probably rtuovertcp://"
	}
	if scheme == "rtuovertcp" && len(b) >= 8 && b[2] == 0 && b[3] == 0 {
		return ": a Modbus/TCP (MBAP) frame; the endpoint is probably tcp://"
	}
	return ""
}

// rtuFrame returns the length of a complete RTU reply with a good CRC at the start of b, or 0.
func rtuFrame(b []byte) int {
	if len(b) < 5 {
		return 0
	}
	n := 5
	if b[1]&0x80 == 0 {
		n = 5 + int(b[2])
	}
	if len(b) < n || mb.CRC16(b[:n-2]) != binary.LittleEndian.Uint16(b[n-2:n]) {
		return 0
	}
	return n
}

// parse decides whether buf holds the whole reply: done false means wait for more bytes.
func (l *rawLink) parse(unit uint8, buf []byte) (uint16, *Outcome, bool) {
	garbled := func(why string) (uint16, *Outcome, bool) {
		return 0, &Outcome{Kind: KindGarbled, Err: fmt.Errorf("%s: % x%s", why, head(buf), hint(l.scheme, buf))}, true
	}
	var pdu []byte
	if l.scheme == "tcp" {
		if len(buf) < 7 {
			return 0, nil, false
		}
		length := int(binary.BigEndian.Uint16(buf[4:6]))
		switch {
		case binary.BigEndian.Uint16(buf[2:4]) != 0 || length < 2 || length > 254:
			return garbled("not a Modbus/TCP reply")
		case len(buf) < 6+length:
			return 0, nil, false
		case binary.BigEndian.Uint16(buf[0:2]) != l.tid:
			return garbled("reply to another transaction")
		case buf[6] != unit:
			return garbled(fmt.Sprintf("reply from unit %d", buf[6]))
		}
		pdu = buf[7 : 6+length]
	} else {
		if len(buf) >= 2 && buf[1]&0x7f != 0x03 {
			return garbled("not a reply to read holding registers")
		}
		if len(buf) >= 2 && buf[1] == 0x03 && len(buf) >= 3 && len(buf) < 5+int(buf[2]) {
			return 0, nil, false
		}
		n := rtuFrame(buf)
		if n == 0 {
			if len(buf) < 5 {
				return 0, nil, false
			}
			return garbled("bad CRC or short frame")
		}
		if buf[0] != unit {
			return garbled(fmt.Sprintf("reply from unit %d", buf[0]))
		}
		pdu = buf[1 : n-2]
	}
	switch {
	case len(pdu) == 2 && pdu[0] == 0x83:
		code := int(pdu[1])
		k := KindException
		if code == 10 || code == 11 {
			k = KindGateway
		}
		return 0, &Outcome{Kind: k, Code: code, Err: fmt.Errorf("%s", exceptionText(code))}, true
	case len(pdu) == 4 && pdu[0] == 0x03 && pdu[1] == 2:
		return binary.BigEndian.Uint16(pdu[2:4]), nil, true
	}
	return garbled("unexpected reply")
}

func exceptionText(code int) string {
	for e, c := range exceptionCodes {
		if c == code {
			return e.Error()
		}
	}
	return fmt.Sprintf("exception code %d", code)
}
