package transport

import (
	"fmt"
	"time"
)

// SerialPort is an open serial port with read deadlines. Close may be called while a Read is
// waiting; the Read then fails.
type SerialPort struct {
	port serialPort
}

type serialPort interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// OpenSerial opens the serial device with line's settings in raw mode and, when rs485 is enabled,
// switches the port's driver to RS-485 (TIOCSRS485). This is the one place the collector opens a
// serial port: the port owner (internal/serialbus), the simulators and the probes call it.
func OpenSerial(device string, line Line, rs485 RS485) (*SerialPort, error) {
	p, err := openSerial(device, line, rs485)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", device, err)
	}
	return &SerialPort{port: p}, nil
}

// SetReadDeadline sets when Read gives up with os.ErrDeadlineExceeded (zero: never).
func (p *SerialPort) SetReadDeadline(t time.Time) error { return p.port.SetReadDeadline(t) }

// Read returns the bytes that have arrived, waiting for at least one.
func (p *SerialPort) Read(b []byte) (int, error) { return p.port.Read(b) }

// Write sends b.
func (p *SerialPort) Write(b []byte) (int, error) { return p.port.Write(b) }

// Close closes the port; safe to call twice.
func (p *SerialPort) Close() error { return p.port.Close() }
