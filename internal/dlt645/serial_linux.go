//go:build linux

package dlt645

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

var baudFlags = map[int]uint32{
	300: unix.B300, 600: unix.B600, 1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200,
}

var sizeFlags = map[int]uint32{5: unix.CS5, 6: unix.CS6, 7: unix.CS7, 8: unix.CS8}

// ttyPort is a serial port as a pollable *os.File: reads honour deadlines
// through the runtime's poller, and Close wakes a waiting Read.
type ttyPort struct {
	*os.File
	once sync.Once
	err  error
}

func openSerial(c SerialConfig) (serialPort, error) {
	fd, err := unix.Open(c.Device, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := setTermios(fd, c); err != nil {
		_ = unix.Close(fd) // the termios error is the one to report
		return nil, err
	}
	// A non-blocking descriptor gives a File that uses the poller.
	return &ttyPort{File: os.NewFile(uintptr(fd), c.Device)}, nil
}

func setTermios(fd int, c SerialConfig) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("not a serial port: %w", err)
	}
	speed, ok := baudFlags[c.BaudRate]
	if !ok {
		return fmt.Errorf("baud rate %d not supported", c.BaudRate)
	}
	size, ok := sizeFlags[c.DataBits]
	if !ok {
		return fmt.Errorf("%d data bits not supported", c.DataBits)
	}
	parity, err := parityLetter(c.Parity)
	if err != nil {
		return err
	}
	// Raw mode: no echo, no line editing, no translation, no flow control.
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL |
		unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CBAUD | unix.CRTSCTS
	t.Cflag |= size | unix.CREAD | unix.CLOCAL | speed
	switch parity {
	case "E":
		t.Cflag |= unix.PARENB
		t.Iflag |= unix.INPCK
	case "O":
		t.Cflag |= unix.PARENB | unix.PARODD
		t.Iflag |= unix.INPCK
	}
	if c.StopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set up the port: %w", err)
	}
	return nil
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
