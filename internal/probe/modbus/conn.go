// Package modbus is the Modbus part of otelcol-iiot-probe: scan a link for unit ids, check a device
// against a register profile, and find the register, type and byte order of a value seen on a display.
package modbus

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
)

// Line holds the serial settings of an rtu:// endpoint (and the line speed of an rtuovertcp:// one).
type Line struct {
	BaudRate int
	DataBits int
	Parity   string // none, even, odd
	StopBits int
}

// Table is a Modbus data table.
type Table string

const (
	Holding  Table = "holding"
	Input    Table = "input"
	Coil     Table = "coil"
	Discrete Table = "discrete"
)

// Conn is one client on an endpoint, owned by one goroutine. After any doubt about where the next
// reply starts (timeout, garbled or foreign reply) it closes the socket, so that a late answer cannot
// be read as the answer to the next request (the shared rule of the receivers, device.Resync).
type Conn struct {
	ep      probe.Endpoint
	line    Line
	timeout time.Duration
	client  *modbus.ModbusClient
	open    bool
	// Requests counts the requests sent, for the report.
	Requests int
}

// NewConn returns a closed connection; the first request opens it.
func NewConn(ep probe.Endpoint, line Line, timeout time.Duration) *Conn {
	return &Conn{ep: ep, line: line, timeout: timeout}
}

// Open opens the connection (a TCP dial, or the serial port).
func (c *Conn) Open() error {
	if c.open {
		return nil
	}
	cfg := &modbus.ClientConfiguration{
		URL:     c.ep.Scheme + "://" + c.ep.Address,
		Timeout: c.timeout,
		Logger:  log.New(io.Discard, "", 0), // the library logs attempts to stdout otherwise
	}
	if c.ep.Scheme == "rtu" || c.line.BaudRate > 0 {
		cfg.Speed = uint(c.line.BaudRate)
	}
	if c.ep.Scheme == "rtu" {
		cfg.DataBits = uint(c.line.DataBits)
		cfg.StopBits = uint(c.line.StopBits)
		switch c.line.Parity {
		case "even":
			cfg.Parity = modbus.PARITY_EVEN
		case "odd":
			cfg.Parity = modbus.PARITY_ODD
		default:
			cfg.Parity = modbus.PARITY_NONE
		}
	}
	client, err := modbus.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", c.ep.Raw, err)
	}
	if err := client.Open(); err != nil {
		return fmt.Errorf("cannot open %s: %w", c.ep.Raw, err)
	}
	c.client, c.open = client, true
	return nil
}

// Close closes the connection; the next request opens it again.
func (c *Conn) Close() {
	if c.open {
		_ = c.client.Close()
	}
	c.open = false
}

// resync brings the link back in step: close it, and on a serial line wait until a late answer (the
// longest frame, 256 bytes at the line's speed) is over.
func (c *Conn) resync() {
	c.Close()
	if c.ep.Scheme != "tcp" {
		waitOutLine(c.line.BaudRate)
	}
}

// waitOutLine waits the time of the longest RTU frame (256 bytes of 11 bits) at baud: a late answer
// still on the wire is over before the next request (0: unknown speed, no wait).
func waitOutLine(baud int) {
	if baud <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(256*11) * time.Second / time.Duration(baud))
	defer t.Stop()
	<-t.C
}

// ReadRegisters reads count registers of table (holding or input) at addr from unit, as raw bytes in
// wire order (big-endian registers). Bits tables return one byte (0 or 1) per bit.
func (c *Conn) Read(unit uint8, table Table, addr, count int) ([]byte, error) {
	if err := c.Open(); err != nil {
		return nil, &Outcome{Kind: KindConnection, Err: err}
	}
	if err := c.client.SetUnitId(unit); err != nil {
		return nil, &Outcome{Kind: KindConnection, Err: err}
	}
	c.Requests++
	var out []byte
	var err error
	switch table {
	case Holding:
		out, err = c.client.ReadRawBytes(uint16(addr), uint16(2*count), modbus.HOLDING_REGISTER)
	case Input:
		out, err = c.client.ReadRawBytes(uint16(addr), uint16(2*count), modbus.INPUT_REGISTER)
	case Coil, Discrete:
		var bits []bool
		if table == Coil {
			bits, err = c.client.ReadCoils(uint16(addr), uint16(count))
		} else {
			bits, err = c.client.ReadDiscreteInputs(uint16(addr), uint16(count))
		}
		for _, b := range bits {
			if b {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
		}
	default:
		return nil, fmt.Errorf("unknown table %q", table)
	}
	if err == nil {
		return out, nil
	}
	o := Classify(err)
	if o.Kind == KindTimeout || o.Kind == KindGarbled || o.Kind == KindConnection {
		c.resync()
	}
	return nil, o
}

// Kind is what became of a request.
type Kind string

const (
	KindOK         Kind = "ok"
	KindException  Kind = "exception"  // the device answered with an exception: it is there
	KindGateway    Kind = "gateway"    // a gateway answered for the device (exception 10 or 11): it is not there
	KindTimeout    Kind = "timeout"    // no answer
	KindGarbled    Kind = "garbled"    // an answer that is not a Modbus reply to the request
	KindConnection Kind = "connection" // the link failed
)

// Outcome is a failed request, classified.
type Outcome struct {
	Kind Kind
	Code int // exception code
	Err  error
}

func (o *Outcome) Error() string {
	if o.Kind == KindException || o.Kind == KindGateway {
		return fmt.Sprintf("exception %d (%s)", o.Code, o.Err)
	}
	return fmt.Sprintf("%s: %v", o.Kind, o.Err)
}

func (o *Outcome) Unwrap() error { return o.Err }

var exceptionCodes = map[error]int{
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

// Classify maps an error of the library to an outcome.
func Classify(err error) *Outcome {
	var o *Outcome
	if errors.As(err, &o) {
		return o
	}
	for e, code := range exceptionCodes {
		if errors.Is(err, e) {
			k := KindException
			if code == 10 || code == 11 {
				k = KindGateway
			}
			return &Outcome{Kind: k, Code: code, Err: err}
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, modbus.ErrRequestTimedOut), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Outcome{Kind: KindTimeout, Err: err}
	case errors.Is(err, modbus.ErrBadCRC), errors.Is(err, modbus.ErrShortFrame), errors.Is(err, modbus.ErrProtocolError),
		errors.Is(err, modbus.ErrBadUnitId), errors.Is(err, modbus.ErrBadTransactionId), errors.Is(err, modbus.ErrUnknownProtocolId),
		errors.Is(err, modbus.ErrUnexpectedParameters):
		return &Outcome{Kind: KindGarbled, Err: err}
	case strings.HasPrefix(err.Error(), "unknown exception code"):
		// An exception code the library does not name is still an answer of the device.
		return &Outcome{Kind: KindException, Code: -1, Err: err}
	}
	return &Outcome{Kind: KindConnection, Err: err}
}
