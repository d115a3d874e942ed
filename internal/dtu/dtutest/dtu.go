// Package dtutest is a DTU for tests: it dials the collector's DTU listener, sends its registration
// packet and heartbeats, and bridges bytes to a device server (a simulator on loopback), as a 4G DTU
// bridges its socket to its serial port.
package dtutest

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Options shape the DTU.
type Options struct {
	// Registration is sent first.
	Registration []byte
	// Heartbeat is the DTU's heartbeat packet.
	Heartbeat []byte
	// HeartbeatEvery sends the heartbeat periodically (0: only when Beat is called).
	HeartbeatEvery time.Duration
	// MidReply writes a heartbeat in the middle of every chunk the device sends (cutting its replies in
	// two), as a DTU does when its heartbeat timer fires while a reply crosses its serial port.
	MidReply bool
	// Device is the device server's host:port; empty: the DTU only registers and beats.
	Device string
	// TLS dials the collector with TLS.
	TLS *tls.Config
}

// DTU is a running test DTU.
type DTU struct {
	t    testing.TB
	opts Options
	up   net.Conn // to the collector
	dev  net.Conn // to the device

	wmu    sync.Mutex // one write at a time towards the collector
	beats  atomic.Uint64
	wg     sync.WaitGroup
	stop   chan struct{}
	once   sync.Once
	closed chan struct{} // the collector's side ended
}

// Dial connects to the collector at addr and registers; it stops on cleanup.
func Dial(t testing.TB, addr string, opts Options) *DTU {
	t.Helper()
	d, err := DialErr(t, addr, opts)
	require.NoError(t, err)
	return d
}

// DialErr is Dial that returns the error.
func DialErr(t testing.TB, addr string, opts Options) (*DTU, error) {
	var up net.Conn
	var err error
	if opts.TLS != nil {
		up, err = tls.Dial("tcp", addr, opts.TLS)
	} else {
		up, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	d := &DTU{t: t, opts: opts, up: up, stop: make(chan struct{}), closed: make(chan struct{})}
	if opts.Device != "" {
		if d.dev, err = net.Dial("tcp", opts.Device); err != nil {
			_ = up.Close()
			return nil, err
		}
	}
	t.Cleanup(d.Close)
	if len(opts.Registration) > 0 {
		if _, err := up.Write(opts.Registration); err != nil {
			return nil, err
		}
	}
	d.wg.Add(1)
	go d.fromCollector()
	if d.dev != nil {
		d.wg.Add(1)
		go d.fromDevice()
	}
	if opts.HeartbeatEvery > 0 {
		d.wg.Add(1)
		go d.beatLoop()
	}
	return d, nil
}

// Beat sends one heartbeat now.
func (d *DTU) Beat() error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	_, err := d.up.Write(d.opts.Heartbeat)
	if err == nil {
		d.beats.Add(1)
	}
	return err
}

// Send writes raw bytes to the collector (e.g. a registration repeated mid-stream).
func (d *DTU) Send(b []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	_, err := d.up.Write(b)
	return err
}

// Beats is the number of heartbeats sent.
func (d *DTU) Beats() uint64 { return d.beats.Load() }

// Closed is closed once the collector has closed the DTU's socket (or it failed).
func (d *DTU) Closed() <-chan struct{} { return d.closed }

// IsClosed tells whether the collector has closed the socket.
func (d *DTU) IsClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// Close hangs up (a DTU losing its cellular link) and waits for the DTU's goroutines.
func (d *DTU) Close() {
	d.once.Do(func() {
		close(d.stop)
		_ = d.up.Close()
		if d.dev != nil {
			_ = d.dev.Close()
		}
	})
	d.wg.Wait()
}

func (d *DTU) fromCollector() {
	defer d.wg.Done()
	defer close(d.closed)
	w := io.Discard
	if d.dev != nil {
		w = d.dev
	}
	_, _ = io.Copy(w, d.up) // ends when either side closes
	if d.dev != nil {
		_ = d.dev.Close() // the serial side has nobody to talk to
	}
}

func (d *DTU) fromDevice() {
	defer d.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := d.dev.Read(buf)
		if n > 0 {
			if werr := d.forward(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (d *DTU) forward(b []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if !d.opts.MidReply || len(b) < 2 || len(d.opts.Heartbeat) == 0 {
		_, err := d.up.Write(b)
		return err
	}
	h := len(b) / 2
	d.beats.Add(1) // before the reply completes, so a test that got the reply sees the count
	// Three writes: the collector may get them in one read or three, both must work.
	for _, part := range [][]byte{b[:h], d.opts.Heartbeat, b[h:]} {
		if _, err := d.up.Write(part); err != nil {
			return err
		}
	}
	return nil
}

func (d *DTU) beatLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.opts.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-d.closed:
			return
		case <-t.C:
			if d.Beat() != nil {
				return
			}
		}
	}
}
