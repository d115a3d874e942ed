package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// Link is a byte stream to one or more devices: a serial port, a TCP connection to a device or a
// transparent serial server, a DTU's socket. net.Conn is a Link.
type Link interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// Function codes of the reads.
const (
	ReadCoils            byte = 1
	ReadDiscreteInputs   byte = 2
	ReadHoldingRegisters byte = 3
	ReadInputRegisters   byte = 4
)

// ErrTimeout: no answer in time (wraps os.ErrDeadlineExceeded).
var ErrTimeout = fmt.Errorf("modbus: no answer in time: %w", os.ErrDeadlineExceeded)

// ErrProtocol: a well-framed reply that does not answer the request (another unit, another function,
// a wrong byte count, an unexpected transaction id).
var ErrProtocol = errors.New("modbus: unexpected reply")

// Exception is a device's exception reply (Modbus application protocol, 7). The stream is in step.
type Exception struct {
	Function byte
	Code     byte
}

func (e *Exception) Error() string {
	name := exceptionNames[e.Code]
	if name == "" {
		name = "unknown exception"
	}
	return fmt.Sprintf("modbus: exception %d (%s) to function %d", e.Code, name, e.Function)
}

var exceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
	5: "acknowledge", 6: "server device busy", 8: "memory parity error",
	10: "gateway path unavailable", 11: "gateway target device failed to respond",
}

// Client performs one transaction at a time over a Link. It is not safe for concurrent use: a line
// carries one transaction at a time (a shared port serialises its users above the client).
type Client struct {
	link    Link
	framing Framing
	clock   clock.Clock

	// Timeout is how long a device has to answer once the request has left the line.
	Timeout time.Duration
	// CharTime is the time one byte takes on the line (0 on TCP): it stretches the timeout by the
	// request's and the reply's wire time, and gives RTU's 3.5-character gap.
	CharTime time.Duration

	txID  uint16
	out   []byte
	in    []byte
	buf   []byte
	quiet time.Time // when the line was last busy
	doubt bool      // the last transaction left the stream out of step: settle before the next
}

// NewClient returns a client of framing over link; c is the clock of the inter-frame gap.
func NewClient(link Link, framing Framing, c clock.Clock) *Client {
	if c == nil {
		c = clock.Real{}
	}
	return &Client{link: link, framing: framing, clock: c, Timeout: time.Second, buf: make([]byte, 512)}
}

// Gap is the silence kept before a request: 3.5 characters on an RTU line (1.75 ms above 19200 baud,
// as the standard fixes it), none otherwise.
func (c *Client) Gap() time.Duration {
	if c.framing != RTU || c.CharTime <= 0 {
		return 0
	}
	g := 35 * c.CharTime / 10
	if g < 1750*time.Microsecond && c.CharTime < 11*time.Second/19200 {
		g = 1750 * time.Microsecond
	}
	return g
}

// InDoubt tells whether the next transaction first waits the line out (a late or cut reply may come).
func (c *Client) InDoubt() bool { return c.doubt }

// SetDoubt marks the stream out of step: the next transaction waits the line out first.
func (c *Client) SetDoubt() { c.doubt = true }

func (c *Client) wire(n int) time.Duration { return time.Duration(n) * c.CharTime }

// Read reads count registers (functions 3 and 4) or bits (1 and 2) from address of unit, and returns
// the data bytes of the reply: registers big-endian, bits packed low bit first.
func (c *Client) Read(ctx context.Context, unit, function byte, address, count uint16) ([]byte, error) {
	var want int
	switch function {
	case ReadHoldingRegisters, ReadInputRegisters:
		if count < 1 || count > 125 {
			return nil, fmt.Errorf("modbus: %d registers in one read (1 to 125)", count)
		}
		want = 2 * int(count)
	case ReadCoils, ReadDiscreteInputs:
		if count < 1 || count > 2000 {
			return nil, fmt.Errorf("modbus: %d bits in one read (1 to 2000)", count)
		}
		want = (int(count) + 7) / 8
	default:
		return nil, fmt.Errorf("modbus: function %d is not a read", function)
	}
	pdu := []byte{function, byte(address >> 8), byte(address), byte(count >> 8), byte(count)}
	reply, err := c.Do(ctx, unit, pdu, 2+want)
	if err != nil {
		return nil, err
	}
	if len(reply) != 2+want || int(reply[1]) != want {
		c.doubt = true
		return nil, fmt.Errorf("%w: %d data bytes for %d values of function %d", ErrProtocol, len(reply)-2, count, function)
	}
	return reply[2:], nil
}

// Bits unpacks n bits of a coil or discrete-input reply.
func Bits(data []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		if i/8 < len(data) {
			out[i] = data[i/8]&(1<<(i%8)) != 0
		}
	}
	return out
}

// Do sends pdu to unit and returns the reply's PDU; replyLen is the expected reply PDU length (for
// the timeout; 0: the longest). An exception reply is an *Exception. Any other failure leaves the
// stream in doubt: the next transaction first waits until the line is silent and drops what came.
func (c *Client) Do(ctx context.Context, unit byte, pdu []byte, replyLen int) (reply []byte, err error) {
	defer func() {
		var ex *Exception
		if err != nil && !errors.As(err, &ex) {
			c.doubt = true
		}
	}()
	if c.doubt {
		if err := c.Settle(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.waitGap(ctx); err != nil {
		return nil, err
	}
	c.txID++
	c.out = c.framing.Append(c.out[:0], Frame{TxID: c.txID, Unit: unit, PDU: pdu})
	if _, err := c.link.Write(c.out); err != nil {
		return nil, err
	}
	if replyLen <= 0 {
		replyLen = MaxPDU
	}
	deadline := time.Now().Add(c.wire(len(c.out)+c.framing.Wire(replyLen)) + c.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// A cancelled context wakes a waiting read at once.
	stop := context.AfterFunc(ctx, func() { _ = c.link.SetReadDeadline(time.Now()) })
	defer stop()
	c.in = c.in[:0]
	for {
		f, n, derr := c.framing.Decode(c.in)
		if errors.Is(derr, ErrNoise) {
			// ASCII marks where a frame starts: a stray byte (a line's idle noise, an echo's CR LF)
			// costs nothing but itself.
			c.in = c.in[:copy(c.in, c.in[n:])]
			continue
		}
		if derr != nil {
			return nil, derr
		}
		if n > 0 {
			c.in = c.in[:copy(c.in, c.in[n:])]
			if c.framing == MBAP && f.TxID != c.txID {
				// A late reply to an earlier request: skip it, the stream stays in doubt.
				c.doubt = true
				continue
			}
			c.quiet = c.clock.Now()
			return c.check(unit, pdu[0], f)
		}
		if err := c.link.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, rerr := c.link.Read(c.buf)
		c.in = append(c.in, c.buf[:m]...)
		if rerr != nil {
			c.quiet = c.clock.Now()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				if len(c.in) > 0 {
					return nil, fmt.Errorf("%w: %d bytes of a reply, then silence", ErrTimeout, len(c.in))
				}
				return nil, ErrTimeout
			}
			return nil, rerr
		}
	}
}

// check matches a reply frame to the request's unit and function.
func (c *Client) check(unit, function byte, f Frame) ([]byte, error) {
	if f.Unit != unit {
		return nil, fmt.Errorf("%w: reply from unit %d to a request to unit %d", ErrProtocol, f.Unit, unit)
	}
	if len(f.PDU) == 0 {
		return nil, fmt.Errorf("%w: empty reply", ErrProtocol)
	}
	if f.PDU[0] == function|0x80 {
		if len(f.PDU) != 2 {
			return nil, fmt.Errorf("%w: exception reply of %d bytes", ErrProtocol, len(f.PDU))
		}
		return nil, &Exception{Function: function, Code: f.PDU[1]}
	}
	if f.PDU[0] != function {
		return nil, fmt.Errorf("%w: reply of function %d to function %d", ErrProtocol, f.PDU[0], function)
	}
	return f.PDU, nil
}

// waitGap keeps the inter-frame silence since the line was last busy.
func (c *Client) waitGap(ctx context.Context) error {
	wait := c.Gap() - c.clock.Now().Sub(c.quiet)
	if wait <= 0 {
		return ctx.Err()
	}
	ch, stop := c.clock.After(wait)
	defer stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Settle brings the stream back in step after a doubt (device.Resync): it reads and discards until
// the line has been silent for the gap plus four characters (at least 1 ms), so a late or cut reply
// still on the wire is waited out; a line that never falls silent is given up on after the timeout
// plus the longest frame's wire time, and the framing's resync skips the rest.
func (c *Client) Settle(ctx context.Context) error {
	quiet := c.Gap() + 4*c.CharTime
	if quiet < time.Millisecond {
		quiet = time.Millisecond
	}
	limit := time.Now().Add(c.Timeout + c.wire(MaxASCII))
	stop := context.AfterFunc(ctx, func() { _ = c.link.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		deadline := time.Now().Add(quiet)
		if deadline.After(limit) {
			deadline = limit
		}
		if err := c.link.SetReadDeadline(deadline); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := c.link.Read(c.buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			break
		}
		if !time.Now().Before(limit) {
			break
		}
	}
	c.in = c.in[:0]
	c.doubt = false
	c.quiet = c.clock.Now()
	return nil
}
