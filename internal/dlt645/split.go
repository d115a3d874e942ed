package dlt645

import (
	"bytes"
	"errors"
)

// Splitter finds frames in a byte stream. It is driven by the length byte, so
// a 16 inside the data does not end a frame; it skips bytes that cannot start
// a frame (wake-up bytes, line noise, the tail of a frame it cannot use),
// rejects frames whose checksum or end byte is wrong and resynchronises on the
// next 68. Feed it with Write and take frames with Next. The zero value is
// ready to use. A Splitter is not safe for concurrent use.
type Splitter struct {
	buf      []byte
	noise    uint64
	rejected uint64
}

// Write appends bytes read from the line. It never fails.
func (s *Splitter) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	return len(p), nil
}

// Reset drops everything buffered (counters are kept).
func (s *Splitter) Reset() { s.buf = s.buf[:0] }

// Buffered is the number of bytes waiting for the rest of a frame.
func (s *Splitter) Buffered() int { return len(s.buf) }

// Noise is the number of bytes skipped so far that were neither part of a
// good frame nor wake-up bytes.
func (s *Splitter) Noise() uint64 { return s.noise }

// Rejected is the number of frame candidates dropped so far for a bad
// checksum or end byte.
func (s *Splitter) Rejected() uint64 { return s.rejected }

// Next returns the next complete, well-formed frame, or false when more bytes
// are needed.
func (s *Splitter) Next() (Frame, bool) {
	for {
		i := bytes.IndexByte(s.buf, StartByte)
		if i < 0 {
			s.drop(len(s.buf))
			return Frame{}, false
		}
		s.drop(i)
		f, n, err := decodeAt(s.buf)
		switch {
		case err == nil:
			s.consume(n)
			return f, true
		case errors.Is(err, ErrShort):
			// Either the frame is still arriving, or this 68 was noise that
			// promises a length the line will never deliver. A complete good
			// frame further on settles it without waiting.
			if j, f, n, ok := s.later(); ok {
				s.drop(j)
				s.consume(n)
				return f, true
			}
			return Frame{}, false
		case errors.Is(err, ErrChecksum), errors.Is(err, ErrEnd):
			s.rejected++
			s.drop(1)
		default: // ErrStart: second 68 missing
			s.drop(1)
		}
	}
}

// later looks for a complete good frame after the first byte of the buffer.
func (s *Splitter) later() (int, Frame, int, bool) {
	for j := 1; j < len(s.buf); j++ {
		if s.buf[j] != StartByte {
			continue
		}
		if f, n, err := decodeAt(s.buf[j:]); err == nil {
			return j, f, n, true
		}
	}
	return 0, Frame{}, 0, false
}

// drop discards n bytes as noise (wake-up bytes are not counted).
func (s *Splitter) drop(n int) {
	for _, c := range s.buf[:n] {
		if c != WakeUp {
			s.noise++
		}
	}
	s.consume(n)
}

func (s *Splitter) consume(n int) {
	rest := copy(s.buf, s.buf[n:])
	s.buf = s.buf[:rest]
}
