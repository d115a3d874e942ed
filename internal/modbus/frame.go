package modbus

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Frame is one Modbus application data unit: the unit (slave) id and the PDU (function code and
// data). TxID is the MBAP transaction id (0 in RTU and ASCII).
type Frame struct {
	TxID uint16
	Unit byte
	PDU  []byte
}

// Limits of the standard: a PDU is at most 253 bytes, so an RTU frame 256 and an ASCII frame 513
// characters plus CR LF.
const (
	MaxPDU      = 253
	MaxRTUFrame = MaxPDU + 3
	MaxASCII    = 1 + 2*(MaxPDU+2) + 2
	mbapHeader  = 7
)

// Errors of framing. A frame that fails them leaves the stream in doubt (device.Resync).
var (
	// ErrChecksum: a frame failed its CRC or LRC.
	ErrChecksum = errors.New("modbus: frame failed its checksum")
	// ErrFrame: bytes that are not a frame (bad length, bad character, unknown function).
	ErrFrame = errors.New("modbus: malformed frame")
	// ErrNoise: bytes before the ':' of an ASCII frame, which the start character lets a reader skip.
	ErrNoise = fmt.Errorf("%w: noise before an ASCII frame", ErrFrame)
)

// Framing turns PDUs into bytes on the wire and back.
type Framing interface {
	// Name is rtu, ascii or mbap.
	Name() string
	// Append appends the frame of f to dst.
	Append(dst []byte, f Frame) []byte
	// Decode reads the frame at the start of b: its length n, or n == 0 and no error when more bytes
	// are needed. skip > 0 with an error tells how many leading bytes are noise to drop.
	Decode(b []byte) (f Frame, n int, err error)
	// Wire is the number of bytes on the wire of the frame of a PDU of pduLen bytes.
	Wire(pduLen int) int
}

// RTU is binary framing with a CRC; frames are separated by 3.5 characters of silence.
var RTU Framing = rtu{}

// ASCII is hexadecimal framing with an LRC: ':' unit, PDU, LRC, CR LF.
var ASCII Framing = ascii{}

// MBAP is Modbus/TCP framing: transaction id, protocol 0, length, unit id, PDU.
var MBAP Framing = mbap{}

type rtu struct{}

func (rtu) Name() string        { return "rtu" }
func (rtu) Wire(pduLen int) int { return pduLen + 3 }

func (rtu) Append(dst []byte, f Frame) []byte {
	start := len(dst)
	dst = append(dst, f.Unit)
	dst = append(dst, f.PDU...)
	crc := CRC16(dst[start:])
	return append(dst, byte(crc), byte(crc>>8))
}

// Decode reads a reply frame: its length follows from the function code (reads carry a byte count,
// writes are 8 bytes, exceptions 5), as RTU has no length field.
func (rtu) Decode(b []byte) (Frame, int, error) {
	n, err := rtuLength(b)
	if err != nil || n == 0 || len(b) < n {
		return Frame{}, 0, err
	}
	if got, want := uint16(b[n-2])|uint16(b[n-1])<<8, CRC16(b[:n-2]); got != want {
		return Frame{}, n, fmt.Errorf("%w: RTU CRC %04X, computed %04X", ErrChecksum, got, want)
	}
	return Frame{Unit: b[0], PDU: b[1 : n-2]}, n, nil
}

// rtuLength is the length of the reply frame at the start of b, 0 when not known yet.
func rtuLength(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	switch fc := b[1]; {
	case fc&0x80 != 0:
		return 5, nil
	case fc >= 1 && fc <= 4:
		if len(b) < 3 {
			return 0, nil
		}
		return 3 + int(b[2]) + 2, nil
	case fc == 5 || fc == 6 || fc == 15 || fc == 16:
		return 8, nil
	}
	return 0, fmt.Errorf("%w: unknown function code %d in an RTU reply", ErrFrame, b[1])
}

// CRC16 is the Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF), sent low byte first.
func CRC16(data []byte) uint16 {
	crc := uint16(0xffff)
	for _, b := range data {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

type ascii struct{}

func (ascii) Name() string        { return "ascii" }
func (ascii) Wire(pduLen int) int { return 1 + 2*(pduLen+2) + 2 }

func (ascii) Append(dst []byte, f Frame) []byte {
	dst = append(dst, ':')
	lrc := f.Unit
	dst = appendHex(dst, f.Unit)
	for _, c := range f.PDU {
		dst = appendHex(dst, c)
		lrc += c
	}
	dst = appendHex(dst, -lrc)
	return append(dst, '\r', '\n')
}

func appendHex(dst []byte, b byte) []byte {
	const digits = "0123456789ABCDEF"
	return append(dst, digits[b>>4], digits[b&15])
}

// Decode reads the frame at the start of b. Bytes before the ':' are noise: they are reported as a
// frame error covering them, so the caller drops them and looks again.
func (ascii) Decode(b []byte) (Frame, int, error) {
	if len(b) == 0 {
		return Frame{}, 0, nil
	}
	if b[0] != ':' {
		skip := 1
		for skip < len(b) && b[skip] != ':' {
			skip++
		}
		return Frame{}, skip, ErrNoise
	}
	end := -1
	for i := 1; i < len(b) && i < MaxASCII; i++ {
		if b[i] == '\n' {
			end = i
			break
		}
		if b[i] == ':' {
			// A new frame starts: the one before was cut.
			return Frame{}, i, fmt.Errorf("%w: ASCII frame cut by another ':'", ErrFrame)
		}
	}
	if end < 0 {
		if len(b) >= MaxASCII {
			return Frame{}, MaxASCII, fmt.Errorf("%w: ASCII frame longer than %d characters", ErrFrame, MaxASCII)
		}
		return Frame{}, 0, nil
	}
	n := end + 1
	if b[end-1] != '\r' {
		return Frame{}, n, fmt.Errorf("%w: ASCII frame does not end in CR LF", ErrFrame)
	}
	body := b[1 : end-1]
	if len(body)%2 != 0 || len(body) < 6 {
		return Frame{}, n, fmt.Errorf("%w: ASCII frame of %d hex digits", ErrFrame, len(body))
	}
	raw := make([]byte, len(body)/2)
	for i := range raw {
		hi, ok1 := unhex(body[2*i])
		lo, ok2 := unhex(body[2*i+1])
		if !ok1 || !ok2 {
			return Frame{}, n, fmt.Errorf("%w: %q is not hexadecimal", ErrFrame, body[2*i:2*i+2])
		}
		raw[i] = hi<<4 | lo
	}
	var sum byte
	for _, c := range raw {
		sum += c
	}
	if sum != 0 {
		return Frame{}, n, fmt.Errorf("%w: ASCII LRC %02X, computed %02X", ErrChecksum, raw[len(raw)-1], -(sum - raw[len(raw)-1]))
	}
	return Frame{Unit: raw[0], PDU: raw[1 : len(raw)-1]}, n, nil
}

// unhex accepts upper-case digits, as the standard has them, and lower case, as some devices send.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

type mbap struct{}

func (mbap) Name() string        { return "mbap" }
func (mbap) Wire(pduLen int) int { return pduLen + mbapHeader }

func (mbap) Append(dst []byte, f Frame) []byte {
	n := len(f.PDU) + 1
	dst = append(dst, byte(f.TxID>>8), byte(f.TxID), 0, 0, byte(n>>8), byte(n), f.Unit)
	return append(dst, f.PDU...)
}

func (mbap) Decode(b []byte) (Frame, int, error) {
	if len(b) < mbapHeader {
		return Frame{}, 0, nil
	}
	if b[2] != 0 || b[3] != 0 {
		return Frame{}, len(b), fmt.Errorf("%w: MBAP protocol id %d (want 0)", ErrFrame, int(b[2])<<8|int(b[3]))
	}
	l := int(b[4])<<8 | int(b[5])
	if l < 2 || l > MaxPDU+1 {
		return Frame{}, len(b), fmt.Errorf("%w: MBAP length %d", ErrFrame, l)
	}
	n := 6 + l
	if len(b) < n {
		return Frame{}, 0, nil
	}
	return Frame{TxID: uint16(b[0])<<8 | uint16(b[1]), Unit: b[6], PDU: b[7:n]}, n, nil
}

// String shows a frame for logs and test failures.
func (f Frame) String() string {
	return fmt.Sprintf("unit %d pdu %s", f.Unit, hex.EncodeToString(f.PDU))
}
