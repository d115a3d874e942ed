package dlt645

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Link is a byte stream to a line of meters: a serial port or a TCP
// connection to a transparent serial server. net.Conn is a Link.
type Link interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// Errors of a transaction.
var (
	// ErrTimeout: no answer in time (wraps os.ErrDeadlineExceeded).
	ErrTimeout = fmt.Errorf("dlt645: no answer in time: %w", os.ErrDeadlineExceeded)
	// ErrTooManyFrames: a meter kept announcing follow-up frames.
	ErrTooManyFrames = errors.New("dlt645: too many follow-up frames")
)

// Client performs one transaction at a time on a Link: it wakes the line
// up, sends a request, keeps at least Gap of silence between frames, and
// waits for the answer, skipping noise and frames that are not the answer.
// A Client is not safe for concurrent use: a line carries one transaction at
// a time.
type Client struct {
	link Link

	// Preamble is the number of FE wake-up bytes sent before each request.
	Preamble int
	// Timeout is how long a meter has to start answering once the request
	// has left the line.
	Timeout time.Duration
	// Gap is the least silence kept between the end of one frame on the line
	// and the next request.
	Gap time.Duration
	// CharTime is the time one byte takes on the line (serial: bits per
	// character / baud rate; TCP: 0). It stretches the timeout by the time the
	// request and the answer need on the wire.
	CharTime time.Duration
	// MaxFollowUps bounds the follow-up frames of one read.
	MaxFollowUps int

	split  Splitter
	buf    []byte
	out    []byte
	quiet  time.Time // when the line was last busy
	doubt  bool      // the last transaction left the line out of step: settle before the next
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	counts Counts
}

// Counts are the running totals of a client, for health metrics and spans.
type Counts struct {
	Requests   uint64 // frames sent
	BytesOut   uint64
	BytesIn    uint64
	Skipped    uint64 // well-formed frames that were not the awaited answer
	Timeouts   uint64
	Noise      uint64 // bytes of line noise skipped
	Rejected   uint64 // frames dropped for a bad checksum or end byte
	FollowUps  uint64 // follow-up requests sent
	MeterError uint64 // error replies
	Settled    uint64 // times the line was waited out after a failed transaction
	Discarded  uint64 // bytes discarded while waiting it out
}

// NewClient returns a client with the standard's habits: four wake-up bytes,
// 500 ms to answer, 20 ms between frames.
func NewClient(link Link) *Client {
	return &Client{
		link:         link,
		Preamble:     4,
		Timeout:      500 * time.Millisecond,
		Gap:          20 * time.Millisecond,
		MaxFollowUps: 32,
		now:          time.Now,
		sleep:        sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts returns the running totals.
func (c *Client) Counts() Counts {
	n := c.counts
	n.Noise = c.split.Noise()
	n.Rejected = c.split.Rejected()
	return n
}

// wire is the time n bytes take on the line.
func (c *Client) wire(n int) time.Duration { return time.Duration(n) * c.CharTime }

// send waits for the gap and writes req.
func (c *Client) send(ctx context.Context, req Frame) error {
	if c.doubt {
		if err := c.settle(ctx); err != nil {
			return err
		}
	}
	if err := c.sleep(ctx, c.Gap-c.now().Sub(c.quiet)); err != nil {
		return err
	}
	var err error
	c.out, err = req.Append(c.out[:0], c.Preamble)
	if err != nil {
		return err
	}
	// Whatever is left from earlier traffic cannot be the answer to this.
	c.split.Reset()
	if _, err := c.link.Write(c.out); err != nil {
		c.doubt = true
		return err
	}
	c.counts.Requests++
	c.counts.BytesOut += uint64(len(c.out))
	c.quiet = c.now().Add(c.wire(len(c.out)))
	return nil
}

// settle brings the line back in step after a transaction that failed other than with a meter's
// error reply (a timeout, a frame that failed its checksum or did not fit, a broken or cancelled
// exchange, a stray answer; the rule of device.Resync): a late answer, or the rest of a cut one, may
// still be coming and must not be taken for the next answer (a late answer to the same identifier of
// the same meter would pass every check). It reads and discards until the line has been silent for
// the inter-frame gap plus four characters, so a frame still on the wire is waited out to its end; a
// line that never falls silent (noise) is left to the splitter after the timeout plus the longest
// frame's wire time.
func (c *Client) settle(ctx context.Context) error {
	quiet := c.Gap + 4*c.CharTime
	if quiet <= 0 {
		quiet = time.Millisecond
	}
	limit := c.now().Add(c.Timeout + c.wire(MaxFrameLen+c.Preamble))
	if cap(c.buf) == 0 {
		c.buf = make([]byte, 512)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.link.SetReadDeadline(time.Now()) })
	defer stop()
	c.counts.Settled++
	for {
		deadline := c.now().Add(quiet)
		if deadline.After(limit) {
			deadline = limit
		}
		if err := c.link.SetReadDeadline(deadline); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := c.link.Read(c.buf[:cap(c.buf)])
		c.counts.BytesIn += uint64(n)
		c.counts.Discarded += uint64(n)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			break
		}
		if !c.now().Before(limit) {
			break
		}
	}
	c.split.Reset()
	c.doubt = false
	c.quiet = c.now()
	return nil
}

// Broadcast sends a frame no meter answers (broadcast time sync).
func (c *Client) Broadcast(ctx context.Context, req Frame) error {
	return c.send(ctx, req)
}

// Exchange sends req and returns the first frame that answers it.
func (c *Client) Exchange(ctx context.Context, req Frame) (Frame, error) {
	return c.exchange(ctx, req, func(f Frame) bool { return IsReplyTo(req, f) })
}

// sameDI accepts a reply to a read only if it carries the identifier asked for
// (error replies carry none): a late answer to an earlier request of the same
// meter is skipped, not taken for this one.
func sameDI(v Version, req Frame) func(Frame) bool {
	return func(f Frame) bool {
		if !IsReplyTo(req, f) {
			return false
		}
		if f.Control.IsAbnormal() {
			return true
		}
		n := v.DISize()
		return len(f.Data) >= n && len(req.Data) >= n && string(f.Data[:n]) == string(req.Data[:n])
	}
}

func (c *Client) exchange(ctx context.Context, req Frame, match func(Frame) bool) (f Frame, err error) {
	// Anything but a clean answer leaves the line in doubt; so does an answer that came after a stray
	// answer (a duplicate or late one: its twin may follow). An echo of the request does not.
	stray := false
	defer func() {
		if err != nil || stray {
			c.doubt = true
		}
	}()
	if err := c.send(ctx, req); err != nil {
		return Frame{}, err
	}
	start := c.now()
	firstByte := start.Add(c.wire(len(c.out)) + c.Timeout)
	whole := firstByte.Add(c.wire(MaxFrameLen + c.Preamble))
	if d, ok := ctx.Deadline(); ok && d.Before(firstByte) {
		firstByte, whole = d, d
	} else if ok && d.Before(whole) {
		whole = d
	}
	rejected := c.split.Rejected()
	got := false
	if cap(c.buf) == 0 {
		c.buf = make([]byte, 512)
	}
	// A cancelled context wakes a waiting read at once.
	stop := context.AfterFunc(ctx, func() { _ = c.link.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		for {
			f, ok := c.split.Next()
			if !ok {
				break
			}
			if match(f) {
				c.quiet = c.now()
				return f, nil
			}
			c.counts.Skipped++
			stray = stray || f.Control.IsReply()
		}
		deadline := firstByte
		if got {
			deadline = whole
		}
		if err := c.link.SetReadDeadline(deadline); err != nil {
			return Frame{}, err
		}
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		n, err := c.link.Read(c.buf[:cap(c.buf)])
		if n > 0 {
			got = true
			c.counts.BytesIn += uint64(n)
			_, _ = c.split.Write(c.buf[:n]) // a Splitter never fails a write
		}
		if err != nil {
			c.quiet = c.now()
			if ctx.Err() != nil {
				return Frame{}, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.counts.Timeouts++
				if c.split.Rejected() > rejected {
					return Frame{}, fmt.Errorf("%w: no good answer in time, only frames that failed their checksum", ErrChecksum)
				}
				return Frame{}, ErrTimeout
			}
			return Frame{}, err
		}
	}
}

// Result is the value of one read, joined from all its frames.
type Result struct {
	DI     DI
	Value  []byte
	Frames int // 1 + follow-up frames
}

// Read reads one identifier from the meter at addr, following up while the
// meter says more frames hold the rest. A meter's error reply is returned as
// a *MeterError.
func (c *Client) Read(ctx context.Context, v Version, addr Address, di DI) (Result, error) {
	return c.read(ctx, v, addr, di, ReadRequest(v, addr, di))
}

// read sends the read request req (which may carry more than the identifier: a load-profile
// read's count and start time) and follows up.
func (c *Client) read(ctx context.Context, v Version, addr Address, di DI, req Frame) (Result, error) {
	res := Result{DI: di}
	for seq := 0; ; seq++ {
		if seq > 0 {
			if seq > c.MaxFollowUps {
				c.doubt = true // the meter still has frames to send
				return res, ErrTooManyFrames
			}
			req = FollowUpRequest(v, addr, di, byte(seq))
			c.counts.FollowUps++
		}
		f, err := c.exchange(ctx, req, sameDI(v, req))
		if err != nil {
			return res, err
		}
		r, err := ParseReadReply(v, req, f)
		if err != nil {
			c.doubt = true
			return res, err
		}
		res.Frames++
		if r.Err != nil {
			c.counts.MeterError++
			return res, r.Err
		}
		res.Value = append(res.Value, r.Value...)
		if !r.More {
			return res, nil
		}
	}
}

// ReadAddress asks the only meter on the line for its address: 2007 with the
// read-address command; 1997 (which has none) by reading forward active
// energy from the wildcard address and taking the address of the reply.
func (c *Client) ReadAddress(ctx context.Context, v Version) (Address, error) {
	if v == V1997 {
		req := ReadRequest(V1997, WildcardAddress, DIForwardActive1997)
		f, err := c.Exchange(ctx, req)
		if err != nil {
			return Address{}, err
		}
		if _, err := ParseReadReply(V1997, req, f); err != nil {
			return Address{}, err
		}
		return f.Address, nil
	}
	f, err := c.Exchange(ctx, ReadAddressRequest())
	if err != nil {
		return Address{}, err
	}
	a, err := ParseAddressReply(f)
	if err != nil {
		c.doubt = true
	}
	return a, err
}
