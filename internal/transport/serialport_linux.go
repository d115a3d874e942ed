//go:build linux

package transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const rs485Supported = true

var baudFlags = map[int]uint32{
	300: unix.B300, 600: unix.B600, 1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
	460800: unix.B460800, 500000: unix.B500000, 576000: unix.B576000, 921600: unix.B921600,
	1000000: unix.B1000000, 1152000: unix.B1152000, 1500000: unix.B1500000, 2000000: unix.B2000000,
	2500000: unix.B2500000, 3000000: unix.B3000000, 3500000: unix.B3500000, 4000000: unix.B4000000,
}

var sizeFlags = map[int]uint32{5: unix.CS5, 6: unix.CS6, 7: unix.CS7, 8: unix.CS8}

// ttyPort is a serial port as a pollable *os.File: reads honour deadlines through the runtime's
// poller, and Close wakes a waiting Read.
type ttyPort struct {
	*os.File
	once sync.Once
	err  error
}

func openSerial(device string, line Line, rs485 RS485) (serialPort, error) {
	fd, err := unix.Open(device, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = setTermios(fd, line)
	if err == nil && rs485.Enabled {
		err = setRS485(fd, rs485)
	}
	if err != nil {
		_ = unix.Close(fd) // the set-up error is the one to report
		return nil, err
	}
	// A non-blocking descriptor gives a File that uses the poller.
	return &ttyPort{File: os.NewFile(uintptr(fd), device)}, nil
}

func setTermios(fd int, l Line) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("not a serial port: %w", err)
	}
	speed, ok := baudFlags[l.BaudRate]
	if !ok {
		return fmt.Errorf("baud rate %d not supported", l.BaudRate)
	}
	size, ok := sizeFlags[l.DataBits]
	if !ok {
		return fmt.Errorf("%d data bits not supported", l.DataBits)
	}
	// Raw mode: no echo, no line editing, no translation, no flow control.
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL |
		unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CBAUD | unix.CRTSCTS
	t.Cflag |= size | unix.CREAD | unix.CLOCAL | speed
	switch l.Parity {
	case ParityEven:
		t.Cflag |= unix.PARENB
		t.Iflag |= unix.INPCK
	case ParityOdd:
		t.Cflag |= unix.PARENB | unix.PARODD
		t.Iflag |= unix.INPCK
	}
	if l.StopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set up the port: %w", err)
	}
	return nil
}

// setRS485 hands the driver control to the kernel.
func setRS485(fd int, r RS485) error {
	k := r.kernel()
	// The ioctl takes a pointer to struct serial_rs485, laid out as the kernel's (TestRS485KernelLayout).
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSRS485, uintptr(unsafe.Pointer(&k))) //nolint:gosec // G103: see above
	switch errno {
	case 0:
		return nil
	case unix.ENOTTY, unix.EINVAL:
		return fmt.Errorf("rs485: %w (TIOCSRS485: %w): use a port whose driver has it, or remove rs485 (an adapter that switches direction itself needs none)", ErrNoRS485, errno)
	}
	return fmt.Errorf("rs485: TIOCSRS485: %w", errno)
}

func (p *ttyPort) Read(b []byte) (int, error) {
	n, err := p.File.Read(b)
	if err != nil && errors.Is(err, unix.EIO) {
		// The other side of a pty went away.
		return n, fmt.Errorf("serial line hung up: %w", err)
	}
	return n, err
}

func (p *ttyPort) Close() error {
	p.once.Do(func() { p.err = p.File.Close() })
	return p.err
}
