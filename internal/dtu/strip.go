package dtu

import (
	"bytes"
	"sync/atomic"
)

// stripper removes heartbeat packets (and repeated registration packets) from a DTU's byte stream. A
// DTU may send its heartbeat between two TCP segments of a device's reply, so patterns are removed
// wherever they occur, also when split across reads: a tail that may be the start of a pattern is
// held back until the next read tells (or flush releases it, when nothing more arrives).
type stripper struct {
	patterns [][]byte
	pending  []byte
	out      []byte
	stripped atomic.Uint64 // patterns removed (read by Stats while the session runs)
}

// feed takes the bytes of one read and returns those that belong to the protocol stream. The result
// is valid until the next call.
func (s *stripper) feed(b []byte) []byte {
	data := append(s.pending, b...)
	s.out = s.out[:0]
	i := 0
scan:
	for i < len(data) {
		rest := data[i:]
		for _, p := range s.patterns {
			if bytes.HasPrefix(rest, p) {
				i += len(p)
				s.stripped.Add(1)
				continue scan
			}
		}
		for _, p := range s.patterns {
			if len(rest) < len(p) && bytes.HasPrefix(p, rest) {
				break scan // maybe a pattern cut by the read: wait for more
			}
		}
		s.out = append(s.out, data[i])
		i++
	}
	s.pending = append(s.pending[:0:0], data[i:]...)
	return s.out
}

// held tells whether a tail is held back.
func (s *stripper) held() bool { return len(s.pending) > 0 }

// flush releases the held tail: nothing followed it in time, so it was protocol data.
func (s *stripper) flush() []byte {
	out := s.pending
	s.pending = nil
	return out
}

// add makes p a pattern too (the registration packet, which some DTUs repeat as their heartbeat).
func (s *stripper) add(p []byte) {
	if len(p) < 2 {
		return // too short to tell from data
	}
	for _, q := range s.patterns {
		if bytes.Equal(p, q) {
			return
		}
	}
	s.patterns = append(s.patterns, bytes.Clone(p))
}
