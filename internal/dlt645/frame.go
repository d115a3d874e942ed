package dlt645

import (
	"errors"
	"fmt"
	"strings"
)

// Framing bytes.
const (
	// StartByte opens the address field and the control field of a frame.
	StartByte = 0x68
	// EndByte terminates a frame.
	EndByte = 0x16
	// WakeUp is the preamble byte a sender may put before a frame.
	WakeUp = 0xFE
	// DataOffset is added to every data byte on the wire.
	DataOffset = 0x33

	// overhead is the number of bytes of a frame besides its data.
	overhead = 12
	// MaxDataLen is the largest data field a frame can carry.
	MaxDataLen = 255
	// MaxFrameLen is the longest frame (without preamble).
	MaxFrameLen = overhead + MaxDataLen
)

// Errors returned by Decode.
var (
	ErrShort    = errors.New("dlt645: frame incomplete")
	ErrStart    = errors.New("dlt645: frame does not start with 68 .. 68")
	ErrEnd      = errors.New("dlt645: frame does not end with 16")
	ErrChecksum = errors.New("dlt645: bad checksum")
	ErrTooLong  = errors.New("dlt645: data longer than 255 bytes")
)

// Address is a meter address as it travels: six BCD bytes, A0 (the two least
// significant digits) first. Bytes of 0xAA are wildcards.
type Address [6]byte

var (
	// BroadcastAddress (99 99 99 99 99 99) addresses every meter; meters do not
	// answer it. Used for broadcast time synchronisation.
	BroadcastAddress = Address{0x99, 0x99, 0x99, 0x99, 0x99, 0x99}
	// WildcardAddress (AA AA AA AA AA AA) matches any meter; used to read the
	// address of the only meter on a line.
	WildcardAddress = Address{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}
)

// ParseAddress reads an address written the way it is printed on a meter's
// nameplate: up to 12 decimal digits, most significant first ("000012345678"
// or "12345678"; shorter strings are padded with leading zeros). A pair of
// "AA" in place of two digits is a wildcard byte, as in abbreviated
// addressing.
func ParseAddress(s string) (Address, error) {
	var a Address
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 12 {
		return a, fmt.Errorf("address %q: want 1 to 12 decimal digits", s)
	}
	s = strings.Repeat("0", 12-len(s)) + strings.ToUpper(s)
	for i := 0; i < 6; i++ {
		hi, lo := s[2*i], s[2*i+1]
		var b byte
		switch {
		case hi == 'A' && lo == 'A':
			b = 0xAA
		case isDigit(hi) && isDigit(lo):
			b = (hi-'0')<<4 | (lo - '0')
		default:
			return a, fmt.Errorf("address %q: want 1 to 12 decimal digits (or AA wildcard pairs)", strings.TrimLeft(s, "0"))
		}
		a[5-i] = b
	}
	return a, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// String prints the address most significant digit first, as on the nameplate.
func (a Address) String() string {
	const hexdigits = "0123456789ABCDEF"
	var b [12]byte
	for i := 0; i < 6; i++ {
		v := a[5-i]
		b[2*i] = hexdigits[v>>4]
		b[2*i+1] = hexdigits[v&0x0F]
	}
	return string(b[:])
}

// Matches reports whether a frame addressed to a (possibly with wildcard
// bytes) reaches the meter whose own address is m.
func (a Address) Matches(m Address) bool {
	for i := range a {
		if a[i] != 0xAA && a[i] != m[i] {
			return false
		}
	}
	return true
}

// Control is the control code C of a frame.
type Control byte

// Control code bits.
const (
	// Reply (D7) is set in frames sent by a meter.
	Reply Control = 0x80
	// Abnormal (D6) is set in a meter's error reply.
	Abnormal Control = 0x40
	// More (D5) is set when follow-up frames hold the rest of the data.
	More Control = 0x20
	// FuncMask selects the function code (D4..D0).
	FuncMask Control = 0x1F
)

// Function codes of DL/T 645-2007.
const (
	FuncBroadcastTime   Control = 0x08
	FuncRead2007        Control = 0x11
	FuncReadFollowUp07  Control = 0x12
	FuncReadAddress2007 Control = 0x13
)

// Function codes of DL/T 645-1997.
const (
	FuncRead1997       Control = 0x01
	FuncReadFollowUp97 Control = 0x02
)

// Func is the function code (D4..D0).
func (c Control) Func() Control { return c & FuncMask }

// IsReply reports whether the frame was sent by a meter.
func (c Control) IsReply() bool { return c&Reply != 0 }

// IsAbnormal reports whether the frame is an error reply.
func (c Control) IsAbnormal() bool { return c&Abnormal != 0 }

// HasMore reports whether follow-up frames hold more data.
func (c Control) HasMore() bool { return c&More != 0 }

// String prints the control code as two hex digits.
func (c Control) String() string { return fmt.Sprintf("%02X", byte(c)) }

// Frame is one DL/T 645 frame. Data holds the data field as meant (the 0x33
// offset already removed).
type Frame struct {
	Address Address
	Control Control
	Data    []byte
}

// Len is the number of bytes of the encoded frame with a preamble of n bytes.
func (f Frame) Len(preamble int) int { return preamble + overhead + len(f.Data) }

// Append encodes the frame after preamble wake-up bytes and appends it to dst.
func (f Frame) Append(dst []byte, preamble int) ([]byte, error) {
	if len(f.Data) > MaxDataLen {
		return dst, ErrTooLong
	}
	for range preamble {
		dst = append(dst, WakeUp)
	}
	start := len(dst)
	dst = append(dst, StartByte)
	dst = append(dst, f.Address[:]...)
	dst = append(dst, StartByte, byte(f.Control), byte(len(f.Data)))
	for _, b := range f.Data {
		dst = append(dst, b+DataOffset)
	}
	dst = append(dst, checksum(dst[start:]), EndByte)
	return dst, nil
}

// Encode returns the encoded frame after preamble wake-up bytes.
func (f Frame) Encode(preamble int) ([]byte, error) {
	return f.Append(make([]byte, 0, f.Len(preamble)), preamble)
}

// String prints the frame for logs and test failures.
func (f Frame) String() string {
	return fmt.Sprintf("addr=%s C=%s data=% X", f.Address, f.Control, f.Data)
}

func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// Decode reads one frame from the start of b, after any wake-up bytes, and
// returns it with the number of bytes it used. It is strict: b must begin
// with the preamble or the frame. To find frames in a stream with noise, use a
// Splitter.
func Decode(b []byte) (Frame, int, error) {
	i := 0
	for i < len(b) && b[i] == WakeUp {
		i++
	}
	f, n, err := decodeAt(b[i:])
	return f, i + n, err
}

// decodeAt decodes a frame starting exactly at b[0]. On success the returned
// Data is a fresh copy.
func decodeAt(b []byte) (Frame, int, error) {
	var f Frame
	if len(b) == 0 {
		return f, 0, ErrShort
	}
	if b[0] != StartByte {
		return f, 0, ErrStart
	}
	if len(b) < 10 {
		return f, 0, ErrShort
	}
	if b[7] != StartByte {
		return f, 0, ErrStart
	}
	l := int(b[9])
	total := overhead + l
	if len(b) < total {
		return f, 0, ErrShort
	}
	if b[10+l] != checksum(b[:10+l]) {
		return f, 0, ErrChecksum
	}
	if b[total-1] != EndByte {
		return f, 0, ErrEnd
	}
	copy(f.Address[:], b[1:7])
	f.Control = Control(b[8])
	if l > 0 {
		f.Data = make([]byte, l)
		for i, c := range b[10 : 10+l] {
			f.Data[i] = c - DataOffset
		}
	}
	return f, total, nil
}
