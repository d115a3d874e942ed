package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// ErrorType is the error.type attribute of iiot.device.poll.errors.
type ErrorType string

const (
	ErrTimeout         ErrorType = "timeout"          // no answer in time
	ErrConnection      ErrorType = "connection"       // could not connect, or the connection broke
	ErrException       ErrorType = "exception"        // the device answered with a protocol error (Modbus exception, DL/T 645 error word)
	ErrBadStatus       ErrorType = "bad_status"       // OPC UA Bad status code
	ErrUncertain       ErrorType = "uncertain"        // OPC UA Uncertain: value kept, counted
	ErrDecode          ErrorType = "decode"           // answer did not decode to the configured type
	ErrChecksum        ErrorType = "checksum"         // frame failed its checksum or CRC
	ErrProtocol        ErrorType = "protocol"         // malformed or unexpected frame (wrong unit, wrong length …)
	ErrUnsupportedType ErrorType = "unsupported_type" // value of a type we do not turn into a number
)

// ErrorTypes lists every error type, in the order they are emitted.
var ErrorTypes = []ErrorType{ErrTimeout, ErrConnection, ErrException, ErrBadStatus, ErrUncertain, ErrDecode, ErrChecksum, ErrProtocol, ErrUnsupportedType}

// Answered tells whether an error of this type still shows that the device is alive and talking.
func (t ErrorType) Answered() bool {
	switch t {
	case ErrException, ErrBadStatus, ErrUncertain, ErrDecode, ErrUnsupportedType:
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
