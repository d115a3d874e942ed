package device

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrorType is the error.type attribute of iiot.device.poll.errors.
type ErrorType string

const (
	ErrTimeout         ErrorType = "timeout"          // no answer in time
	ErrConnection      ErrorType = "connection"       // could not connect, or the connection broke
	ErrNotConnected    ErrorType = "not_connected"    // the device's DTU has not dialled in (nothing to connect to)
	ErrException       ErrorType = "exception"        // the device answered with a protocol error (Modbus exception, DL/T 645 error word)
	ErrBadStatus       ErrorType = "bad_status"       // OPC UA Bad status code
	ErrUncertain       ErrorType = "uncertain"        // OPC UA Uncertain: value kept, counted
	ErrDecode          ErrorType = "decode"           // answer did not decode to the configured type
	ErrChecksum        ErrorType = "checksum"         // frame failed its checksum or CRC
	ErrProtocol        ErrorType = "protocol"         // malformed or unexpected frame (wrong unit, wrong length …)
	ErrUnsupportedType ErrorType = "unsupported_type" // value of a type we do not turn into a number
	// ErrField counts, once per poll, each reading left out of the poll because the device refused it
	// on its own earlier (a register it does not have, an unknown or unreadable node, a data identifier
	// the meter lacks) while answering the rest. It is a configuration problem of one reading, not a
	// failing device: alert rules leave it out of the error ratio, and it does not make the poll span an
	// error. The reading is tried again after the receiver's re-probe interval.
	ErrField ErrorType = "field"
)

// ErrorTypes lists every error type, in the order they are emitted.
var ErrorTypes = []ErrorType{ErrTimeout, ErrConnection, ErrNotConnected, ErrException, ErrBadStatus, ErrUncertain, ErrDecode, ErrChecksum, ErrProtocol, ErrUnsupportedType, ErrField}

// Answered tells whether an error of this type still shows that the device is alive and talking.
func (t ErrorType) Answered() bool {
	switch t {
	case ErrException, ErrBadStatus, ErrUncertain, ErrDecode, ErrUnsupportedType, ErrField:
		return true
	}
	return false
}

// Error is a classified poll error.
type Error struct {
	Type ErrorType
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Type, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// NewError classifies err as t.
func NewError(t ErrorType, err error) *Error { return &Error{Type: t, Err: err} }

// Errorf makes a classified error from a message.
func Errorf(t ErrorType, format string, args ...any) *Error {
	return &Error{Type: t, Err: fmt.Errorf(format, args...)}
}

// Classify returns the error type of err: the one it carries if it is (or wraps) an *Error,
// otherwise a guess from the standard library's network errors (timeout, else connection).
// A nil error has no type: "".
func Classify(err error) ErrorType {
	if err == nil {
		return ""
	}
	var de *Error
	if errors.As(err, &de) {
		return de.Type
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ErrTimeout
	}
	return ErrConnection
}

// reasoned is an error that says in a few words what happened.
type reasoned struct {
	err    error
	reason string
}

func (e *reasoned) Error() string  { return e.err.Error() }
func (e *reasoned) Unwrap() error  { return e.err }
func (e *reasoned) Reason() string { return e.reason }

// WithReason attaches to err a short account of what happened for the logs, where the error's type
// alone cannot tell it (e.g. "access denied (BadUserAccessDenied)" for a login the server refused).
// Classify and errors.Is/As see through it.
func WithReason(err error, reason string) error {
	if err == nil {
		return nil
	}
	return &reasoned{err: err, reason: reason}
}

// ErrNoProbe is returned by a Prober that has no cheap way to reach its device (a serial line).
var ErrNoProbe = errors.New("no probe for this transport")

// Reason says in a few words why a poll failed, for the logs: the reason attached by WithReason, else
// what the standard library's errors tell (connection refused or reset, host unreachable, name not
// found, certificate rejected …), else the error type. A nil error has none: "".
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var r interface{ Reason() string }
	if errors.As(err, &r) && r.Reason() != "" {
		return r.Reason()
	}
	var (
		dnsErr    *net.DNSError
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the device"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &dnsErr):
		return "host name not found"
	case errors.As(err, &unknownCA), errors.As(err, &invalid), errors.As(err, &hostname), errors.As(err, &verify):
		return "certificate rejected"
	case errors.As(err, &alert):
		return "TLS handshake refused by the device (" + alert.Error() + ")"
	case errors.Is(err, os.ErrNotExist):
		return "no such port or device"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	switch t := Classify(err); t {
	case ErrTimeout:
		return "no answer within the timeout"
	case ErrConnection:
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
			return "connection closed by the device"
		}
		return "connection failed"
	case ErrChecksum:
		return "corrupted replies (checksum)"
	case ErrProtocol:
		return "malformed or unexpected replies"
	default:
		return string(t)
	}
}
