package dlt645

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Records: values a meter stores with their time (maximum demand and when it occurred, a freeze,
// an event), sent as several fields in a row, each low byte first, in the order of the standard's
// tables.

// parseRecord reads a comma-separated record pattern ("XX.XXXX,YYMMDDhhmm"). signed applies to its
// number fields.
func parseRecord(p string, signed bool) (Format, error) {
	f := Format{Pattern: p, Kind: Record, Signed: signed}
	parts := strings.Split(p, ",")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if strings.Contains(part, ",") || part == "" {
			return f, fmt.Errorf("format %q: field %d is empty", p, i+1)
		}
		ff, err := ParseFormat(part, signed && !strings.HasPrefix(part, "*") && !isClockPattern(part))
		if err != nil {
			return f, fmt.Errorf("format %q: field %d: %w", p, i+1, err)
		}
		if ff.Open && i != len(parts)-1 {
			return f, fmt.Errorf("format %q: only the last field can be an open \"*\"", p)
		}
		f.Open = ff.Open
		f.Size += ff.Size
		f.Fields = append(f.Fields, ff)
	}
	if len(f.Fields) < 2 {
		return f, fmt.Errorf("format %q: a record has at least two fields", p)
	}
	return f, nil
}

func isClockPattern(p string) bool {
	switch p {
	case "YYMMDDWW", "hhmmss", "YYMMDDWWhhmmss", "YYMMDDhhmm", "YYMMDDhhmmss":
		return true
	}
	return false
}

// parseOpaque reads "*n" (n bytes not read) or "*" (the rest of a record).
func parseOpaque(p string) (Format, error) {
	f := Format{Pattern: p, Kind: Opaque}
	if p == "*" {
		f.Open = true
		return f, nil
	}
	n, err := strconv.Atoi(p[1:])
	if err != nil || n < 1 || n > 255 {
		return f, fmt.Errorf("format %q: want *n with n bytes (1 to 255) not read, or * for the rest of a record", p)
	}
	f.Size = n
	return f, nil
}

// Field is one decoded field of a record: a number, or a clock (Clock.Year >= 0 for a date), or
// opaque bytes.
type Field struct {
	Kind   FormatKind
	Number float64
	Clock  Clock
	Bytes  []byte
	// Empty: a record time of all zeros, the meter has no such record.
	Empty bool
}

// DecodeRecord reads every field of a value: one field for a number or clock, the fields of a record in
// order. A record time of all zeros (a record the meter has not written) is not an error: its field
// is Empty.
func (f Format) DecodeRecord(b []byte) ([]Field, error) {
	fields := f.Fields
	if f.Kind != Record {
		fields = []Format{f}
	}
	if len(b) < f.Size || (!f.Open && len(b) != f.Size) {
		return nil, fmt.Errorf("%w: format %s is %d bytes, got %d", ErrSize, f.Pattern, f.Size, len(b))
	}
	out := make([]Field, len(fields))
	off := 0
	for i, ff := range fields {
		n := ff.Size
		if ff.Open {
			n = len(b) - off
		}
		part := b[off : off+n]
		off += n
		out[i].Kind = ff.Kind
		var err error
		switch ff.Kind {
		case Number:
			out[i].Number, err = ff.Decode(part)
		case Opaque:
			out[i].Bytes = part
		default:
			out[i].Clock, err = ff.DecodeClock(part)
			if err == ErrEmpty { //nolint:errorlint // a sentinel of this package, never wrapped
				out[i].Empty, err = true, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("field %d (%s): %w", i+1, ff.Pattern, err)
		}
	}
	return out, nil
}

// EncodeRecord writes the fields of a record (or the one field of a number or clock): numbers from
// Number, clocks from t[i] (in its own location; a zero time writes zeros, no record), opaque fields
// from Bytes (zeros if short).
func (f Format) EncodeRecord(fields []Field, times []time.Time) ([]byte, error) {
	formats := f.Fields
	if f.Kind != Record {
		formats = []Format{f}
	}
	if len(fields) != len(formats) {
		return nil, fmt.Errorf("format %s has %d fields, got %d", f.Pattern, len(formats), len(fields))
	}
	var out []byte
	for i, ff := range formats {
		switch ff.Kind {
		case Number:
			var err error
			if out, err = ff.AppendEncode(out, fields[i].Number); err != nil {
				return nil, fmt.Errorf("field %d (%s): %w", i+1, ff.Pattern, err)
			}
		case Opaque:
			b := fields[i].Bytes
			if !ff.Open {
				b = append(append([]byte(nil), b...), make([]byte, max(0, ff.Size-len(b)))...)[:ff.Size]
			}
			out = append(out, b...)
		default:
			var t time.Time
			if i < len(times) {
				t = times[i]
			}
			if t.IsZero() {
				out = append(out, make([]byte, ff.Size)...)
				continue
			}
			b, err := ff.EncodeClock(t)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

// Time is the clock as a time in loc (seconds 0 when the format has none). It fails for a clock
// without a date.
func (c Clock) Time(loc *time.Location) (time.Time, error) {
	if c.Year < 0 || c.Month < 1 || c.Day < 1 || c.Hour < 0 || c.Minute < 0 {
		return time.Time{}, fmt.Errorf("%w: %+v is not a date and time", ErrNotClock, c)
	}
	t := time.Date(c.Year, time.Month(c.Month), c.Day, c.Hour, c.Minute, max(c.Second, 0), 0, loc)
	if t.Day() != c.Day {
		return time.Time{}, fmt.Errorf("%w: %04d-%02d-%02d is not a day", ErrRange, c.Year, c.Month, c.Day)
	}
	return t, nil
}
