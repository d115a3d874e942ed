// Package faultproxy is a TCP proxy for tests that injects faults into what a server sends back: a
// reply split with its rest delayed past the client's timeout, truncated, duplicated, swapped with the
// next one, mixed with garbage, held back (stall) or answered by a connection reset. It listens on
// 127.0.0.1, forwards every connection to one target, and is told what to do while it runs.
//
// A reply is one frame when the proxy has a Framer (see MBAPFrames, RTUFrames, DLT645Frames), otherwise
// whatever one read from the server returned. Faults are one-shot and apply, in the order they were
// injected, to the next replies of any connection. Client to server traffic is forwarded untouched.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Framer returns the length of the whole frame at the start of b, 0 if more bytes are needed, or -1 if
// b does not start with a frame (then everything buffered is forwarded as one reply).
type Framer func(b []byte) int

type kind uint8

const (
	kindNone kind = iota
	kindSplit
	kindTruncate
	kindDuplicate
	kindReorder
	kindGarbage
	kindReset
)

// Fault is what happens to one reply. The zero Fault forwards it untouched.
type Fault struct {
	kind    kind
	at      int
	delay   time.Duration
	garbage []byte
	when    func(reply []byte) bool
}

// When makes f wait for a reply that match accepts: the replies before it pass untouched (a fault on
// the second read of a poll, on one unit's answer...). match is called with the proxy's lock held.
func When(match func(reply []byte) bool, f Fault) Fault {
	f.when = match
	return f
}

// Split sends the first at bytes of the reply at once and the rest after delay (later replies of the
// connection queue behind it, as on a TCP stream).
func Split(at int, delay time.Duration) Fault { return Fault{kind: kindSplit, at: at, delay: delay} }

// Truncate forwards only the first n bytes of the reply; the rest is dropped.
func Truncate(n int) Fault { return Fault{kind: kindTruncate, at: n} }

// Duplicate forwards the reply twice.
func Duplicate() Fault { return Fault{kind: kindDuplicate} }

// Reorder holds the reply back and forwards it after the next reply of the same connection.
func Reorder() Fault { return Fault{kind: kindReorder} }

// Garbage inserts b into the reply before byte at (0: before the frame; past the end: after it).
func Garbage(at int, b []byte) Fault {
	return Fault{kind: kindGarbage, at: at, garbage: append([]byte(nil), b...)}
}

// Reset drops the reply and resets the client's connection (RST, not FIN).
func Reset() Fault { return Fault{kind: kindReset} }

// IsZero tells whether f forwards the reply untouched.
func (f Fault) IsZero() bool { return f.kind == kindNone }

func (f Fault) String() string {
	return [...]string{"none", "split", "truncate", "duplicate", "reorder", "garbage", "reset"}[f.kind]
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithFramer makes a reply one frame as found by fr.
func WithFramer(fr Framer) Option { return func(p *Proxy) { p.framer = fr } }

// Proxy is a fault-injecting TCP proxy. Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	framer Framer

	mu       sync.Mutex
	faults   []Fault
	policy   func() Fault
	stalled  bool
	pipes    map[*pipe]struct{}
	accepted int
	replies  int
	applied  int
	lastEnd  time.Time
	closed   bool

	wg sync.WaitGroup
}

// New starts a proxy on 127.0.0.1 (a free port) that forwards to target (host:port).
func New(target string, opts ...Option) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, pipes: map[*pipe]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (127.0.0.1:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Inject queues faults for the next replies, one reply each.
func (p *Proxy) Inject(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, faults...)
}

// SetPolicy asks policy for the fault of every reply that no injected fault is queued for (nil: none).
// policy is called with the proxy's lock held: it must not call the proxy.
func (p *Proxy) SetPolicy(policy func() Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policy = policy
}

// Stall stops forwarding replies: they are held until Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

// Resume forwards the replies held since Stall (to the connections still open) and ends the stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = false
	now := time.Now()
	for pp := range p.pipes {
		for _, b := range pp.held {
			pp.queue(chunk{b: b})
		}
		pp.held = nil
	}
	p.lastEnd = now
}

// ResetAll resets every open client connection now.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	pipes := make([]*pipe, 0, len(p.pipes))
	for pp := range p.pipes {
		pipes = append(pipes, pp)
	}
	p.mu.Unlock()
	for _, pp := range pipes {
		pp.reset()
	}
}

// Stats are the proxy's running totals.
type Stats struct {
	Accepted int       // client connections accepted
	Open     int       // client connections open now
	Replies  int       // replies seen from servers
	Applied  int       // faults applied (injected or from the policy)
	Pending  int       // injected faults not applied yet
	LastEnd  time.Time // when the last applied fault's effect ended (a split's rest sent, a stall resumed)
}

// Stats returns the running totals.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Accepted: p.accepted, Open: len(p.pipes), Replies: p.replies, Applied: p.applied, Pending: len(p.faults), LastEnd: p.lastEnd}
}

// Close stops listening, closes every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	pipes := make([]*pipe, 0, len(p.pipes))
	for pp := range p.pipes {
		pipes = append(pipes, pp)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, pp := range pipes {
		pp.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		pp := &pipe{p: p, client: c, server: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		p.pipes[pp] = struct{}{}
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(3)
		go pp.upstream()
		go pp.downstream()
		go pp.writer()
	}
}

// next returns the fault for reply b.
func (p *Proxy) next(b []byte) Fault {
	p.replies++
	var f Fault
	if len(p.faults) > 0 {
		if w := p.faults[0].when; w != nil && !w(b) {
			return Fault{}
		}
		f = p.faults[0]
		p.faults = p.faults[1:]
	} else if p.policy != nil {
		f = p.policy()
	}
	if !f.IsZero() {
		p.applied++
		p.lastEnd = time.Now().Add(f.delay)
	}
	return f
}

// chunk is bytes for the client, not to be sent before at.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe is one proxied connection.
type pipe struct {
	p              *Proxy
	client, server net.Conn

	// under p.mu
	pending []chunk
	held    [][]byte
	reorder []byte // reply held back by Reorder
	wake    chan struct{}

	once sync.Once
	done chan struct{}
}

func (pp *pipe) close() {
	pp.once.Do(func() {
		close(pp.done)
		_ = pp.client.Close()
		_ = pp.server.Close()
		pp.p.mu.Lock()
		delete(pp.p.pipes, pp)
		pp.p.mu.Unlock()
	})
}

// reset closes the client connection with an RST.
func (pp *pipe) reset() {
	if tc, ok := pp.client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	pp.close()
}

// queue hands a chunk to the writer (p.mu held).
func (pp *pipe) queue(c chunk) {
	pp.pending = append(pp.pending, c)
	select {
	case pp.wake <- struct{}{}:
	default:
	}
}

// upstream forwards client to server.
func (pp *pipe) upstream() {
	defer pp.p.wg.Done()
	_, _ = io.Copy(pp.server, pp.client)
	pp.close()
}

// downstream reads the server, cuts replies and applies faults.
func (pp *pipe) downstream() {
	defer pp.p.wg.Done()
	defer pp.close()
	buf := make([]byte, 4096)
	var acc []byte
	for {
		n, err := pp.server.Read(buf)
		if n > 0 {
			acc = append(acc, buf[:n]...)
			for len(acc) > 0 {
				m := len(acc)
				if pp.p.framer != nil {
					m = pp.p.framer(acc)
					if m == 0 {
						break
					}
					if m < 0 || m > len(acc) {
						m = len(acc)
					}
				}
				reply := append([]byte(nil), acc[:m]...)
				acc = acc[m:]
				if !pp.reply(reply) {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// reply applies the next fault to one reply; false when the connection was reset.
func (pp *pipe) reply(b []byte) bool {
	p := pp.p
	p.mu.Lock()
	f := p.next(b)
	if f.kind == kindReset {
		p.mu.Unlock()
		pp.reset()
		return false
	}
	defer p.mu.Unlock()
	send := func(c chunk) {
		if p.stalled {
			pp.held = append(pp.held, c.b)
			return
		}
		pp.queue(c)
	}
	var out []chunk
	switch f.kind {
	case kindSplit:
		at := min(max(f.at, 0), len(b))
		out = append(out, chunk{b: b[:at]}, chunk{b: b[at:], at: time.Now().Add(f.delay)})
	case kindTruncate:
		out = append(out, chunk{b: b[:min(max(f.at, 0), len(b))]})
	case kindDuplicate:
		out = append(out, chunk{b: b}, chunk{b: append([]byte(nil), b...)})
	case kindGarbage:
		at := min(max(f.at, 0), len(b))
		g := append(append(append([]byte(nil), b[:at]...), f.garbage...), b[at:]...)
		out = append(out, chunk{b: g})
	case kindReorder:
		if pp.reorder == nil {
			pp.reorder = b
			return true
		}
		out = append(out, chunk{b: b}) // a second Reorder in a row: forward in order
	default:
		out = append(out, chunk{b: b})
	}
	if pp.reorder != nil && f.kind != kindReorder {
		out = append(out, chunk{b: pp.reorder})
		pp.reorder = nil
	}
	for _, c := range out {
		send(c)
	}
	return true
}

// writer sends the queued chunks to the client in order, each not before its time.
func (pp *pipe) writer() {
	defer pp.p.wg.Done()
	defer pp.close()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		pp.p.mu.Lock()
		var c chunk
		ok := len(pp.pending) > 0
		if ok {
			c = pp.pending[0]
		}
		pp.p.mu.Unlock()
		if !ok {
			select {
			case <-pp.wake:
				continue
			case <-pp.done:
				return
			}
		}
		if d := time.Until(c.at); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-pp.done:
				return
			}
		}
		pp.p.mu.Lock()
		pp.pending = pp.pending[1:]
		pp.p.mu.Unlock()
		if len(c.b) == 0 {
			continue
		}
		if _, err := pp.client.Write(c.b); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				pp.close()
			}
			return
		}
	}
}
