package dlt645sim

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

// Options shape the line the meters sit on.
type Options struct {
	// Preamble is the number of FE bytes before each reply (default 0;
	// many meters send 4).
	Preamble int
	// CharTime paces the line like a serial bus: a request takes its length
	// times CharTime to arrive and a reply is written at that speed. Zero
	// answers at once.
	CharTime time.Duration
	// ResponseDelay is how long a meter thinks before it answers.
	ResponseDelay time.Duration
	// NoiseProbability is the chance (0..1) that a burst of garbage bytes
	// goes on the line before a reply.
	NoiseProbability float64
	// NoiseBytes is the largest burst (default 8). Bursts contain 68 and 16
	// bytes to tempt the framer.
	NoiseBytes int
	// Seed makes the noise repeatable.
	Seed uint64
	// Echo sends every request back before the reply, as RS-485 adapters
	// that hear their own transmission do.
	Echo bool
	// AlignedCollisions makes meters that answer at once start in the same
	// character time, so their frames overlay bit for bit: the worst case, in
	// which the overlay can pass its checksum as a frame whose address blends
	// the senders'. By default each meter after the first starts one
	// character later, as meters' reaction times differ.
	AlignedCollisions bool
	// Now is the clock of the meters (default time.Now).
	Now func() time.Time
}

// Server answers for a set of meters on one line. Over TCP, each accepted
// connection is such a line (as a transparent serial server forwards to its
// bus); over a serial device there is one line.
type Server struct {
	opts   Options
	meters []*Meter

	mu        sync.Mutex
	rng       *rand.Rand
	listeners map[net.Listener]struct{}
	conns     map[io.Closer]struct{}
	closed    bool
	wg        sync.WaitGroup

	requests atomic.Uint64
	replies  atomic.Uint64
	noise    atomic.Uint64
	accepted atomic.Uint64
}

// NewServer returns a server for the meters.
func NewServer(opts Options, meters ...*Meter) *Server {
	if opts.NoiseBytes <= 0 {
		opts.NoiseBytes = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:   opts,
		meters: meters,
		rng:    rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5DEECE66D)), //nolint:gosec // G404: line noise, seeded so that tests repeat

		listeners: map[net.Listener]struct{}{},
		conns:     map[io.Closer]struct{}{},
	}
}

// Meters lists the meters of the server.
func (s *Server) Meters() []*Meter { return s.meters }

// Meter finds a meter by address.
func (s *Server) Meter(a dlt645.Address) *Meter {
	for _, m := range s.meters {
		if m.address == a {
			return m
		}
	}
	return nil
}

// Stats are what the server has seen.
type Stats struct {
	Requests   uint64 // frames addressed to the line
	Replies    uint64 // frames answered
	NoiseBytes uint64 // garbage bytes written
	Accepted   uint64 // TCP connections accepted
}

// Stats returns the running totals.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Replies: s.replies.Load(), NoiseBytes: s.noise.Load(), Accepted: s.accepted.Load()}
}

// Handle returns what the line carries back after req: the replies of the
// meters it reaches. Several meters answering at once (a wildcard read on a
// shared line) collide; Handle then returns their frames overlaid, garbled,
// as a real bus would.
func (s *Server) Handle(req dlt645.Frame, now time.Time) []dlt645.Frame {
	if req.Control.IsReply() {
		return nil // another meter's answer, or an echo
	}
	var out []dlt645.Frame
	for _, m := range s.meters {
		if m.isOff() {
			continue
		}
		if req.Address != dlt645.BroadcastAddress && !req.Address.Matches(m.address) {
			continue
		}
		if req.Address == dlt645.BroadcastAddress && req.Control.Func() != dlt645.FuncBroadcastTime {
			continue
		}
		if f, ok := m.answer(req, now); ok {
			out = append(out, f)
		}
	}
	return out
}

// encodeReplies renders the replies as bytes on the line.
func (s *Server) encodeReplies(replies []dlt645.Frame) []byte {
	var buf []byte
	shift := 0
	for _, f := range replies {
		b, err := f.Append(nil, s.opts.Preamble)
		if err != nil {
			continue
		}
		if buf == nil {
			buf = b
			continue
		}
		// A collision: the frames overlay each other (a driver sending a 1 bit wins over the idle
		// line; here the bits of both are kept), the later one some characters behind.
		if !s.opts.AlignedCollisions {
			shift++
			b = append(make([]byte, shift), b...)
		}
		for i := range b {
			if i < len(buf) {
				buf[i] |= b[i]
			} else {
				buf = append(buf, b[i])
			}
		}
	}
	return buf
}

func (s *Server) noiseBurst() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.NoiseProbability <= 0 || s.rng.Float64() >= s.opts.NoiseProbability {
		return nil
	}
	n := 1 + s.rng.IntN(s.opts.NoiseBytes)
	b := make([]byte, n)
	for i := range b {
		switch s.rng.IntN(4) {
		case 0:
			b[i] = dlt645.StartByte
		case 1:
			b[i] = dlt645.EndByte
		default:
			b[i] = byte(s.rng.UintN(256))
		}
	}
	return b
}

// ServeLine answers requests arriving on rw until ctx ends or rw fails.
func (s *Server) ServeLine(ctx context.Context, rw io.ReadWriter) error {
	var split dlt645.Splitter
	buf := make([]byte, 512)
	var rxDone time.Time // when the bytes read so far finished arriving at line speed
	for {
		if err := ctx.Err(); err != nil {
			return nil
		}
		if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
		n, err := rw.Read(buf)
		if n > 0 {
			if now := time.Now(); rxDone.Before(now) {
				rxDone = now
			}
			rxDone = rxDone.Add(time.Duration(n) * s.opts.CharTime)
			_, _ = split.Write(buf[:n])
			for {
				req, ok := split.Next()
				if !ok {
					break
				}
				if err := s.serveFrame(ctx, rw, req, rxDone); err != nil {
					return err
				}
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (s *Server) serveFrame(ctx context.Context, w io.Writer, req dlt645.Frame, arrived time.Time) error {
	if req.Control.IsReply() {
		return nil
	}
	s.requests.Add(1)
	// The request needed its wire time to arrive (a TCP client sends it at
	// once; arrived accounts for line speed); the meter then thinks.
	if !sleep(ctx, time.Until(arrived)+s.opts.ResponseDelay) {
		return nil
	}
	replies := s.Handle(req, s.opts.Now())
	var out []byte
	if s.opts.Echo {
		out, _ = req.Append(out, 0)
	}
	noise := s.noiseBurst()
	s.noise.Add(uint64(len(noise)))
	out = append(out, noise...)
	if len(replies) > 0 {
		s.replies.Add(uint64(len(replies)))
		out = append(out, s.encodeReplies(replies)...)
	}
	if len(out) == 0 {
		return nil
	}
	return s.pacedWrite(ctx, w, out)
}

// pacedWrite writes b at the speed of the line.
func (s *Server) pacedWrite(ctx context.Context, w io.Writer, b []byte) error {
	if s.opts.CharTime <= 0 {
		_, err := w.Write(b)
		return err
	}
	const slice = 5 * time.Millisecond
	start := time.Now()
	sent := 0
	for sent < len(b) {
		// A byte is delivered once its last bit is on the line.
		due := min(len(b), int(time.Since(start)/s.opts.CharTime))
		if due > sent {
			if _, err := w.Write(b[sent:due]); err != nil {
				return err
			}
			sent = due
			continue
		}
		next := start.Add(time.Duration(sent+1) * s.opts.CharTime)
		if !sleep(ctx, min(time.Until(next), slice)) {
			return nil
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Serve accepts TCP connections on l and serves each as a line, until l is
// closed or Close is called.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !s.track(c) {
			_ = c.Close()
			return nil
		}
		s.accepted.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			_ = s.ServeLine(ctx, c)
		}()
	}
}

// ServeSerial opens a serial device and serves it as one line until ctx
// ends or Close is called.
func (s *Server) ServeSerial(ctx context.Context, c dlt645.SerialConfig) error {
	l, err := dlt645.OpenSerial(c)
	if err != nil {
		return err
	}
	if !s.track(l) {
		_ = l.Close()
		return nil
	}
	defer s.untrack(l)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return s.ServeLine(ctx, l)
}

func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

// DropConnections closes every open TCP connection and serial device (the
// listener keeps accepting), as a serial server that reboots would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Close stops listening, closes every line and waits for the connection
// goroutines. Safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		_ = l.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
