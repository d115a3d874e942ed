// Package serialbus is the one owner of each physical serial port, and of each TCP serial server,
// in the collector: every receiver connection that names the port joins it, the port is opened once,
// its users take turns through one poll.Link (one transaction at a time across Modbus RTU, Modbus
// ASCII and DL/T 645), each user's inter-frame gap is kept before each of its frames, and a line left
// in doubt by one user (a reply that came late or cut) is waited out before another user sends.
//
// Users on one port must agree on the line: differing settings are an error naming both users.
package serialbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// Link is the byte stream of a port, as the protocol clients use it.
type Link interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// User is one receiver connection on a port.
type User struct {
	// Name says who it is in errors: the receiver's id and the connection's key.
	Name string
	// Serial is set for a serial device path, unset for a TCP serial server (host:port).
	Serial  bool
	Address string
	// Line is the line setting; on a TCP serial server only BaudRate counts (0: not known).
	Line transport.Line
	// Gap is the silence this user keeps before each of its frames (RTU's t3.5, DL/T 645's gap).
	Gap time.Duration
	// PollGap is the idle time between two polls (pause_between_polls); kept when the port passes
	// from one user to another, and between this user's polls if it is the first to join.
	PollGap time.Duration
	// First is set when the port is one of the user's backup endpoints: the address of its first
	// endpoint's port, whose poll link its transactions take turns on.
	First string
}

// Registry holds the ports of a process.
type Registry struct {
	mu    sync.Mutex
	ports map[string]*Port
}

// Default is the registry of the collector process: every receiver joins its ports here.
var Default = NewRegistry()

// NewRegistry returns an empty registry (tests, benchmarks).
func NewRegistry() *Registry { return &Registry{ports: map[string]*Port{}} }

// Key is how a port is known: the device path with symbolic links resolved (two names of one port
// are one port), or host:port.
func Key(serial bool, address string) string {
	if !serial {
		return "tcp:" + address
	}
	p := filepath.Clean(address)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return "serial:" + p
}

// Port is one physical line.
type Port struct {
	reg   *Registry
	key   string
	clock clock.Clock
	link  *poll.Link

	mu       sync.Mutex
	users    []*Handle
	stream   Link
	closer   io.Closer
	active   time.Time // when the line was last busy (a byte sent or received)
	writer   *Handle   // the last user to send
	doubt    bool      // the last transaction may still have bytes on the way
	charTime time.Duration
}

// Handle is one user's membership of a port.
type Handle struct {
	port *Port
	user User
	left bool // guarded by port.mu
}

// Join adds u to the port it names, creating the port on first use. A user whose line differs from
// the port's is refused with an error naming both.
func (r *Registry) Join(u User, c clock.Clock) (*Handle, error) {
	if c == nil {
		c = clock.Real{}
	}
	key := Key(u.Serial, u.Address)
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.ports[key]
	if p == nil {
		// The line's gaps are physical time; the poll link runs on the receivers' clock.
		p = &Port{reg: r, key: key, clock: clock.Real{}, link: poll.NewLink(c, 1, u.PollGap), charTime: u.Line.CharTime()}
		r.ports[key] = p
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.users {
		if err := conflict(h.user, u); err != nil {
			return nil, err
		}
	}
	h := &Handle{port: p, user: u}
	p.users = append(p.users, h)
	if ct := u.Line.CharTime(); ct > p.charTime {
		p.charTime = ct
	}
	return h, nil
}

// conflict tells whether two users of one port want different lines.
func conflict(a, b User) error {
	where := "serial port " + b.Address
	if !b.Serial {
		where = "serial server " + b.Address
	}
	if a.Name == b.Name {
		return fmt.Errorf("%s: %s names it twice (one connection per port; list its devices under it)", where, a.Name)
	}
	if (a.First != "" || b.First != "") && a.turns() != b.turns() {
		// A backup's transactions take turns on its first endpoint's poll link: only with users that
		// take turns there too do they never overlap on this line.
		return fmt.Errorf("%s: %s and %s use it with different first endpoints (%s, %s): a backup endpoint's port may be shared only by connections whose endpoints start with the same port", where, a.Name, b.Name, a.turnsOn(), b.turnsOn())
	}
	la, lb := a.Line, b.Line
	if !b.Serial {
		// The server sets the line; the baud rate tells only the timing, and must agree when both give it.
		if la.BaudRate != 0 && lb.BaudRate != 0 && la.BaudRate != lb.BaudRate {
			return fmt.Errorf("%s: %s uses baud_rate %d but %s uses %d: the users of one line must agree", where, a.Name, la.BaudRate, b.Name, lb.BaudRate)
		}
		return nil
	}
	if la.RS485 != lb.RS485 {
		return fmt.Errorf("%s: %s uses %s but %s uses %s: the users of one port must use the same rs485 settings", where, a.Name, la.RS485, b.Name, lb.RS485)
	}
	if la != lb {
		return fmt.Errorf("%s: %s uses %s but %s uses %s: the users of one port must use the same line settings", where, a.Name, describe(la), b.Name, describe(lb))
	}
	return nil
}

// turns is the key of the port whose poll link the user's transactions take turns on.
func (u User) turns() string {
	if u.First != "" {
		return Key(u.Serial, u.First)
	}
	return Key(u.Serial, u.Address)
}

func (u User) turnsOn() string {
	if u.First != "" {
		return u.First
	}
	return u.Address
}

func describe(l transport.Line) string {
	return fmt.Sprintf("%d baud %d%c%d", l.BaudRate, l.DataBits, "NEO"[l.Parity], l.StopBits)
}

// Users is how many users share the port.
func (h *Handle) Users() int {
	h.port.mu.Lock()
	defer h.port.mu.Unlock()
	return len(h.port.users)
}

// PollLink is the port's link: every user's poll jobs run on it, so one transaction at a time goes
// over the line, whoever sends it.
func (h *Handle) PollLink() *poll.Link { return h.port.link }

// Leave removes the user; the last one closes the port.
func (h *Handle) Leave() {
	p := h.port
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	h.left = true
	for i, u := range p.users {
		if u == h {
			p.users = append(p.users[:i], p.users[i+1:]...)
			break
		}
	}
	if len(p.users) == 0 {
		p.closeLocked()
		delete(p.reg.ports, p.key)
	}
}

// Open returns the user's view of the port, opening the line if it is not open: a serial device
// with the user's line settings, or a TCP connection to the serial server within timeout. The view
// opens the line again by itself after another user reset it.
func (h *Handle) Open(ctx context.Context, timeout time.Duration) (Link, error) {
	l := &userLink{h: h, timeout: timeout}
	if _, err := l.current(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// openLocked opens the line for h.
func (p *Port) openLocked(ctx context.Context, h *Handle, timeout time.Duration) error {
	var err error
	if h.user.Serial {
		var s *transport.SerialPort
		s, err = transport.OpenSerial(h.user.Address, h.user.Line, h.user.Line.RS485)
		if err == nil {
			p.stream, p.closer = s, s
		} else if errors.Is(err, transport.ErrNoRS485) {
			// Whose rs485 block asks for it: every user of the port has the same.
			err = fmt.Errorf("%s: %w", h.user.Name, err)
		}
	} else {
		d := net.Dialer{Timeout: timeout}
		var c net.Conn
		c, err = d.DialContext(ctx, "tcp", h.user.Address)
		if err == nil {
			p.stream, p.closer = c, c
		}
	}
	if err != nil {
		return err
	}
	p.doubt = false
	p.active = p.clock.Now()
	return nil
}

// Reset closes the line after a transport error or a doubt a drain cannot settle (a TCP stream is
// reopened: the late bytes die with it); the next Open opens it again.
func (h *Handle) Reset() {
	h.port.mu.Lock()
	defer h.port.mu.Unlock()
	h.port.closeLocked()
}

// Doubt tells the port that the user's last transaction may still have bytes on the way: whoever
// sends next waits the line out first.
func (h *Handle) Doubt() {
	h.port.mu.Lock()
	h.port.doubt = true
	h.port.mu.Unlock()
}

func (p *Port) closeLocked() {
	if p.closer != nil {
		_ = p.closer.Close() // the line is dropped; a close error adds nothing
	}
	p.stream, p.closer, p.writer = nil, nil, nil
}

// userLink is one user's view of the line.
type userLink struct {
	h       *Handle
	timeout time.Duration
}

func (l *userLink) current(ctx context.Context) (Link, error) {
	p := l.h.port
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.h.left {
		// Shut down: a user that left neither opens the port again nor uses it.
		return nil, net.ErrClosed
	}
	if p.stream == nil {
		if err := p.openLocked(ctx, l.h, l.timeout); err != nil {
			return nil, err
		}
	}
	return p.stream, nil
}

// Write keeps the user's gap since the line was last busy (and, when the line passes from another
// user, the larger of both users' poll gaps, after waiting out a doubt the other left) and sends b.
func (l *userLink) Write(b []byte) (int, error) {
	s, err := l.current(context.Background())
	if err != nil {
		return 0, err
	}
	p := l.h.port
	p.mu.Lock()
	gap := l.h.user.Gap
	handover := p.writer != nil && p.writer != l.h
	doubt := p.doubt
	if handover {
		gap = max(gap, p.writer.user.Gap, p.writer.user.PollGap, l.h.user.PollGap)
	}
	wait := gap - p.clock.Now().Sub(p.active)
	p.mu.Unlock()
	if doubt && handover {
		if err := l.drain(s, max(gap, time.Millisecond)+4*p.charTime); err != nil {
			return 0, err
		}
		wait = gap - p.clock.Now().Sub(p.active)
	}
	if wait > 0 {
		ch, stop := p.clock.After(wait)
		<-ch
		stop()
	}
	n, err := s.Write(b)
	p.mu.Lock()
	p.writer = l.h
	p.doubt = false
	p.active = p.clock.Now().Add(time.Duration(n) * p.charTime)
	p.mu.Unlock()
	return n, err
}

// drain reads and drops what arrives until the line has been silent for quiet (at most a second:
// a line that never falls silent is left to the framing's resync).
func (l *userLink) drain(s Link, quiet time.Duration) error {
	buf := make([]byte, 256)
	limit := time.Now().Add(time.Second)
	for time.Now().Before(limit) {
		if err := s.SetReadDeadline(time.Now().Add(quiet)); err != nil {
			return err
		}
		if _, err := s.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return err
		}
	}
	p := l.h.port
	p.mu.Lock()
	p.doubt = false
	p.active = p.clock.Now()
	p.mu.Unlock()
	return nil
}

// Read reads what has arrived; a read that times out leaves the line in doubt until the next send.
func (l *userLink) Read(b []byte) (int, error) {
	s, err := l.current(context.Background())
	if err != nil {
		return 0, err
	}
	n, err := s.Read(b)
	p := l.h.port
	p.mu.Lock()
	if n > 0 {
		p.active = p.clock.Now()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		p.doubt = true
	}
	p.mu.Unlock()
	return n, err
}

// SetReadDeadline sets the deadline of the line's next reads.
func (l *userLink) SetReadDeadline(t time.Time) error {
	s, err := l.current(context.Background())
	if err != nil {
		return err
	}
	return s.SetReadDeadline(t)
}
