package transport

import (
	"errors"
	"fmt"
	"time"
)

// RS485Config is the RS-485 driver control of a Linux serial port (the kernel's TIOCSRS485 ioctl):
// the UART drives the transceiver's direction pin (RTS) itself around each frame, as Telegraf's
// modbus `rs485` options do. Absent or enabled: false, the port's RS-485 mode is left as it is.
type RS485Config struct {
	// Enabled turns the kernel's RS-485 mode on for the port.
	Enabled bool `mapstructure:"enabled"`
	// RTSOnSend is the RTS level while sending (default true: high drives the transceiver).
	RTSOnSend *bool `mapstructure:"rts_on_send"`
	// RTSAfterSend is the RTS level after sending (default: the opposite of rts_on_send).
	RTSAfterSend *bool `mapstructure:"rts_after_send"`
	// DelayBeforeSend is how long RTS is set before the first bit (whole milliseconds, up to 100ms).
	DelayBeforeSend time.Duration `mapstructure:"delay_before_send"`
	// DelayAfterSend is how long RTS stays set after the last bit (whole milliseconds, up to 100ms).
	DelayAfterSend time.Duration `mapstructure:"delay_after_send"`
	// RXDuringTX keeps the receiver on while sending (the port hears its own frames: rarely wanted).
	RXDuringTX bool `mapstructure:"rx_during_tx"`
}

// RS485 is the resolved driver control of a port; the zero value leaves the port's mode alone.
type RS485 struct {
	Enabled         bool
	RTSOnSend       bool
	RTSAfterSend    bool
	RXDuringTX      bool
	DelayBeforeSend time.Duration
	DelayAfterSend  time.Duration
}

// MaxRS485Delay is the longest RTS delay the kernel accepts (it clamps longer ones).
const MaxRS485Delay = 100 * time.Millisecond

// Resolve checks c and returns the driver control it asks for. prefix names the block
// ("connections[0].rs485"); serial tells whether the endpoint is a local serial port.
func (c *RS485Config) Resolve(prefix string, serial bool) (RS485, error) {
	if c == nil {
		return RS485{}, nil
	}
	var errs []error
	if !serial {
		errs = append(errs, fmt.Errorf("%s: applies only to a local serial port (the serial server or DTU drives its own RS-485 line)", prefix))
	}
	if c.Enabled && !rs485Supported {
		errs = append(errs, fmt.Errorf("%s: RS-485 driver control is Linux only (the kernel's TIOCSRS485 ioctl); remove it, or set the port's mode outside the collector", prefix))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"delay_before_send", c.DelayBeforeSend}, {"delay_after_send", c.DelayAfterSend}} {
		switch {
		case d.v < 0 || d.v > MaxRS485Delay:
			errs = append(errs, fmt.Errorf("%s.%s: must be between 0 and %s, got %s", prefix, d.key, MaxRS485Delay, d.v))
		case d.v%time.Millisecond != 0:
			errs = append(errs, fmt.Errorf("%s.%s: must be whole milliseconds (the kernel counts in ms), got %s", prefix, d.key, d.v))
		}
	}
	set := c.RTSOnSend != nil || c.RTSAfterSend != nil || c.DelayBeforeSend != 0 || c.DelayAfterSend != 0 || c.RXDuringTX
	if !c.Enabled && set {
		errs = append(errs, fmt.Errorf("%s: rts_on_send, rts_after_send, delay_before_send, delay_after_send and rx_during_tx apply only with enabled: true", prefix))
	}
	r := RS485{Enabled: c.Enabled, RTSOnSend: true, RXDuringTX: c.RXDuringTX, DelayBeforeSend: c.DelayBeforeSend, DelayAfterSend: c.DelayAfterSend}
	if c.RTSOnSend != nil {
		r.RTSOnSend = *c.RTSOnSend
	}
	r.RTSAfterSend = !r.RTSOnSend
	if c.RTSAfterSend != nil {
		r.RTSAfterSend = *c.RTSAfterSend
	}
	if r.RTSOnSend == r.RTSAfterSend {
		// The kernel would silently drive RTS on send instead: the direction pin must change.
		errs = append(errs, fmt.Errorf("%s: rts_on_send and rts_after_send must differ (RTS changes level when sending starts and ends), both are %t", prefix, r.RTSOnSend))
	}
	if !c.Enabled {
		return RS485{}, errors.Join(errs...)
	}
	return r, errors.Join(errs...)
}

// String describes the driver control as in errors naming two users of a port.
func (r RS485) String() string {
	if !r.Enabled {
		return "rs485 off"
	}
	return fmt.Sprintf("rs485 rts_on_send=%t rts_after_send=%t delay_before_send=%s delay_after_send=%s rx_during_tx=%t",
		r.RTSOnSend, r.RTSAfterSend, r.DelayBeforeSend, r.DelayAfterSend, r.RXDuringTX)
}

// ErrNoRS485 is the error of a port whose driver has no RS-485 mode (a pty, a plain UART, most USB
// adapters that switch direction in hardware).
var ErrNoRS485 = errors.New("the port's driver has no RS-485 mode")

// Flags of struct serial_rs485 (linux/serial.h).
const (
	serRS485Enabled      = 1 << 0
	serRS485RTSOnSend    = 1 << 1
	serRS485RTSAfterSend = 1 << 2
	serRS485RXDuringTX   = 1 << 4
)

// serialRS485 is struct serial_rs485 of linux/serial.h: flags, the two RTS delays in milliseconds and
// five words of padding (32 bytes). golang.org/x/sys/unix has the ioctl numbers but not the struct.
type serialRS485 struct {
	Flags              uint32
	DelayRTSBeforeSend uint32
	DelayRTSAfterSend  uint32
	Padding            [5]uint32
}

// kernel is r as the kernel takes it.
func (r RS485) kernel() serialRS485 {
	var k serialRS485
	if r.Enabled {
		k.Flags |= serRS485Enabled
	}
	if r.RTSOnSend {
		k.Flags |= serRS485RTSOnSend
	}
	if r.RTSAfterSend {
		k.Flags |= serRS485RTSAfterSend
	}
	if r.RXDuringTX {
		k.Flags |= serRS485RXDuringTX
	}
	k.DelayRTSBeforeSend = uint32(r.DelayBeforeSend / time.Millisecond)
	k.DelayRTSAfterSend = uint32(r.DelayAfterSend / time.Millisecond)
	return k
}
