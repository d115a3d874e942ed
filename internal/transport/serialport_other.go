//go:build !linux

package transport

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/goburrow/serial"
)

// pollSlice is how long one read of the port blocks before the deadline is
// checked again.
const pollSlice = 20 * time.Millisecond

// slicedPort gives read deadlines to a port whose reads time out after a
// fixed time, by reading in short slices.
type slicedPort struct {
	port     serial.Port
	mu       sync.Mutex
	deadline time.Time
	closed   bool
	reading  sync.Mutex
}

const rs485Supported = false

func openSerial(device string, line Line, rs485 RS485) (serialPort, error) {
	if rs485.Enabled {
		return nil, errors.New("rs485: RS-485 driver control is Linux only")
	}
	p, err := serial.Open(&serial.Config{
		Address: device, BaudRate: line.BaudRate, DataBits: line.DataBits, StopBits: line.StopBits,
		Parity: "NEO"[line.Parity : line.Parity+1], Timeout: pollSlice,
	})
	if err != nil {
		return nil, err
	}
	return &slicedPort{port: p}, nil
}

func (l *slicedPort) SetReadDeadline(t time.Time) error {
	l.mu.Lock()
	l.deadline = t
	l.mu.Unlock()
	return nil
}

func (l *slicedPort) Read(b []byte) (int, error) {
	l.reading.Lock()
	defer l.reading.Unlock()
	for {
		l.mu.Lock()
		deadline, closed := l.deadline, l.closed
		l.mu.Unlock()
		if closed {
			return 0, os.ErrClosed
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := l.port.Read(b)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, serial.ErrTimeout) {
			return 0, err
		}
		if err == nil {
			time.Sleep(pollSlice)
		}
	}
}

func (l *slicedPort) Write(b []byte) (int, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return 0, os.ErrClosed
	}
	written := 0
	for written < len(b) {
		n, err := l.port.Write(b[written:])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// Close waits for a Read in progress (at most one slice) before closing.
func (l *slicedPort) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.reading.Lock()
	defer l.reading.Unlock()
	return l.port.Close()
}
