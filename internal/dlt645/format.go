package dlt645

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// FormatKind tells how the bytes of a value are read.
type FormatKind uint8

const (
	// Number is a BCD number such as XXXXXX.XX.
	Number FormatKind = iota
	// Date is YYMMDDWW (year, month, day, weekday).
	Date
	// TimeOfDay is hhmmss.
	TimeOfDay
	// DateTime is YYMMDDWWhhmmss.
	DateTime
	// Minute is YYMMDDhhmm: the time of a record to the minute (demand, freezes, load profile).
	Minute
	// Second is YYMMDDhhmmss: the time of an event to the second.
	Second
	// Opaque is bytes that are carried but not read ("*8": 8 bytes; a last "*": any number).
	Opaque
	// Record is several fields in a row, written comma-separated: "XX.XXXX,YYMMDDhhmm".
	Record
)

// Format is the data format of a value, written as in the standard: one X (or
// N) per BCD digit with an optional decimal point ("XXXXXX.XX", "XXX.X",
// "X.XXX", "NNNNNNNNNNNN"), or one of the clock formats "YYMMDDWW", "hhmmss",
// "YYMMDDWWhhmmss", "YYMMDDhhmm", "YYMMDDhhmmss". Signed numbers keep their
// sign in the top bit of the most significant byte. A record is several of
// these in a row, in the order of the standard's tables, comma-separated
// ("XX.XXXX,YYMMDDhhmm": a demand and its time); "*n" stands for n bytes that
// are not read, and a last "*" for whatever follows.
type Format struct {
	Pattern  string
	Kind     FormatKind
	Digits   int // BCD digits (numbers)
	Decimals int // digits after the point (numbers)
	Size     int // bytes on the wire (a record with an open tail: at least)
	Signed   bool
	// Fields are the parts of a Record, in the order of the standard's tables (the first is the
	// nearest the identifier on the wire, since every field is sent low byte first in turn).
	Fields []Format
	// Open: a last "*" takes any number of trailing bytes.
	Open bool
}

// ParseFormat reads a format pattern.
func ParseFormat(pattern string, signed bool) (Format, error) {
	p := strings.TrimSpace(pattern)
	if strings.Contains(p, ",") {
		return parseRecord(p, signed)
	}
	f := Format{Pattern: p, Signed: signed}
	switch p {
	case "YYMMDDWW":
		f.Kind, f.Size = Date, 4
	case "hhmmss":
		f.Kind, f.Size = TimeOfDay, 3
	case "YYMMDDWWhhmmss":
		f.Kind, f.Size = DateTime, 7
	case "YYMMDDhhmm":
		f.Kind, f.Size = Minute, 5
	case "YYMMDDhhmmss":
		f.Kind, f.Size = Second, 6
	}
	if strings.HasPrefix(p, "*") {
		return parseOpaque(p)
	}
	if f.Kind != Number {
		if signed {
			return f, fmt.Errorf("format %q: a clock format cannot be signed", p)
		}
		return f, nil
	}
	point := -1
	for i, c := range p {
		switch {
		case c == 'X' || c == 'x' || c == 'N' || c == 'n':
			f.Digits++
		case c == '.' && point < 0:
			point = i
		default:
			return f, fmt.Errorf("format %q: want digits as X (e.g. XXXXXX.XX, XXX.X), a clock (YYMMDDWW, hhmmss, YYMMDDWWhhmmss, YYMMDDhhmm, YYMMDDhhmmss), or a record of these comma-separated (XX.XXXX,YYMMDDhhmm)", p)
		}
	}
	if f.Digits == 0 || f.Digits > 14 {
		return f, fmt.Errorf("format %q: want 1 to 14 digits", p)
	}
	if point >= 0 {
		f.Decimals = len(p) - point - 1
	}
	f.Size = (f.Digits + 1) / 2
	return f, nil
}

// builtinFormat is ParseFormat for the patterns of the built-in catalogue,
// which a test checks all parse.
func builtinFormat(pattern string, signed bool) Format {
	f, _ := ParseFormat(pattern, signed)
	return f
}

// String prints the pattern, with a note when signed.
func (f Format) String() string {
	if f.Signed {
		return f.Pattern + " (signed)"
	}
	return f.Pattern
}

// Errors of value decoding.
var (
	ErrBCD      = errors.New("dlt645: not a BCD value")
	ErrSize     = errors.New("dlt645: value has the wrong number of bytes")
	ErrRange    = errors.New("dlt645: value does not fit the format")
	ErrNotClock = errors.New("dlt645: not a clock value")
	// ErrEmpty is a record time of all zeros: the meter has no such record (yet).
	ErrEmpty = errors.New("dlt645: empty record")
)

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16}

// Decode reads a number. b is the value as received, low byte first.
func (f Format) Decode(b []byte) (float64, error) {
	if f.Kind != Number {
		return 0, fmt.Errorf("format %s is not a number", f.Pattern)
	}
	if len(b) != f.Size {
		return 0, ErrSize
	}
	var n uint64
	neg := false
	for i := len(b) - 1; i >= 0; i-- {
		c := b[i]
		if i == len(b)-1 && f.Signed {
			neg = c&0x80 != 0
			c &^= 0x80
		}
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return 0, ErrBCD
		}
		n = n*100 + uint64(hi)*10 + uint64(lo)
	}
	v := float64(n) / pow10[f.Decimals]
	if neg {
		v = -v
	}
	return v, nil
}

// Rescale turns a number decoded with decimals digits after the point into 10^exp of its unit
// (exp 3: kWh to Wh). The BCD integer is recovered and scaled once, so the result is as exact as a
// float64 can be: XXXXXX.XX kWh becomes an exact integer number of Wh (a multiple of 10).
func Rescale(v float64, decimals, exp int) float64 {
	if exp == 0 || decimals < 0 || decimals >= len(pow10) {
		return v
	}
	n := math.Round(v * pow10[decimals]) // at most 14 BCD digits: exact
	switch d := exp - decimals; {
	case d >= 0 && d < len(pow10):
		return n * pow10[d]
	case d < 0 && -d < len(pow10):
		return n / pow10[-d]
	}
	return v * math.Pow10(exp)
}

// Encode writes a number, rounded to the format's decimals, low byte first.
func (f Format) Encode(v float64) ([]byte, error) {
	return f.AppendEncode(make([]byte, 0, f.Size), v)
}

// AppendEncode is Encode appending to dst.
func (f Format) AppendEncode(dst []byte, v float64) ([]byte, error) {
	if f.Kind != Number {
		return dst, fmt.Errorf("format %s is not a number", f.Pattern)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dst, ErrRange
	}
	neg := v < 0
	if neg && !f.Signed {
		return dst, ErrRange
	}
	r := math.Round(math.Abs(v) * pow10[f.Decimals])
	limit := pow10[f.Digits]
	if f.Signed && f.Digits == 2*f.Size {
		limit = 8 * pow10[f.Digits-1] // top digit shares its byte with the sign
	}
	if r >= limit {
		return dst, ErrRange
	}
	n := uint64(r)
	for i := 0; i < f.Size; i++ {
		d := byte(n % 100)
		n /= 100
		c := (d/10)<<4 | d%10
		if i == f.Size-1 && neg {
			c |= 0x80
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// Clock is what a clock value tells; unknown parts are -1.
type Clock struct {
	Year, Month, Day, Weekday int
	Hour, Minute, Second      int
}

// DecodeClock reads a clock value: Date, TimeOfDay, DateTime, Minute or Second.
// A Minute or Second value of all zeros is a record the meter has not written
// yet: ErrEmpty.
func (f Format) DecodeClock(b []byte) (Clock, error) {
	c := Clock{-1, -1, -1, -1, -1, -1, -1}
	if !f.Kind.IsClock() {
		return c, ErrNotClock
	}
	if len(b) != f.Size {
		return c, ErrSize
	}
	d := make([]int, len(b))
	zero := true
	for i, x := range b {
		hi, lo := x>>4, x&0x0F
		if hi > 9 || lo > 9 {
			return c, ErrBCD
		}
		d[i] = int(hi)*10 + int(lo)
		zero = zero && x == 0
	}
	switch f.Kind {
	case Date: // WW DD MM YY
		c.Weekday, c.Day, c.Month, c.Year = d[0], d[1], d[2], 2000+d[3]
	case TimeOfDay: // ss mm hh
		c.Second, c.Minute, c.Hour = d[0], d[1], d[2]
	case DateTime: // ss mm hh WW DD MM YY
		c.Second, c.Minute, c.Hour = d[0], d[1], d[2]
		c.Weekday, c.Day, c.Month, c.Year = d[3], d[4], d[5], 2000+d[6]
	case Minute: // mm hh DD MM YY
		c.Second, c.Minute, c.Hour, c.Day, c.Month, c.Year = 0, d[0], d[1], d[2], d[3], 2000+d[4]
	case Second: // ss mm hh DD MM YY
		c.Second, c.Minute, c.Hour, c.Day, c.Month, c.Year = d[0], d[1], d[2], d[3], d[4], 2000+d[5]
	}
	if zero && (f.Kind == Minute || f.Kind == Second) {
		return c, ErrEmpty
	}
	if (c.Month >= 0 && (c.Month < 1 || c.Month > 12)) || (c.Day >= 0 && (c.Day < 1 || c.Day > 31)) ||
		c.Hour > 23 || c.Minute > 59 || c.Second > 59 || c.Weekday > 6 {
		return c, ErrRange
	}
	return c, nil
}

// IsClock reports whether values of this kind are read with DecodeClock.
func (k FormatKind) IsClock() bool {
	switch k {
	case Date, TimeOfDay, DateTime, Minute, Second:
		return true
	}
	return false
}

// EncodeClock writes t (in its own location) in a clock format.
func (f Format) EncodeClock(t time.Time) ([]byte, error) {
	bcd := func(n int) byte { return byte(n/10)<<4 | byte(n%10) }
	y := t.Year() % 100
	switch f.Kind {
	case Date:
		return []byte{bcd(int(t.Weekday())), bcd(t.Day()), bcd(int(t.Month())), bcd(y)}, nil
	case TimeOfDay:
		return []byte{bcd(t.Second()), bcd(t.Minute()), bcd(t.Hour())}, nil
	case DateTime:
		return []byte{bcd(t.Second()), bcd(t.Minute()), bcd(t.Hour()), bcd(int(t.Weekday())),
			bcd(t.Day()), bcd(int(t.Month())), bcd(y)}, nil
	case Minute:
		return []byte{bcd(t.Minute()), bcd(t.Hour()), bcd(t.Day()), bcd(int(t.Month())), bcd(y)}, nil
	case Second:
		return []byte{bcd(t.Second()), bcd(t.Minute()), bcd(t.Hour()), bcd(t.Day()), bcd(int(t.Month())), bcd(y)}, nil
	}
	return nil, ErrNotClock
}
