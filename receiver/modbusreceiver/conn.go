package modbusreceiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu"
	mb "github.com/otelcol-iiot/otelcol-iiot/internal/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	"github.com/otelcol-iiot/otelcol-iiot/internal/serialbus"
	"github.com/otelcol-iiot/otelcol-iiot/internal/transport"
)

// conn is one connection (socket or serial port) shared by the devices behind it. Its Link lets one
// poll use it at a time, so the client's unit id and the open socket belong to that poll.
//
// tcp:// and tcp+tls:// use the Modbus library, which opens its own socket. The line schemes (rtu,
// rtuovertcp, ascii, asciiovertcp) use our client (internal/modbus) over the port's owner
// (internal/serialbus): a port or serial server named by several connections or receivers is one
// bus, polled one transaction at a time.
type conn struct {
	spec   *connSpec
	link   *poll.Link
	clock  clock.Clock
	logger *zap.Logger

	mu      sync.Mutex
	client  *modbus.ModbusClient // library schemes
	own     *mb.Client           // line schemes
	port    *serialbus.Handle    // line schemes: the owner of the port in use
	ports   []*serialbus.Handle  // line schemes: the owners of the endpoint's and its backups' ports
	private bool                 // port joined by newConn itself (no Start: tests, benchmarks)
	dtus    *dtu.Listener        // dtu://: where the DTU dials in
	session net.Conn             // dtu://: the DTU session our client is on
	fo      *transport.Failover  // endpoints: which one is in use
	tried   string               // endpoints: the endpoint last opened or tried
	served  string               // endpoints: the endpoint last opened (logged when it changes)
	timeout time.Duration        // of client
	// udp:// with backups: a failback attempt in progress, decided by its poll's answer, and the
	// backup to resume when the first endpoint stays silent.
	probing   bool
	probeFrom int
	open      bool
	down      bool // last open failed (logged once)
	doubt     bool // a resync closed the line: the next client waits it out first
}

// lineScheme tells whether the scheme runs over a line (serial port or serial server) with our client.
func lineScheme(scheme string) bool {
	return scheme == schemeRTU || scheme == schemeRTUOverTCP || scheme == schemeASCII || scheme == schemeASCIIOverTCP
}

func newConn(spec *connSpec, dtus *dtu.Listener, clock clock.Clock, logger *zap.Logger) *conn {
	c := &conn{
		spec:   spec,
		dtus:   dtus,
		clock:  clock,
		logger: logger.With(zap.String("endpoint", spec.endpoint)),
		port:   spec.port,
		fo:     transport.NewFailover(max(len(spec.Addresses), 1), spec.FailoverAfter, spec.FailbackAfter),
	}
	if c.port != nil {
		c.ports = append([]*serialbus.Handle{c.port}, spec.backupPorts...)
	}
	if lineScheme(spec.scheme) && c.port == nil {
		// Not started through Start (which joins the process's ports): ports of its own.
		reg := serialbus.NewRegistry()
		h, err := reg.Join(spec.user("modbus"), clock)
		if err == nil {
			c.port, c.ports, c.private = h, []*serialbus.Handle{h}, true
			for k := 1; k < len(spec.Addresses); k++ {
				if b, err := reg.Join(spec.backupUser("modbus", k), clock); err == nil {
					c.ports = append(c.ports, b)
				}
			}
		}
	}
	if c.port != nil {
		c.link = c.port.PollLink()
	} else {
		c.link = poll.NewLink(clock, 1, spec.gap)
	}
	return c
}

// user is the connection as a user of its port.
func (cs *connSpec) user(receiver string) serialbus.User {
	serial := cs.scheme == schemeRTU || cs.scheme == schemeASCII
	line := transport.Line{BaudRate: cs.baud, DataBits: cs.dataBits, Parity: transport.Parity(cs.parity), StopBits: cs.stopBits, RS485: cs.rs485}
	if line.StopBits == 0 {
		// As the RTU spec has it: 2 stop bits without parity, 1 with.
		line.StopBits = 1
		if line.Parity == transport.ParityNone {
			line.StopBits = 2
		}
	}
	var gap time.Duration
	if cs.scheme == schemeRTU || cs.scheme == schemeRTUOverTCP {
		gap = 35 * line.CharTime() / 10
	}
	return serialbus.User{
		Name:    fmt.Sprintf("receiver %s %s", receiver, cs.key),
		Serial:  serial,
		Address: cs.address,
		Line:    line,
		Gap:     gap,
		PollGap: cs.gap,
	}
}

// backupUser is the connection as a user of its k-th endpoint's port (endpoints[k], k >= 1).
func (cs *connSpec) backupUser(receiver string, k int) serialbus.User {
	u := cs.user(receiver)
	u.Name = fmt.Sprintf("receiver %s %s.endpoints[%d]", receiver, cs.key, k)
	u.Address, u.First = cs.Addresses[k], cs.Addresses[0]
	return u
}

// framing is the framing of a line scheme or a DTU.
func (cs *connSpec) framing() mb.Framing {
	switch {
	case cs.scheme == schemeASCII || cs.scheme == schemeASCIIOverTCP || cs.dtuFrame == framingASCII:
		return mb.ASCII
	case cs.dtuFrame == framingTCP:
		return mb.MBAP
	}
	return mb.RTU
}

// ensure makes sure the connection is open with a request timeout of timeout. The library fixes the
// timeout when the client is made, so a device with another timeout than the previous one gets a new
// client.
func (c *conn) ensure(ctx context.Context, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	failback := c.fo.FailbackDue(c.clock.Now())
	if failback {
		c.closeLocked()
	}
	switch {
	case c.spec.scheme == schemeDTU:
		return c.failover(failback, func() error { return c.ensureDTU(timeout) })
	case c.port != nil:
		return c.failover(failback, func() error { return c.ensureOwn(ctx, timeout) })
	}
	if c.open && c.timeout == timeout {
		return nil
	}
	c.closeLocked()
	return c.failover(failback, func() error { return c.openLib(timeout) })
}

// failover opens the endpoint in use with open. When a backup has served failback_after, the first
// endpoint is tried once; if it is still down, the backup goes on serving for another failback_after.
// A datagram socket opens whether or not anyone listens: on udp:// the poll's answer decides (heard).
func (c *conn) failover(failback bool, open func() error) error {
	if !failback {
		return open()
	}
	backup := c.fo.TryFirst()
	if c.spec.scheme == schemeUDP {
		c.probing, c.probeFrom = true, backup
		return open()
	}
	if err := open(); err == nil {
		return nil
	}
	c.fo.Resume(backup, c.clock.Now())
	return open()
}

// nextOnFail records a failed connect to the endpoint in use: after failover_after in a row the next
// endpoint is the one in use.
func (c *conn) nextOnFail() {
	if from := c.tried; c.fo.Failed(c.clock.Now()) {
		c.down = false // the next endpoint's failure is logged again
		c.logger.Warn("Modbus endpoint failing; switching to the next", zap.String("from", from),
			zap.String("to", c.spec.URLs[c.fo.Active()]), zap.Int("failed_connects", c.spec.FailoverAfter))
	}
}

// connected records a connect to the endpoint in use (on udp:// an answer does: heard), and logs
// when another endpoint than the last serves.
func (c *conn) connected() {
	if c.spec.scheme != schemeUDP {
		c.fo.Connected()
	}
	c.opened()
	if c.tried != c.served {
		if c.served != "" || c.fo.Active() != 0 {
			c.logger.Info("Modbus connection served by another endpoint", zap.String("served_by", c.tried))
		}
		c.served = c.tried
	}
}

// heard records whether a udp:// poll with backups got any answer. A datagram socket has no connect
// to fail, so a poll that no reply came back to counts as a failed connect to the endpoint in use,
// and a failback attempt that got none goes back to the backup at once.
func (c *conn) heard(answered bool) {
	if c.spec.scheme != schemeUDP || len(c.spec.URLs) < 2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	probing := c.probing
	c.probing = false
	switch {
	case answered:
		c.fo.Connected()
	case probing:
		c.fo.Resume(c.probeFrom, c.clock.Now())
		c.closeLocked()
	default:
		from := c.tried
		if c.fo.Failed(c.clock.Now()) {
			c.logger.Warn("Modbus endpoint not answering; switching to the next", zap.String("from", from),
				zap.String("to", c.spec.URLs[c.fo.Active()]), zap.Int("unanswered_polls", c.spec.FailoverAfter))
			c.closeLocked()
		}
	}
}

// activeEndpoint makes the endpoint in use the one tried, and returns its address.
func (c *conn) activeEndpoint() string {
	if len(c.spec.URLs) > 1 {
		c.tried = c.spec.URLs[c.fo.Active()]
	}
	return c.address()
}

// address is the address of the endpoint in use.
func (c *conn) address() string {
	if len(c.spec.Addresses) > 1 {
		return c.spec.Addresses[c.fo.Active()]
	}
	return c.spec.address
}

// servedBy is the endpoint in use, as configured.
func (c *conn) servedBy() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tried != "" {
		return c.tried
	}
	return c.spec.endpoint
}

// openLib opens the library's client on the endpoint in use. After failover_after failed connects in
// a row the next endpoint becomes the one in use.
func (c *conn) openLib(timeout time.Duration) error {
	cfg := &modbus.ClientConfiguration{
		URL:     c.spec.scheme + "://" + c.activeEndpoint(),
		Timeout: timeout,
		// The library writes to stdout without a logger; its messages are about attempts: debug level.
		Logger: c.libLogger(),
	}
	if c.spec.scheme == schemeTLS {
		// Loaded at creation (configtls); the certificate is read again per tls.reload_interval.
		cert, err := c.spec.tls.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			return device.NewError(device.ErrConnection, fmt.Errorf("loading tls.cert_file/key_file: %w", err))
		}
		cfg.TLSClientCert, cfg.TLSRootCAs = cert, c.spec.tls.RootCAs
	}
	client, err := modbus.NewClient(cfg)
	if err != nil {
		return device.NewError(device.ErrConnection, fmt.Errorf("configuring client: %w", err))
	}
	if err := client.Open(); err != nil {
		c.failed(err)
		c.nextOnFail()
		return device.NewError(device.ErrConnection, err)
	}
	c.connected()
	c.client, c.timeout, c.open = client, timeout, true
	return nil
}

// ensureOwn opens the line through the port's owner and makes our client on it.
func (c *conn) ensureOwn(ctx context.Context, timeout time.Duration) error {
	if c.open {
		c.own.Timeout = timeout
		return nil
	}
	c.activeEndpoint()
	if len(c.ports) > 1 {
		c.port = c.ports[c.fo.Active()]
	}
	link, err := c.port.Open(ctx, timeout)
	if err != nil {
		c.failed(err)
		c.nextOnFail()
		return device.NewError(device.ErrConnection, err)
	}
	c.connected()
	c.own = mb.NewClient(link, c.spec.framing(), c.clock)
	c.own.Timeout = timeout
	c.own.CharTime = c.spec.user("").Line.CharTime()
	if c.spec.baud <= 0 {
		c.own.CharTime = 0
	}
	if c.doubt {
		// The line was closed after a doubt: what arrives before the next reply is not its answer.
		c.own.SetDoubt()
		c.doubt = false
	}
	c.open = true
	return nil
}

// ensureDTU makes our client on the DTU's current session. A DTU that redialled has a new session: the
// next request takes it at once instead of failing once on the old one.
func (c *conn) ensureDTU(timeout time.Duration) error {
	if c.open {
		if s, ok := c.session.(*dtu.Conn); !ok || s.Alive() {
			c.own.Timeout = timeout
			return nil
		}
		c.closeLocked()
	}
	if c.dtus == nil {
		return device.NewError(device.ErrNotConnected, dtu.ErrNotConnected)
	}
	s, err := c.dtus.Dial(c.activeEndpoint())
	if err != nil {
		if !c.down {
			c.logger.Warn("DTU not connected; its devices are down (not_connected) until it dials in", zap.Error(err))
		}
		c.down = true
		c.nextOnFail()
		return device.NewError(device.ErrNotConnected, err)
	}
	c.connected()
	c.session = s
	c.own = mb.NewClient(s, c.spec.framing(), c.clock)
	c.own.Timeout = timeout
	if c.spec.baud > 0 && c.spec.dtuFrame != framingTCP {
		c.own.CharTime = c.spec.user("").Line.CharTime()
	}
	if c.doubt {
		c.own.SetDoubt()
		c.doubt = false
	}
	c.open = true
	return nil
}

func (c *conn) failed(err error) {
	if !c.down {
		c.logger.Warn("Cannot open Modbus connection", zap.Error(err))
	}
	c.down = true
}

func (c *conn) opened() {
	if c.down {
		c.logger.Info("Modbus connection open again")
	}
	c.down = false
}

// read performs one read of count registers or bits from start of unit: registers are returned as
// they came off the wire (big-endian pairs), bits one per value (0 or 1).
func (c *conn) read(ctx context.Context, timeout time.Duration, unit uint8, table Table, start, count int, regs []uint16) ([]uint16, error) {
	if err := c.ensure(ctx, timeout); err != nil {
		return regs, err
	}
	// Shutdown may drop the clients meanwhile: this poll uses the ones it opened.
	c.mu.Lock()
	own, client := c.own, c.client
	c.mu.Unlock()
	if own == nil && client == nil {
		return regs, device.NewError(device.ErrConnection, net.ErrClosed)
	}
	if own != nil {
		data, err := own.Read(ctx, unit, byte(functionCodes[table]), uint16(start), uint16(count))
		if err != nil {
			if de, _ := classify(err); device.Resync(de) && c.port != nil {
				c.port.Doubt()
			}
			return regs, err
		}
		regs = regs[:0]
		if table == TableHolding || table == TableInput {
			for i := 0; i+1 < len(data); i += 2 {
				regs = append(regs, uint16(data[i])<<8|uint16(data[i+1]))
			}
			return regs, nil
		}
		for _, v := range mb.Bits(data, count) {
			regs = append(regs, b2u(v))
		}
		return regs, nil
	}
	if err := client.SetUnitId(unit); err != nil {
		return regs, err
	}
	switch table {
	case TableHolding, TableInput:
		rt := modbus.HOLDING_REGISTER
		if table == TableInput {
			rt = modbus.INPUT_REGISTER
		}
		// The bytes as they came off the wire (the same request as ReadRegisters, without the
		// library's conversion into a new slice): registers are big-endian on the wire.
		raw, err := client.ReadRawBytes(uint16(start), uint16(2*count), rt)
		if err != nil {
			return regs, err
		}
		if len(raw) != 2*count {
			return regs, device.NewError(device.ErrProtocol, fmt.Errorf("short reply: %d bytes for %d registers", len(raw), count))
		}
		regs = slices.Grow(regs[:0], count)[:count]
		for i := range regs {
			regs[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		return regs, nil
	}
	var bits []bool
	var err error
	if table == TableCoil {
		bits, err = client.ReadCoils(uint16(start), uint16(count))
	} else {
		bits, err = client.ReadDiscreteInputs(uint16(start), uint16(count))
	}
	if err != nil {
		return regs, err
	}
	regs = regs[:0]
	for _, v := range bits {
		regs = append(regs, b2u(v))
	}
	return regs, nil
}

func b2u(v bool) uint16 {
	if v {
		return 1
	}
	return 0
}

func (c *conn) libLogger() *log.Logger {
	lg, err := zap.NewStdLogAt(c.logger.With(zap.String("source", "modbus-library")), zapcore.DebugLevel)
	if err != nil {
		return log.New(io.Discard, "", 0)
	}
	return lg
}

// close closes the connection; the next request opens it again.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *conn) closeLocked() {
	if c.client != nil && c.open {
		_ = c.client.Close()
	}
	if c.session != nil {
		_ = c.session.Close() // a view of the DTU session: closing it only detaches
		c.session = nil
	}
	if c.own != nil && c.open && c.port != nil {
		// The line is closed for every user of the port; the others' next request opens it again.
		c.port.Reset()
	}
	c.own = nil
	c.open = false
}

// leave closes the connection for good. A port other receivers may share is not closed under them
// (another user may be in a transaction): the receiver leaves it after its polls ended, and the last
// user closes it.
func (c *conn) leave() {
	if c.port == nil || c.private {
		c.close()
		for _, h := range c.ports {
			h.Leave()
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.own, c.open = nil, false
}

// resync brings the connection back in step after a framing doubt (device.Resync): it is closed, so
// the next request opens a new one and cannot read the rest of a late or cut reply (the library's
// transaction ids do not help: it skips frames with another id, and takes the body of a cut reply for
// the next header). On an RTU line the late reply may still be on the wire and a gateway forwards it to
// whichever socket is open: the line is waited out first (the longest reply at the line's speed), and
// the library discards what arrived when it opens the port again. The caller holds the link, so no
// other device's request goes out meanwhile.
func (c *conn) resync(ctx context.Context) {
	c.close()
	c.mu.Lock()
	c.doubt = lineScheme(c.spec.scheme) || c.spec.scheme == schemeDTU
	c.mu.Unlock()
	if wait := c.quiet(); wait > 0 {
		ch, stop := c.clock.After(wait)
		defer stop()
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

// quiet is how long a line may still carry a reply: the longest RTU frame (256 bytes, 11 bits each)
// plus the 3.5-character gap (an ASCII reply is longer, but the client's settle waits out the rest). 0 without a known baud rate (TCP, RTU over TCP without baud_rate).
func (c *conn) quiet() time.Duration {
	if !lineScheme(c.spec.scheme) && c.spec.scheme != schemeDTU || c.spec.baud <= 0 {
		return 0
	}
	char := 11 * time.Second / time.Duration(c.spec.baud)
	return 256*char + 35*char/10
}

// exception codes of the library's errors (Modbus application protocol, 7).
var exceptionCodes = map[modbus.Error]int{
	modbus.ErrIllegalFunction:         1,
	modbus.ErrIllegalDataAddress:      2,
	modbus.ErrIllegalDataValue:        3,
	modbus.ErrServerDeviceFailure:     4,
	modbus.ErrAcknowledge:             5,
	modbus.ErrServerDeviceBusy:        6,
	modbus.ErrMemoryParityError:       8,
	modbus.ErrGWPathUnavailable:       10,
	modbus.ErrGWTargetFailedToRespond: 11,
}

// exceptionCode returns the Modbus exception code of err, or 0.
func exceptionCode(err error) int {
	if err == nil {
		return 0
	}
	var me modbus.Error
	if errors.As(err, &me) {
		return exceptionCodes[me]
	}
	var ue *unknownException
	if errors.As(err, &ue) {
		return ue.code
	}
	var oe *mb.Exception
	if errors.As(err, &oe) {
		return int(oe.Code)
	}
	return 0
}

type unknownException struct {
	code int
	err  error
}

func (e *unknownException) Error() string { return e.err.Error() }

// classify maps a library error to a device error type, and tells whether the request may be retried.
func classify(err error) (*device.Error, bool) {
	if err == nil {
		return nil, false
	}
	var de *device.Error
	if errors.As(err, &de) {
		return de, de.Type != device.ErrException
	}
	var oe *mb.Exception
	if errors.As(err, &oe) {
		// Our client's exceptions: classified as the library's of the same code.
		switch oe.Code {
		case 11:
			return device.NewError(device.ErrTimeout, err), true
		case 10:
			return device.NewError(device.ErrConnection, err), false
		case 5, 6:
			return device.NewError(device.ErrException, err), true
		}
		return device.NewError(device.ErrException, err), false
	}
	switch {
	case errors.Is(err, mb.ErrChecksum):
		return device.NewError(device.ErrChecksum, err), true
	case errors.Is(err, mb.ErrFrame), errors.Is(err, mb.ErrProtocol):
		return device.NewError(device.ErrProtocol, err), true
	}
	switch {
	case errors.Is(err, modbus.ErrRequestTimedOut), errors.Is(err, os.ErrDeadlineExceeded):
		return device.NewError(device.ErrTimeout, err), true
	case errors.Is(err, modbus.ErrGWTargetFailedToRespond):
		// The gateway answered for a device that did not: the device is silent.
		return device.NewError(device.ErrTimeout, err), true
	case errors.Is(err, modbus.ErrGWPathUnavailable):
		return device.NewError(device.ErrConnection, err), false
	case errors.Is(err, modbus.ErrServerDeviceBusy), errors.Is(err, modbus.ErrAcknowledge):
		return device.NewError(device.ErrException, err), true
	case errors.Is(err, modbus.ErrIllegalFunction), errors.Is(err, modbus.ErrIllegalDataAddress),
		errors.Is(err, modbus.ErrIllegalDataValue), errors.Is(err, modbus.ErrServerDeviceFailure),
		errors.Is(err, modbus.ErrMemoryParityError):
		return device.NewError(device.ErrException, err), false
	case errors.Is(err, modbus.ErrBadCRC):
		return device.NewError(device.ErrChecksum, err), true
	case errors.Is(err, modbus.ErrBadUnitId), errors.Is(err, modbus.ErrShortFrame),
		errors.Is(err, modbus.ErrProtocolError), errors.Is(err, modbus.ErrBadTransactionId),
		errors.Is(err, modbus.ErrUnknownProtocolId):
		// On RTU a reply from another unit aborts the request: answer of someone else, try again.
		return device.NewError(device.ErrProtocol, err), true
	case errors.Is(err, modbus.ErrConfigurationError), errors.Is(err, modbus.ErrUnexpectedParameters):
		return device.NewError(device.ErrProtocol, err), false
	case strings.HasPrefix(err.Error(), "unknown exception code"):
		var code int
		_, _ = fmt.Sscanf(err.Error(), "unknown exception code (%d)", &code)
		return device.NewError(device.ErrException, &unknownException{code: code, err: err}), false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return device.NewError(device.ErrTimeout, err), true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || errors.As(err, new(*net.OpError)) {
		return device.NewError(device.ErrConnection, err), true
	}
	return device.NewError(device.ErrConnection, err), true
}
