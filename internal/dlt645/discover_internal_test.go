package dlt645

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A late answer to the request before, waited out (discarded) by the client before the next request,
// is not that request's answer: the next request, unanswered, heard nothing, not a garble (which would
// send the search a byte deeper, 100 requests for nothing).
func TestClientSearchLateAnswerIsNoGarble(t *testing.T) {
	// TCP, not a pipe: the late answer sits in the socket while the client writes the next request.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	b, err := l.Accept()
	require.NoError(t, err)
	l.Close()
	t.Cleanup(func() { a.Close() })
	meter := Address{1}
	n := 0
	meterEnd(t, b, func(req Frame) [][]byte {
		if n++; n > 1 {
			return nil // silent
		}
		// The first answer comes when the client has given up on it, half-way through the time
		// it waits the line out.
		time.Sleep(150 * time.Millisecond) //nolint:forbidigo // the meter answers late: the delay is the fault, not a wait
		late, _ := ReadResponse(V2007, meter, 0x00010000, []byte{0, 0, 0, 0}, false).Encode(4)
		return [][]byte{late}
	})
	c := NewClient(a)
	// The line is waited out for the gap: from the timeout at 100 ms to past the answer at 150 ms.
	c.Gap, c.Timeout = 100*time.Millisecond, 100*time.Millisecond
	x := ClientSearch(c)
	_, h, err := x(context.Background(), SearchRequest(V2007, Address{0x01, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}))
	require.NoError(t, err)
	assert.Equal(t, HeardNothing, h, "the answer came too late")
	_, h, err = x(context.Background(), SearchRequest(V2007, Address{0x02, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}))
	require.NoError(t, err)
	assert.Equal(t, HeardNothing, h, "bytes waited out before the request are not its answer")
	assert.Positive(t, c.Counts().Discarded, "the late answer was waited out")
}
