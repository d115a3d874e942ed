package dlt645

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// SerialConfig is how a serial port is set up. DL/T 645 lines run at 1200
// to 9600 baud, 8 data bits, even parity, 1 stop bit.
type SerialConfig struct {
	Device   string
	BaudRate int
	DataBits int
	Parity   string // none, even, odd
	StopBits int
}

// DefaultSerialConfig is 2400 baud 8E1, the most common meter setting.
func DefaultSerialConfig(device string) SerialConfig {
	return SerialConfig{Device: device, BaudRate: 2400, DataBits: 8, Parity: "even", StopBits: 1}
}

// Validate names every setting that is out of range.
func (c SerialConfig) Validate(prefix string) error {
	var errs []error
	if c.Device == "" {
		errs = append(errs, fmt.Errorf("%sdevice: must be set (e.g. /dev/ttyUSB0)", prefix))
	}
	switch c.BaudRate {
	case 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200:
	default:
		errs = append(errs, fmt.Errorf("%sbaud_rate: %d is not supported (want 1200, 2400, 4800 or 9600; also 300, 600, 19200, 38400, 57600, 115200)", prefix, c.BaudRate))
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		errs = append(errs, fmt.Errorf("%sdata_bits: %d (want 5 to 8)", prefix, c.DataBits))
	}
	if _, err := parityLetter(c.Parity); err != nil {
		errs = append(errs, fmt.Errorf("%sparity: %w", prefix, err))
	}
	if c.StopBits != 1 && c.StopBits != 2 {
		errs = append(errs, fmt.Errorf("%sstop_bits: %d (want 1 or 2)", prefix, c.StopBits))
	}
	return errors.Join(errs...)
}

func parityLetter(p string) (string, error) {
	switch strings.ToLower(p) {
	case "even", "e":
		return "E", nil
	case "odd", "o":
		return "O", nil
	case "none", "n":
		return "N", nil
	}
	return "", fmt.Errorf("%q is not a parity (want even, odd or none)", p)
}

// CharTime is the time one character takes on the line: start bit, data
// bits, parity bit and stop bits at the baud rate.
func (c SerialConfig) CharTime() time.Duration {
	if c.BaudRate <= 0 {
		return 0
	}
	bits := 1 + c.DataBits + c.StopBits
	if p, _ := parityLetter(c.Parity); p != "N" {
		bits++
	}
	return time.Duration(bits) * time.Second / time.Duration(c.BaudRate)
}

// SerialLink is an open serial port with read deadlines. Close may be
// called while a Read is waiting; the Read then fails.
type SerialLink = transport.SerialPort

// OpenSerial opens and sets up a serial port (through transport.OpenSerial,
// the collector's one serial-port opener).
func OpenSerial(c SerialConfig) (*SerialLink, error) {
	if err := c.Validate(""); err != nil {
		return nil, err
	}
	parity, _ := transport.ParseParity(c.Parity) // checked by Validate
	return transport.OpenSerial(c.Device, transport.Line{BaudRate: c.BaudRate, DataBits: c.DataBits, Parity: parity, StopBits: c.StopBits}, transport.RS485{})
}
