package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestResync(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{NewError(ErrException, errors.New("illegal data address")), false},
		{NewError(ErrDecode, errors.New("not BCD")), false},
		{NewError(ErrBadStatus, errors.New("BadNodeIdUnknown")), false},
		{NewError(ErrUncertain, errors.New("uncertain")), false},
		{NewError(ErrUnsupportedType, errors.New("struct")), false},
		{NewError(ErrTimeout, errors.New("request timed out")), true},
		{NewError(ErrProtocol, errors.New("unexpected transaction id")), true},
		{NewError(ErrChecksum, errors.New("bad crc")), true},
		{NewError(ErrConnection, io.EOF), true},
		{fmt.Errorf("read: %w", NewError(ErrProtocol, errors.New("short frame"))), true},
		// Unclassified: a deadline is a timeout, anything else a connection error.
		{os.ErrDeadlineExceeded, true},
		{context.Canceled, true},
	} {
		assert.Equal(t, tc.want, Resync(tc.err), "%v", tc.err)
	}
}
