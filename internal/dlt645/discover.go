package dlt645

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Heard is what a request sent while searching addresses brought back.
type Heard int

const (
	// HeardNothing: silence; no meter matches the address asked.
	HeardNothing Heard = iota
	// HeardAnswer: one whole frame answered (an error reply too: it names its sender).
	HeardAnswer
	// HeardGarble: bytes came back but no answer: several meters answering at once (their frames
	// overlay on the bus), or line noise.
	HeardGarble
)

func (h Heard) String() string {
	switch h {
	case HeardAnswer:
		return "answer"
	case HeardGarble:
		return "garble"
	}
	return "nothing"
}

// SearchExchange sends one request of an address search and tells what came back. An error is the
// line failing (closed, cancelled): it ends the search.
type SearchExchange func(ctx context.Context, req Frame) (Frame, Heard, error)

// ClientSearch is the SearchExchange of a client: a timeout or a checksum failure is nothing or a
// garble by whether a frame's worth of bytes came back besides the echo of the request (RS-485
// adapters that hear themselves); any other error ends the search.
func ClientSearch(c *Client) SearchExchange {
	return func(ctx context.Context, req Frame) (Frame, Heard, error) {
		before := c.Counts()
		f, err := c.Exchange(ctx, req)
		if err == nil {
			return f, HeardAnswer, nil
		}
		if ctx.Err() != nil {
			return Frame{}, HeardNothing, ctx.Err()
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrChecksum) {
			return Frame{}, HeardNothing, err
		}
		after := c.Counts()
		// Bytes waited out before the request (the tail of an earlier garble) are not its answer.
		in := (after.BytesIn - before.BytesIn) - (after.Discarded - before.Discarded)
		if after.Skipped > before.Skipped {
			// An echo is the request as sent, preamble and all.
			in -= min(in, uint64(req.Len(c.Preamble)))
		}
		// Overlaid answers are at least a frame long; a shorter burst is noise, as good as silence.
		if in >= minFrame || errors.Is(err, ErrChecksum) {
			return Frame{}, HeardGarble, nil
		}
		return Frame{}, HeardNothing, nil
	}
}

// minFrame is the length of the shortest frame (no data, no preamble): 68 A0..A5 68 C L CS 16.
const minFrame = 12

// SearchOptions bound an address search.
type SearchOptions struct {
	// Version is the edition the requests are written in: 2007 starts with the read-address command,
	// 1997 (which has none) with a wildcard read of forward active energy.
	Version Version
	// MaxMeters stops the search once this many meters are found (0: no bound).
	MaxMeters int
	// MaxFrames stops the search once this many requests are sent (0: no bound).
	MaxFrames int
}

// SearchResult is what an address search found.
type SearchResult struct {
	// Meters in the order found (the search goes from the lowest address byte, 00 to 99).
	Meters []Address
	// Frames is the number of requests sent.
	Frames int
	// Collided: several meters answered the first request at once, so their addresses were searched.
	Collided bool
	// Stopped names the bound that ended the search early ("max_meters" or "max_frames"); empty when
	// the search completed. Meters holds what was found until then.
	Stopped string
	// Shared are full addresses still answered by garble: two meters configured with one address (or a
	// line so noisy that a single meter never answers cleanly).
	Shared []Address
}

// Complete tells whether the whole address space was searched.
func (r SearchResult) Complete() bool { return r.Stopped == "" }

// errStop ends a search at one of its bounds.
var errStop = errors.New("search bound reached")

// SearchRequest is the request a search sends to the address pattern (wildcard bytes AA): a read of
// forward active energy, which every meter has (a meter that refuses it still names itself in its
// error reply).
func SearchRequest(v Version, pattern Address) Frame {
	return ReadRequest(v, pattern, forwardActive(v))
}

func forwardActive(v Version) DI {
	if v == V1997 {
		return DIForwardActive1997
	}
	return 0x00010000
}

// Search finds the addresses of the meters on a line. The first request goes to every meter (the
// read-address command, or in 1997 a wildcard read): silence is an empty line, an answer its only
// meter. A garble means several meters answered at once; then the addresses are narrowed from the
// lowest byte up, as the standard's abbreviated addressing allows (the bytes not yet fixed left as AA
// wildcards, which meters match byte by byte, so the narrowing goes a digit pair at a time): each of
// the 100 values of the next byte is asked once, an answer is a meter, a garble is several whose
// addresses share those bytes, searched one byte deeper. A garble is asked again before it counts, so
// that a burst of line noise costs one request, not a hundred; an answer counts once the meter has
// answered at its own address too (one request more per meter).
func Search(ctx context.Context, x SearchExchange, opts SearchOptions) (SearchResult, error) {
	s := &searcher{x: x, opts: opts, seen: map[Address]bool{}}
	req := ReadAddressRequest()
	if opts.Version == V1997 {
		req = SearchRequest(V1997, WildcardAddress)
	}
	err := s.first(ctx, req)
	if errors.Is(err, errStop) {
		err = nil
	}
	return s.res, err
}

type searcher struct {
	x    SearchExchange
	opts SearchOptions
	res  SearchResult
	seen map[Address]bool
}

// send sends one request within the frame bound.
func (s *searcher) send(ctx context.Context, req Frame) (Frame, Heard, error) {
	if s.opts.MaxFrames > 0 && s.res.Frames >= s.opts.MaxFrames {
		s.res.Stopped = "max_frames"
		return Frame{}, HeardNothing, errStop
	}
	s.res.Frames++
	return s.x(ctx, req)
}

// ask sends req and, on a garble, once more: a collision of meters repeats, noise seldom does.
func (s *searcher) ask(ctx context.Context, req Frame) (Frame, Heard, error) {
	f, h, err := s.send(ctx, req)
	if err != nil || h != HeardGarble {
		return f, h, err
	}
	return s.send(ctx, req)
}

// found adds the meter that answered a request to pattern, once it has answered at its own address
// too: overlaid answers can, rarely, make a frame that passes its checksum, whose address is a blend of
// the senders'. false: no meter of that address answers, so the answer was a garble.
func (s *searcher) found(ctx context.Context, f Frame, pattern Address) (bool, error) {
	a := f.Address
	if f.Control.Func() == FuncReadAddress2007 && !f.Control.IsAbnormal() {
		if pa, err := ParseAddressReply(f); err == nil {
			a = pa
		}
	}
	// A reply names one meter: no wildcard byte, and one the request reached.
	if slices.Contains(a[:], 0xAA) || a == BroadcastAddress || !pattern.Matches(a) {
		return false, nil
	}
	if s.seen[a] {
		return true, nil
	}
	g, h, err := s.send(ctx, SearchRequest(s.opts.Version, a))
	if err != nil || h != HeardAnswer || g.Address != a {
		return false, err
	}
	s.seen[a] = true
	s.res.Meters = append(s.res.Meters, a)
	if s.opts.MaxMeters > 0 && len(s.res.Meters) >= s.opts.MaxMeters {
		s.res.Stopped = "max_meters"
		return true, errStop
	}
	return true, nil
}

func (s *searcher) first(ctx context.Context, req Frame) error {
	f, h, err := s.ask(ctx, req)
	switch {
	case err != nil:
		return err
	case h == HeardAnswer:
		if ok, err := s.found(ctx, f, WildcardAddress); ok || err != nil {
			return err
		}
	case h == HeardNothing:
		return nil
	}
	s.res.Collided = true
	return s.narrow(ctx, nil)
}

// narrow asks every value of the byte after prefix (the bytes above it wildcards).
func (s *searcher) narrow(ctx context.Context, prefix []byte) error {
	for d := 0; d <= 99; d++ {
		pat := WildcardAddress
		copy(pat[:], prefix)
		pat[len(prefix)] = byte(d/10<<4 | d%10)
		f, h, err := s.ask(ctx, SearchRequest(s.opts.Version, pat))
		if err != nil {
			return err
		}
		if h == HeardAnswer {
			var ok bool
			if ok, err = s.found(ctx, f, pat); err != nil {
				return err
			}
			if !ok {
				h = HeardGarble
			}
		}
		switch {
		case h == HeardGarble && len(prefix) < len(pat)-1:
			err = s.narrow(ctx, pat[:len(prefix)+1])
		case h == HeardGarble:
			s.res.Shared = append(s.res.Shared, pat)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// String summarizes the search for a log line.
func (r SearchResult) String() string {
	s := fmt.Sprintf("%d meters in %d requests", len(r.Meters), r.Frames)
	if r.Stopped != "" {
		s += ", stopped at " + r.Stopped + " (partial)"
	}
	return s
}
