package dlt645receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/internal/serialbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// bus is one line of meters. Its poll.Link lets one meter (or the time sync) use it at a time, so
// only the goroutine holding the link touches the client; close may come from Shutdown.
type bus struct {
	spec   *busSpec
	clock  clock.Clock
	logger *zap.Logger
	link   *poll.Link
	dtus   *dtu.Listener // the listener of dtu:// buses

	port *serialbus.Handle // the process's owner of the port, when joined at Start
	// ports are the owners of the endpoint and its backups (endpoints:); port is the one in use. The
	// meters keep the first one's poll link: the backups are other paths to the same line.
	ports  []*serialbus.Handle
	fo     *transport.Failover // which of ports is in use
	tried  string              // the endpoint last opened or tried
	served string              // the endpoint last opened (logged when it changes)

	mu     sync.Mutex
	conn   io.Closer
	client *dlt645.Client
	closed bool
	failed bool // the last attempt to open failed (log state changes only)
}

func newBus(spec *busSpec, dtus *dtu.Listener, clock clock.Clock, logger *zap.Logger) *bus {
	b := &bus{
		spec:   spec,
		dtus:   dtus,
		clock:  clock,
		logger: logger.With(zap.String("endpoint", spec.endpoint)),
		// One transaction at a time; the gap also separates the polls of two meters.
		link: poll.NewLink(clock, 1, spec.gap),
	}
	if len(spec.URLs) > 1 {
		b.fo = transport.NewFailover(len(spec.URLs), spec.FailoverAfter, spec.FailbackAfter)
	}
	return b
}

// open returns the client of the line, opening the port or connection if needed.
func (b *bus) open(ctx context.Context, timeout time.Duration) (*dlt645.Client, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, net.ErrClosed
	}
	failback := b.fo != nil && b.fo.FailbackDue(b.clock.Now())
	if b.client != nil && !b.dtuGone() && !failback {
		c := b.client
		b.mu.Unlock()
		return c, nil
	}
	b.mu.Unlock()
	if failback {
		// A backup has served failback_after: the first endpoint is tried once; if it is still down,
		// the backup goes on serving for another failback_after.
		b.reset()
		backup := b.fo.TryFirst()
		if c, err := b.openLine(ctx, timeout); err == nil {
			return c, nil
		}
		b.fo.Resume(backup, b.clock.Now())
	}
	return b.openLine(ctx, timeout)
}

// backups gives the bus the owners of its endpoint's and backups' ports (endpoints:), the first in use.
func (b *bus) backups(ports []*serialbus.Handle) {
	b.ports, b.port = ports, ports[0]
}

// servedBy is the endpoint last opened or tried, as configured.
func (b *bus) servedBy() string {
	if b.tried != "" {
		return b.tried
	}
	return b.spec.endpoint
}

// openLine opens the port or connection in use. With backups, failover_after failed opens in a row
// make the next endpoint the one in use.
func (b *bus) openLine(ctx context.Context, timeout time.Duration) (*dlt645.Client, error) {
	address := b.spec.address
	if b.fo != nil {
		b.tried, address = b.spec.URLs[b.fo.Active()], b.spec.Addresses[b.fo.Active()]
		if len(b.ports) > 1 {
			b.port = b.ports[b.fo.Active()]
		}
	}

	var link dlt645.Link
	var closer io.Closer
	var err error
	switch {
	case b.spec.scheme == schemeDTU:
		var c net.Conn
		if c, err = b.dtus.Dial(address); err == nil {
			link, closer = c, c
		} else if errors.Is(err, dtu.ErrNotConnected) {
			if !b.failed {
				b.logger.Warn("DTU not connected; its meters are down (not_connected) until it dials in")
			}
			b.failed = true
			b.nextOnFail()
			return nil, device.NewError(device.ErrNotConnected, err)
		}
	case b.port != nil:
		var l serialbus.Link
		if l, err = b.port.Open(ctx, timeout); err == nil {
			link, closer = l, resetter{b.port}
		}
	case b.spec.scheme == schemeTCP:
		d := net.Dialer{Timeout: timeout}
		var c net.Conn
		if c, err = d.DialContext(ctx, "tcp", b.spec.address); err == nil {
			link, closer = c, c
		}
	default:
		var s *dlt645.SerialLink
		if s, err = dlt645.OpenSerial(b.spec.serial); err == nil {
			link, closer = s, s
		}
	}
	if err != nil {
		if !b.failed {
			b.logger.Warn("Cannot open the bus; meters on it are retried on their schedule", zap.Error(err))
		}
		b.failed = true
		tried := b.servedBy()
		b.nextOnFail()
		return nil, fmt.Errorf("open %s: %w", tried, err)
	}
	if b.fo != nil {
		b.fo.Connected()
	}
	if b.tried != b.served {
		if b.served != "" || (b.fo != nil && b.fo.Active() != 0) {
			b.logger.Info("Bus served by another endpoint", zap.String("served_by", b.tried))
		}
		b.served = b.tried
	}
	if b.failed {
		b.logger.Info("Bus open again")
	} else if b.spec.scheme == schemeDTU {
		b.logger.Debug("DTU session taken")
	}
	b.failed = false
	c := dlt645.NewClient(link)
	c.Preamble = b.spec.preamble
	c.Gap = b.spec.gap
	c.CharTime = b.spec.charTime
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_ = closer.Close() // closed meanwhile by Shutdown: nothing to report
		return nil, net.ErrClosed
	}
	b.conn, b.client = closer, c
	return c, nil
}

// nextOnFail records a failed open of the endpoint in use: after failover_after in a row the next
// endpoint is the one in use.
func (b *bus) nextOnFail() {
	if b.fo == nil {
		return
	}
	if from := b.servedBy(); b.fo.Failed(b.clock.Now()) {
		b.failed = false // the next endpoint's failure is logged again
		b.logger.Warn("Bus endpoint failing; switching to the next", zap.String("from", from),
			zap.String("to", b.spec.URLs[b.fo.Active()]), zap.Int("failed_connects", b.spec.FailoverAfter))
	}
}

// dtuGone tells (under mu) whether the bus's DTU session has ended: the DTU redialled or dropped, so
// the next request takes its new session at once instead of failing once on the old one.
func (b *bus) dtuGone() bool {
	c, ok := b.conn.(*dtu.Conn)
	if ok && !c.Alive() {
		_ = c.Close() // a view: closing it only detaches
		b.conn, b.client = nil, nil
		return true
	}
	return false
}

// reset drops the connection after a transport error; the next request reopens it.
func (b *bus) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		_ = b.conn.Close() // the connection failed already; a close error adds nothing
	}
	b.conn, b.client = nil, nil
}

// share puts the bus on the port's owner: the port's poll link is the bus's, so the meters take
// turns with every other user of the port (Modbus devices, another receiver's meters).
func (b *bus) share(h *serialbus.Handle) {
	b.port, b.link = h, h.PollLink()
}

// user is the bus as a user of its port; key names it in errors (buses[0]).
func (b *bus) user(receiver, key string) serialbus.User {
	s := b.spec.serial
	parity, _ := transport.ParseParity(s.Parity)
	return serialbus.User{
		Name:    fmt.Sprintf("receiver %s %s", receiver, key),
		Serial:  b.spec.scheme != "tcp",
		Address: b.spec.address,
		Line:    transport.Line{BaudRate: s.BaudRate, DataBits: s.DataBits, Parity: parity, StopBits: s.StopBits, RS485: b.spec.rs485},
		Gap:     b.spec.gap,
		PollGap: b.spec.gap,
	}
}

// resetter closes a shared port's line after a transport error; the next open opens it again.
type resetter struct{ h *serialbus.Handle }

func (r resetter) Close() error { r.h.Reset(); return nil }

// close closes the line for good (a shared port is closed by its last user leaving).
func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.conn != nil && b.port == nil {
		_ = b.conn.Close() // shutting down: nothing to report
	}
	b.conn, b.client = nil, nil
}

// midnightGuard is how close to midnight no time sync is sent: meters refuse (or mis-apply) a
// broadcast time sync around the day change.
const midnightGuard = 5 * time.Minute

// syncJob is the bus's time sync: it defers itself, without the bus, while midnight is near.
func (b *bus) syncJob(interval time.Duration) poll.Job {
	return poll.Job{Interval: interval, Link: b.link, Run: b.syncTime, Defer: b.untilSafe}
}

// untilSafe is how long a time sync must wait at now to be clear of the meters' midnight.
func (b *bus) untilSafe(now time.Time) time.Duration {
	return untilClearOfMidnight(now.In(b.spec.location))
}

// syncTime broadcasts the time to every meter of the bus (control code 08, no answer). The scheduler
// holds the bus for it, and has waited out midnight (untilSafe) before taking it.
func (b *bus) syncTime(ctx context.Context) {
	c, err := b.open(ctx, time.Second)
	if err != nil {
		return
	}
	if err := c.Broadcast(ctx, dlt645.TimeSyncRequest(b.clock.Now().In(b.spec.location))); err != nil {
		b.logger.Debug("Time sync not sent", zap.Error(err))
		b.reset()
		return
	}
	b.logger.Debug("Time sync broadcast")
}

// untilClearOfMidnight is how long to wait before a time sync is safe at now (0: at once).
func untilClearOfMidnight(now time.Time) time.Duration {
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	since := now.Sub(midnight)
	switch {
	case since < midnightGuard:
		return midnightGuard - since + time.Second
	case since > 24*time.Hour-midnightGuard:
		return 24*time.Hour - since + midnightGuard + time.Second
	}
	return 0
}
