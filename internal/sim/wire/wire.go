// Package wire paces a serial line at its baud rate, for benchmarks of a bus: a pty (or a socket)
// delivers bytes at once, a real RS-485 line one character time each. Line sits on the devices' end
// of a pty pair: the bytes the collector writes reach the devices as they would come off the wire
// (each one character time after the previous, after any frame still on the wire), and what the
// devices write goes back at the same pace. Line counts the bytes and the time the wire was in use.
package wire

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// Port is the end of the line Line paces: a serial port or pty end with read deadlines.
type Port interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// Line is a paced view of port. Read and Write are for one reader and one writer (the devices).
type Line struct {
	port Port
	char time.Duration

	mu       sync.Mutex
	queue    []timed   // bytes from the collector, with the time each is off the wire
	free     time.Time // when the wire is free again
	deadline time.Time
	err      error
	notify   chan struct{}
	stats    Stats
	done     chan struct{}
}

type timed struct {
	b  byte
	at time.Time
}

// Stats is what went over the wire.
type Stats struct {
	// Bytes is the number of bytes both ways.
	Bytes int
	// Busy is how long the wire carried bytes (Bytes × the character time).
	Busy time.Duration
}

// NewLine paces port at char per character (e.g. transport.Line.CharTime()) until Close.
func NewLine(port Port, char time.Duration) *Line {
	l := &Line{port: port, char: char, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go l.receive()
	return l
}

// receive takes what the collector wrote as it comes and gives each byte its time off the wire.
func (l *Line) receive() {
	defer close(l.done)
	buf := make([]byte, 512)
	for {
		n, err := l.port.Read(buf)
		now := time.Now()
		l.mu.Lock()
		for _, b := range buf[:n] {
			start := now
			if l.free.After(start) {
				start = l.free
			}
			l.free = start.Add(l.char)
			l.queue = append(l.queue, timed{b: b, at: l.free})
		}
		l.stats.Bytes += n
		l.stats.Busy += time.Duration(n) * l.char
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			l.err = err
		}
		l.mu.Unlock()
		l.wake()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

func (l *Line) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// Read returns the bytes off the wire by now, waiting for the first until the read deadline.
func (l *Line) Read(b []byte) (int, error) {
	for {
		l.mu.Lock()
		now := time.Now()
		n := 0
		for n < len(l.queue) && n < len(b) && !l.queue[n].at.After(now) {
			b[n] = l.queue[n].b
			n++
		}
		if n > 0 {
			l.queue = l.queue[n:]
			l.mu.Unlock()
			return n, nil
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return 0, err
		}
		wait := time.Hour
		if len(l.queue) > 0 {
			wait = l.queue[0].at.Sub(now)
		}
		dl := l.deadline
		l.mu.Unlock()
		if !dl.IsZero() {
			if !now.Before(dl) {
				return 0, os.ErrDeadlineExceeded
			}
			wait = min(wait, dl.Sub(now))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.notify:
		}
		t.Stop()
	}
}

// SetReadDeadline sets when Read gives up with os.ErrDeadlineExceeded (zero: never).
func (l *Line) SetReadDeadline(t time.Time) error {
	l.mu.Lock()
	l.deadline = t
	l.mu.Unlock()
	l.wake()
	return nil
}

// Write sends b once the wire is free, each byte reaching the collector when its last bit is on
// the wire; it returns when the last has.
func (l *Line) Write(b []byte) (int, error) {
	l.mu.Lock()
	start := time.Now()
	if l.free.After(start) {
		start = l.free
	}
	l.free = start.Add(time.Duration(len(b)) * l.char)
	l.stats.Bytes += len(b)
	l.stats.Busy += time.Duration(len(b)) * l.char
	l.mu.Unlock()
	sent := 0
	for sent < len(b) {
		due := min(len(b), int(time.Since(start)/l.char))
		if due > sent {
			if _, err := l.port.Write(b[sent:due]); err != nil {
				return sent, err
			}
			sent = due
			continue
		}
		// The simulated wire's own time: the next byte is due one character time on.
		t := time.NewTimer(time.Until(start.Add(time.Duration(sent+1) * l.char)))
		<-t.C
	}
	return sent, nil
}

// Stats is what went over the wire so far.
func (l *Line) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close stops pacing; the caller closes the port first (it ends the pending read).
func (l *Line) Close() { <-l.done }
