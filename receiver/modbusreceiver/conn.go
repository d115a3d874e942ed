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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
)

// conn is one connection (socket or serial port) shared by the devices behind it. Its Link lets one
// poll use it at a time, so the client's unit id and the open socket belong to that poll.
type conn struct {
	spec   *connSpec
	link   *poll.Link
	clock  clock.Clock
	logger *zap.Logger

	mu      sync.Mutex
	client  *modbus.ModbusClient
	timeout time.Duration // of client
	open    bool
	down    bool // last open failed (logged once)
}

func newConn(spec *connSpec, clock clock.Clock, logger *zap.Logger) *conn {
	return &conn{
		spec:   spec,
		link:   poll.NewLink(clock, 1, spec.gap),
		clock:  clock,
		logger: logger.With(zap.String("endpoint", spec.endpoint)),
	}
}

// ensure returns an open client whose request timeout is timeout. The library fixes the timeout when
// the client is made, so a device with another timeout than the previous one gets a new client.
func (c *conn) ensure(timeout time.Duration) (*modbus.ModbusClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open && c.timeout == timeout {
		return c.client, nil
	}
	c.closeLocked()
	cfg := &modbus.ClientConfiguration{
		URL:     c.spec.scheme + "://" + c.spec.address,
		Timeout: timeout,
		// The library writes to stdout without a logger; its messages are about attempts: debug level.
		Logger: c.libLogger(),
	}
	switch c.spec.scheme {
	case "rtu":
		cfg.Speed = uint(c.spec.baud)
		cfg.DataBits = uint(c.spec.dataBits)
		cfg.Parity = c.spec.parity
		cfg.StopBits = uint(c.spec.stopBits)
	case "rtuovertcp":
		if c.spec.baud > 0 {
			cfg.Speed = uint(c.spec.baud)
		}
	case "tcp+tls":
		// Loaded at creation (configtls); the certificate is read again per tls.reload_interval.
		cert, err := c.spec.tls.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			return nil, device.NewError(device.ErrConnection, fmt.Errorf("loading tls.cert_file/key_file: %w", err))
		}
		cfg.TLSClientCert, cfg.TLSRootCAs = cert, c.spec.tls.RootCAs
	}
	client, err := modbus.NewClient(cfg)
	if err != nil {
		return nil, device.NewError(device.ErrConnection, fmt.Errorf("configuring client: %w", err))
	}
	if err := client.Open(); err != nil {
		if !c.down {
			c.logger.Warn("Cannot open Modbus connection", zap.Error(err))
		}
		c.down = true
		return nil, device.NewError(device.ErrConnection, err)
	}
	if c.down {
		c.logger.Info("Modbus connection open again")
	}
	c.down = false
	c.client, c.timeout, c.open = client, timeout, true
	return client, nil
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
	c.open = false
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
	if wait := c.quiet(); wait > 0 {
		ch, stop := c.clock.After(wait)
		defer stop()
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

// quiet is how long an RTU line may still carry a reply: the longest RTU frame (256 bytes, 11 bits
// each) plus the 3.5-character gap. 0 without a known baud rate (TCP, RTU over TCP without baud_rate).
func (c *conn) quiet() time.Duration {
	if c.spec.scheme != "rtu" && c.spec.scheme != "rtuovertcp" || c.spec.baud <= 0 {
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
