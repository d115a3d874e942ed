package transport

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LineConfig is the serial-line keys of an endpoint, embedded with `mapstructure:",squash"`. A key
// left out (0 or "") takes the receiver's default (see Line.Over).
type LineConfig struct {
	// BaudRate is the line speed in bit/s.
	BaudRate int `mapstructure:"baud_rate"`
	// DataBits is 5, 6, 7 or 8.
	DataBits int `mapstructure:"data_bits"`
	// Parity is none, even or odd (or n, e, o).
	Parity string `mapstructure:"parity"`
	// StopBits is 1 or 2.
	StopBits int `mapstructure:"stop_bits"`
	// RS485 is the port's RS-485 driver control (Linux serial ports only; see RS485Config).
	RS485 *RS485Config `mapstructure:"rs485"`
}

// Framing reports whether any key other than the baud rate is set (on a TCP endpoint these belong to
// the serial server or gateway, not to the receiver).
func (c LineConfig) Framing() bool { return c.DataBits != 0 || c.Parity != "" || c.StopBits != 0 }

// Parity of a serial line; the values are those of the Modbus library's PARITY_* constants.
type Parity uint

const (
	ParityNone Parity = 0
	ParityEven Parity = 1
	ParityOdd  Parity = 2
)

// String names the parity as in configuration.
func (p Parity) String() string {
	switch p {
	case ParityEven:
		return "even"
	case ParityOdd:
		return "odd"
	}
	return "none"
}

// ParseParity reads none, even or odd (any case, or the first letter).
func ParseParity(s string) (Parity, error) {
	switch strings.ToLower(s) {
	case "none", "n":
		return ParityNone, nil
	case "even", "e":
		return ParityEven, nil
	case "odd", "o":
		return ParityOdd, nil
	}
	return 0, fmt.Errorf("%q is not a parity (want even, odd or none)", s)
}

// Line is a serial line with every key resolved.
type Line struct {
	BaudRate int
	DataBits int
	Parity   Parity
	StopBits int
	// RS485 is set by the receiver from LineConfig.ResolveRS485 (Over leaves it as in l).
	RS485 RS485
}

// Over returns l with the keys c sets. A parity c sets but that is not one is left as in l; Validate
// reports it.
func (l Line) Over(c LineConfig) Line {
	if c.BaudRate != 0 {
		l.BaudRate = c.BaudRate
	}
	if c.DataBits != 0 {
		l.DataBits = c.DataBits
	}
	if c.Parity != "" {
		if p, err := ParseParity(c.Parity); err == nil {
			l.Parity = p
		}
	}
	if c.StopBits != 0 {
		l.StopBits = c.StopBits
	}
	return l
}

// MaxBaudRate is the highest line speed accepted when a receiver does not list its own.
const MaxBaudRate = 4_000_000

// Validate reports every key of c out of range, named under prefix ("connections[0]."). rates lists
// the baud rates the receiver's devices support; none: any from 1 to MaxBaudRate.
func (c LineConfig) Validate(prefix string, rates ...int) error {
	var errs []error
	switch {
	case c.BaudRate == 0:
	case len(rates) > 0 && !slices.Contains(rates, c.BaudRate):
		list := make([]string, len(rates))
		for i, r := range rates {
			list[i] = strconv.Itoa(r)
		}
		errs = append(errs, fmt.Errorf("%sbaud_rate: %d is not supported (want %s)", prefix, c.BaudRate, orList(list)))
	case c.BaudRate < 0 || c.BaudRate > MaxBaudRate:
		errs = append(errs, fmt.Errorf("%sbaud_rate: must be between 1 and %d, got %d", prefix, MaxBaudRate, c.BaudRate))
	}
	if c.DataBits != 0 && (c.DataBits < 5 || c.DataBits > 8) {
		errs = append(errs, fmt.Errorf("%sdata_bits: must be 5, 6, 7 or 8, got %d", prefix, c.DataBits))
	}
	if c.Parity != "" {
		if _, err := ParseParity(c.Parity); err != nil {
			errs = append(errs, fmt.Errorf("%sparity: %w", prefix, err))
		}
	}
	if c.StopBits != 0 && c.StopBits != 1 && c.StopBits != 2 {
		errs = append(errs, fmt.Errorf("%sstop_bits: must be 1 or 2, got %d", prefix, c.StopBits))
	}
	return errors.Join(errs...)
}

// ResolveRS485 checks the rs485 block of c (prefix as for Validate: "connections[0].") on an endpoint
// that is a local serial port or not, and returns the driver control it asks for.
func (c LineConfig) ResolveRS485(prefix string, serial bool) (RS485, error) {
	return c.RS485.Resolve(prefix+"rs485", serial)
}

// CharTime is the time one character takes on the line: start bit, data bits, parity bit and stop
// bits at the baud rate; 0 when the baud rate is unknown.
func (l Line) CharTime() time.Duration {
	if l.BaudRate <= 0 {
		return 0
	}
	bits := 1 + l.DataBits + l.StopBits
	if l.Parity != ParityNone {
		bits++
	}
	return time.Duration(bits) * time.Second / time.Duration(l.BaudRate)
}
