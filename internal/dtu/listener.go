package dtu

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
)

// ErrNotConnected is returned by Dial while the DTU has no registered socket.
var ErrNotConnected = errors.New("DTU not connected")

// holdTime is how long a tail that may be the start of a heartbeat is held back waiting for the rest
// (a DTU writes its heartbeat in one packet; TCP may still cut it).
const holdTime = 50 * time.Millisecond

// maxBuffered bounds what a DTU may send that no client reads (oldest bytes are dropped).
const maxBuffered = 64 << 10

// Reasons a socket is closed without a session (attribute of iiot.dtu.rejected).
const (
	reasonUnknownID      = "unknown_id"
	reasonMaxConnections = "max_connections"
	reasonNoRegistration = "no_registration"
)

// Settings are what the listener needs from its receiver.
type Settings struct {
	Logger *zap.Logger
	// MeterProvider receives the DTU metrics (the receiver's own telemetry); nil: none.
	MeterProvider metric.MeterProvider
	// Scope is the instrumentation scope name of the metrics.
	Scope string
	// OnRegister, if set, is called (on the socket's goroutine) once a known DTU's session is in place.
	OnRegister func(id string)
}

// Stats are running totals of a listener.
type Stats struct {
	Accepted      uint64 // sockets accepted
	Registrations uint64 // sockets that registered with a known id
	Replaced      uint64 // sessions closed because their DTU registered again on a new socket
	Unknown       uint64 // sockets closed for an unknown id
	OverCap       uint64 // sockets closed for max_connections
	Unregistered  uint64 // sockets closed for not registering in time
	IdleClosed    uint64 // sessions closed by idle_timeout
	Heartbeats    uint64 // heartbeat (and repeated registration) packets removed from the streams of current and ended sessions
}

// Listener accepts DTUs on one port and keeps the current session of each known DTU id.
type Listener struct {
	cfg     Config
	onReg   func(id string)
	known   map[string]bool
	match   matcher
	beat    []byte
	tls     *tls.Config
	logger  *zap.Logger
	metrics metric.Registration

	mu         sync.Mutex
	ln         net.Listener
	conns      map[net.Conn]struct{} // every open socket, registered or not
	sessions   map[string]*session
	registered map[string]time.Time // last registration of each id
	unknown    map[string]bool      // unknown ids already logged
	stats      Stats
	closed     bool
	stop       chan struct{} // closed by Close
	wg         sync.WaitGroup
	rejected   metric.Int64Counter
}

// New returns a listener for the DTU ids (normalized with cfg.NormalizeID), validating cfg and
// loading its TLS files. Start binds the port.
func New(ctx context.Context, cfg Config, ids []string, set Settings) (*Listener, error) {
	if err := cfg.Validate(""); err != nil {
		return nil, err
	}
	m, _ := cfg.matcher("")
	beat, _ := cfg.Heartbeat.bytes()
	l := &Listener{
		cfg: cfg, match: m, beat: beat, known: map[string]bool{}, logger: set.Logger, onReg: set.OnRegister,
		conns: map[net.Conn]struct{}{}, sessions: map[string]*session{}, registered: map[string]time.Time{}, unknown: map[string]bool{},
		stop: make(chan struct{}),
	}
	if l.logger == nil {
		l.logger = zap.NewNop()
	}
	l.logger = l.logger.With(zap.String("dtu.listen", cfg.Endpoint))
	for _, id := range ids {
		l.known[id] = true
	}
	if cfg.TLS != nil {
		t, err := cfg.TLS.LoadTLSConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		l.tls = t
	}
	if err := l.telemetry(set); err != nil {
		return nil, err
	}
	return l, nil
}

// telemetry registers the DTU metrics: connected DTUs, the last registration time of each, and the
// sockets refused by reason.
func (l *Listener) telemetry(set Settings) error {
	mp := set.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	meter := mp.Meter(set.Scope)
	connected, err1 := meter.Int64ObservableGauge("iiot.dtu.connected", metric.WithUnit("{dtu}"),
		metric.WithDescription("1 while the DTU has a registered socket, else 0, by dtu.id."))
	regTime, err2 := meter.Float64ObservableGauge("iiot.dtu.registration.time", metric.WithUnit("s"),
		metric.WithDescription("Unix time of the DTU's last registration, by dtu.id."))
	rejected, err3 := meter.Int64Counter("iiot.dtu.rejected", metric.WithUnit("{connection}"),
		metric.WithDescription("DTU sockets closed without a session, by reason: unknown_id, max_connections, no_registration."))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	l.rejected = rejected
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, id := range slices.Sorted(mapsKeys(l.known)) {
			a := metric.WithAttributes(attribute.String("dtu.id", id))
			var up int64
			if _, ok := l.sessions[id]; ok {
				up = 1
			}
			o.ObserveInt64(connected, up, a)
			if t, ok := l.registered[id]; ok {
				o.ObserveFloat64(regTime, float64(t.UnixNano())/1e9, a)
			}
		}
		return nil
	}, connected, regTime)
	if err != nil {
		return err
	}
	l.metrics = reg
	return nil
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Start binds the port and accepts DTUs until Close.
func (l *Listener) Start() error {
	ln, err := net.Listen("tcp", l.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("dtu: listen on %s: %w", l.cfg.Endpoint, err)
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.mu.Lock()
	if l.closed || l.ln != nil {
		l.mu.Unlock()
		_ = ln.Close() // closed before it started, or started already
		if l.closed {
			return net.ErrClosed
		}
		return nil
	}
	l.ln = ln
	l.wg.Add(1)
	l.mu.Unlock()
	go l.accept(ln)
	l.logger.Info("Listening for DTUs", zap.Int("dtus", len(l.known)))
	return nil
}

// Addr is the bound address (nil before Start).
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Close stops accepting, closes every socket and waits for the listener's goroutines.
func (l *Listener) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return
	}
	l.closed = true
	close(l.stop)
	if l.ln != nil {
		_ = l.ln.Close() // shutting down: nothing to report
	}
	for c := range l.conns {
		_ = c.Close() // shutting down
	}
	l.mu.Unlock()
	l.wg.Wait()
	if l.metrics != nil {
		_ = l.metrics.Unregister() // the meter provider may be gone already at shutdown
	}
}

// Stats returns the running totals.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	for _, s := range l.sessions {
		st.Heartbeats += s.st.stripped.Load()
	}
	return st
}

// Connected tells whether the DTU has a registered socket.
func (l *Listener) Connected(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.sessions[id]
	return ok
}

// Registered returns when the DTU last registered (zero: never).
func (l *Listener) Registered(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.registered[id]
}

// Dial returns a connection to the DTU's current session: reads return the DTU's bytes without its
// heartbeats, writes go to the DTU. Closing it leaves the DTU's socket open (a DTU cannot be redialled;
// it is only let go by Close, idle_timeout or its own reconnect). Once the session ends, reads and
// writes fail with net.ErrClosed and Dial must be called again. Only one transaction at a time should
// use a DTU: a Write drops bytes that arrived before it and were not read.
func (l *Listener) Dial(id string) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sessions[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotConnected, id)
	}
	return &Conn{s: s, kick: make(chan struct{}, 1)}, nil
}

func (l *Listener) accept(ln net.Listener) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.logger.Warn("Accept failed; still listening", zap.Error(err))
			// e.g. out of file descriptors: do not spin
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-t.C:
			case <-l.stop:
			}
			t.Stop()
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return
		}
		l.stats.Accepted++
		if len(l.conns) >= l.cfg.MaxConnections {
			l.stats.OverCap++
			l.mu.Unlock()
			l.reject(reasonMaxConnections)
			l.logger.Debug("DTU socket refused: max_connections reached", zap.Stringer("remote", c.RemoteAddr()), zap.Int("max_connections", l.cfg.MaxConnections))
			_ = c.Close()
			continue
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(c)
	}
}

func (l *Listener) reject(reason string) {
	l.rejected.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}

// forget drops a closed socket.
func (l *Listener) forget(c net.Conn) {
	_ = c.Close() // done with it; the error adds nothing
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// serve reads the registration of a new socket and then runs its session.
func (l *Listener) serve(c net.Conn) {
	defer l.wg.Done()
	defer l.forget(c)
	st := &stripper{}
	if len(l.beat) > 0 {
		st.patterns = [][]byte{l.beat}
	}
	id, packet, rest, err := l.register(c, st)
	if err != nil {
		l.mu.Lock()
		closed := l.closed
		if !closed {
			l.stats.Unregistered++
		}
		l.mu.Unlock()
		if closed {
			return
		}
		l.reject(reasonNoRegistration)
		l.logger.Debug("DTU socket closed before registering", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
		return
	}
	l.mu.Lock()
	if !l.known[id] {
		l.stats.Unknown++
		first := !l.unknown[id] && len(l.unknown) < 1024
		if first {
			l.unknown[id] = true
		}
		l.mu.Unlock()
		l.reject(reasonUnknownID)
		if first { // once per id: a misconfigured DTU redials every few seconds
			l.logger.Warn("DTU with an unknown id closed; bind it in a bus endpoint (dtu://<id>) or fix its registration packet",
				zap.String("dtu.id", id), zap.Stringer("remote", c.RemoteAddr()))
		}
		return
	}
	st.add(packet) // some DTUs repeat their registration as heartbeat
	s := newSession(id, c, st, l.cfg.IdleTimeout)
	old := l.sessions[id]
	l.sessions[id] = s
	l.registered[id] = time.Now()
	l.stats.Registrations++
	if old != nil {
		l.stats.Replaced++
	}
	l.mu.Unlock()
	if old != nil {
		_ = old.close(errReplaced) // the reason is known
		l.logger.Info("DTU registered again on a new socket; the old one is closed", zap.String("dtu.id", id), zap.Stringer("remote", c.RemoteAddr()))
	} else {
		l.logger.Info("DTU registered", zap.String("dtu.id", id), zap.Stringer("remote", c.RemoteAddr()))
	}
	s.push(rest)
	if l.onReg != nil {
		l.onReg(id)
	}
	reason := s.run()
	l.mu.Lock()
	if l.sessions[id] == s {
		delete(l.sessions, id)
	}
	l.stats.Heartbeats += st.stripped.Load()
	if errors.Is(reason, errIdle) {
		l.stats.IdleClosed++
	}
	closed := l.closed
	l.mu.Unlock()
	if !errors.Is(reason, errReplaced) && !closed {
		l.logger.Info("DTU disconnected; its devices are down until it registers again", zap.String("dtu.id", id), zap.String("reason", reason.Error()))
	}
}

// register reads the registration packet: the first bytes of the socket (heartbeats removed), up to
// maxPattern. With a regex, reads go on until it matches. It returns the id, the packet, and any bytes
// after a regex match.
func (l *Listener) register(c net.Conn, st *stripper) (id string, packet, rest []byte, err error) {
	deadline := time.Now().Add(l.cfg.RegistrationTimeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		return "", nil, nil, err
	}
	buf := make([]byte, maxPattern)
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, st.feed(buf[:n])...)
		if len(got) > 0 {
			if l.match.re == nil {
				return finishRegistration(l.match, got)
			}
			if loc := l.match.re.FindSubmatchIndex(got); loc != nil {
				return string(got[loc[2]:loc[3]]), slices.Clone(got[:loc[1]]), slices.Clone(got[loc[1]:]), nil
			}
			if len(got) >= maxPattern {
				return "", nil, nil, fmt.Errorf("no registration matching %q in the first %d bytes", l.match.re, len(got))
			}
		}
		if err != nil {
			return "", nil, nil, err
		}
	}
}

func finishRegistration(m matcher, packet []byte) (string, []byte, []byte, error) {
	id := m.id(packet)
	if id == "" {
		return "", nil, nil, errors.New("empty registration packet")
	}
	return id, slices.Clone(packet), nil, nil
}

var (
	errReplaced = errors.New("replaced by a new socket of the same DTU")
	errIdle     = errors.New("idle_timeout: nothing received, not even a heartbeat")
	errUnbound  = errors.New("its receiver stopped")
)

// session is one registered socket of a DTU.
type session struct {
	id   string
	conn net.Conn
	st   *stripper
	idle time.Duration

	mu     sync.Mutex
	buf    []byte
	notify chan struct{} // a byte arrived or the session ended (capacity 1)
	done   chan struct{}
	err    error
	wmu    sync.Mutex // one Write at a time
}

func newSession(id string, c net.Conn, st *stripper, idle time.Duration) *session {
	return &session{id: id, conn: c, st: st, idle: idle, notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// push adds protocol bytes for readers.
func (s *session) push(b []byte) {
	if len(b) == 0 {
		return
	}
	s.mu.Lock()
	s.buf = append(s.buf, b...)
	if over := len(s.buf) - maxBuffered; over > 0 {
		s.buf = append(s.buf[:0], s.buf[over:]...)
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// run reads the socket until it fails, idles out or the session is closed; it returns why it ended.
func (s *session) run() error {
	buf := make([]byte, 4096)
	last := time.Now()
	for {
		deadline := last.Add(s.idle)
		if s.st.held() {
			deadline = time.Now().Add(holdTime)
		}
		if err := s.conn.SetReadDeadline(deadline); err != nil {
			return s.close(err)
		}
		n, err := s.conn.Read(buf)
		if n > 0 {
			last = time.Now()
			s.push(s.st.feed(buf[:n]))
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if s.st.held() {
				s.push(s.st.flush()) // not a heartbeat after all
				continue
			}
			if time.Since(last) >= s.idle {
				return s.close(errIdle)
			}
			continue
		}
		return s.close(err)
	}
}

// close ends the session with reason (the first reason wins) and returns it.
func (s *session) close(reason error) error {
	s.mu.Lock()
	if s.err == nil {
		s.err = reason
		close(s.done)
	}
	reason = s.err
	s.mu.Unlock()
	_ = s.conn.Close() // ending the session; the reason is what counts
	return reason
}

// Conn is a client's view of a DTU session (a net.Conn).
type Conn struct {
	s    *session
	kick chan struct{} // the read deadline changed

	mu       sync.Mutex
	deadline time.Time
	wdl      time.Time
	closed   bool
}

var _ net.Conn = (*Conn)(nil)

// Alive tells whether the DTU session behind this view is still open.
func (c *Conn) Alive() bool {
	select {
	case <-c.s.done:
		return false
	default:
		return true
	}
}

// ID is the DTU's id.
func (c *Conn) ID() string { return c.s.id }

// Read returns protocol bytes of the DTU, waiting for at least one until the read deadline.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		closed, deadline := c.closed, c.deadline
		c.mu.Unlock()
		if closed {
			return 0, net.ErrClosed
		}
		s := c.s
		s.mu.Lock()
		if len(s.buf) > 0 {
			n := copy(b, s.buf)
			s.buf = append(s.buf[:0], s.buf[n:]...)
			s.mu.Unlock()
			return n, nil
		}
		ended := s.err != nil
		s.mu.Unlock()
		if ended {
			return 0, fmt.Errorf("DTU %s: %w", s.id, net.ErrClosed)
		}
		if !c.wait(deadline) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// wait waits until bytes may have arrived, the session ended or the deadline changed; false when the
// deadline passed.
func (c *Conn) wait(deadline time.Time) bool {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-c.s.notify:
	case <-c.s.done:
	case <-c.kick:
	case <-timeout:
		return false
	}
	return true
}

// Write sends b to the DTU. Bytes the DTU sent before and nobody read are dropped first: they cannot
// be the answer to this request (one transaction at a time).
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	closed, wdl := c.closed, c.wdl
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	s := c.s
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("DTU %s: %w", s.id, net.ErrClosed)
	}
	s.buf = s.buf[:0]
	s.mu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.conn.SetWriteDeadline(wdl); err != nil {
		return 0, err
	}
	n, err := s.conn.Write(b)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		_ = s.close(err) // a broken socket ends the session; err says why
	}
	return n, err
}

// Close detaches this view; the DTU's socket stays open for the next Dial.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wake()
	return nil
}

func (c *Conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Conn) LocalAddr() net.Addr  { return c.s.conn.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.s.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets when a waiting or later Read fails with os.ErrDeadlineExceeded (zero: never).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	c.wake()
	return nil
}

// SetWriteDeadline sets when a Write gives up.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}
