package dlt645

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Load profile (DL/T 645-2007 appendix A, 06…): the meter records, at the interval of each class,
// a record of up to six classes of values. A read names the class (DI2: 00 every class, 01-06 one)
// and the mode (DI0: 00 the earliest records, 01 records from a given time, 02 the latest), and
// carries the number of records wanted (NN) and, for mode 01, the start time (YYMMDDhhmm). The reply
// is that many records in a row, each
//
//	A0 A0 LEN YYMMDDhhmm class1 AA class2 AA class3 AA class4 AA class5 AA class6 AA CS E5
//
// where LEN counts the bytes from the time through the last AA, a class the meter does not record
// is empty (its AA stays), CS is the sum modulo 256 of the bytes from the first A0 through the last
// AA, and a record starting E0 E0 is one the meter marks as not correct.

// Load-profile modes (DI0 of 06…).
const (
	ProfileEarliest DI = 0x00
	ProfileFrom     DI = 0x01
	ProfileLatest   DI = 0x02
)

// Bytes that frame a load-profile record.
const (
	profileStart    = 0xA0
	profileBad      = 0xE0
	profileSplit    = 0xAA
	profileEnd      = 0xE5
	profileClassNum = 6
)

// ErrProfile is wrapped by errors about load-profile records that do not fit the layout.
var ErrProfile = errors.New("dlt645: not a load-profile record")

// profileClass is one class of a load-profile record: the catalogue entries of its values, in order.
type profileClass struct {
	name string
	dis  []DI
}

var profileClasses = [profileClassNum]profileClass{
	{"voltage, current, frequency", []DI{0x02010100, 0x02010200, 0x02010300, 0x02020100, 0x02020200, 0x02020300, 0x02800002}},
	{"active and reactive power", []DI{0x02030000, 0x02030100, 0x02030200, 0x02030300, 0x02040000, 0x02040100, 0x02040200, 0x02040300}},
	{"power factor", []DI{0x02060000, 0x02060100, 0x02060200, 0x02060300}},
	{"active and combined reactive energy", []DI{0x00010000, 0x00020000, 0x00030000, 0x00040000}},
	{"quadrant reactive energy", []DI{0x00050000, 0x00060000, 0x00070000, 0x00080000}},
	{"demand", []DI{0x02800004, 0x02800005}},
}

// ProfileClass returns the catalogue entries of the values of load-profile class 1 to 6, in the
// order of the record: their metric names, units and attributes are those of the live readings.
func ProfileClass(class int) []Entry {
	if class < 1 || class > profileClassNum {
		return nil
	}
	var out []Entry
	for _, di := range profileClasses[class-1].dis {
		e, _ := builtin.Lookup(V2007, di)
		out = append(out, e)
	}
	return out
}

func profileClassSize(class int) int {
	n := 0
	for _, e := range ProfileClass(class) {
		n += e.Format.Size
	}
	return n
}

// ProfileRecord is one decoded load-profile record.
type ProfileRecord struct {
	Time Clock
	// Values holds, per class (index 0 = class 1), the values in the order of ProfileClass, or nil
	// when the record does not hold that class.
	Values [profileClassNum][]float64
	// Bad: the meter marks the record as not correct (E0 E0); it has no values.
	Bad bool
}

// DecodeLoadProfile reads the records of a load-profile reply (the value bytes, without the
// identifier). A read of one class (class 1 to 6; 0 for every class) may come with the data of
// that class alone and no separators for the others.
func DecodeLoadProfile(class int, b []byte) ([]ProfileRecord, error) {
	if class < 0 || class > profileClassNum {
		return nil, fmt.Errorf("%w: class %d (want 0 for every class, or 1 to 6)", ErrProfile, class)
	}
	var out []ProfileRecord
	for len(b) > 0 {
		r, n, err := decodeProfileRecord(class, b)
		if err != nil {
			return out, fmt.Errorf("record %d: %w", len(out)+1, err)
		}
		out = append(out, r)
		b = b[n:]
	}
	return out, nil
}

func decodeProfileRecord(class int, b []byte) (ProfileRecord, int, error) {
	var r ProfileRecord
	if len(b) < 3+5+2 {
		return r, 0, fmt.Errorf("%w: %d bytes", ErrProfile, len(b))
	}
	switch {
	case b[0] == profileStart && b[1] == profileStart:
	case b[0] == profileBad && b[1] == profileBad:
		r.Bad = true
	default:
		return r, 0, fmt.Errorf("%w: starts % X, want A0 A0 (or E0 E0)", ErrProfile, b[:2])
	}
	n := int(b[2])
	end := 3 + n // index of CS
	if n < 5 || len(b) < end+2 {
		return r, 0, fmt.Errorf("%w: length %d, %d bytes left", ErrProfile, n, len(b)-3)
	}
	if b[end+1] != profileEnd {
		return r, 0, fmt.Errorf("%w: end byte %02X, want E5", ErrProfile, b[end+1])
	}
	var cs byte
	for _, x := range b[:end] {
		cs += x
	}
	if cs != b[end] {
		return r, 0, fmt.Errorf("%w: checksum %02X, computed %02X", ErrProfile, b[end], cs)
	}
	total := end + 2
	if r.Bad {
		return r, total, nil
	}
	var err error
	if r.Time, err = builtinFormat(FormatRecordTime, false).DecodeClock(b[3:8]); err != nil {
		return r, 0, fmt.Errorf("%w: time: %w", ErrProfile, err)
	}
	blocks := splitProfile(b[8:end])
	if class > 0 && class <= profileClassNum && nonEmpty(blocks) == 1 && len(blocks) < profileClassNum {
		// Only the class asked for, without the separators of the others.
		one := make([][]byte, profileClassNum)
		for _, bl := range blocks {
			for c := range one {
				if c == class-1 && len(bl) > 0 {
					one[c] = bl
				}
			}
		}
		blocks = one
	}
	if len(blocks) > profileClassNum {
		return r, 0, fmt.Errorf("%w: %d blocks, want at most 6", ErrProfile, len(blocks))
	}
	for i, bl := range blocks {
		if len(bl) == 0 {
			continue
		}
		if want := profileClassSize(i + 1); len(bl) != want {
			return r, 0, fmt.Errorf("%w: class %d has %d bytes, want %d", ErrProfile, i+1, len(bl), want)
		}
		vals := make([]float64, 0, len(profileClasses[i].dis))
		off := 0
		for _, e := range ProfileClass(i + 1) {
			v, err := e.Format.Decode(bl[off : off+e.Format.Size])
			if err != nil {
				return r, 0, fmt.Errorf("%w: class %d, %s: %w", ErrProfile, i+1, e.Name, err)
			}
			vals = append(vals, v)
			off += e.Format.Size
		}
		r.Values[i] = vals
	}
	return r, total, nil
}

// splitProfile cuts the blocks of a record at the AA separators (AA is no BCD byte, so it cannot
// be part of a value). The last AA closes the last block.
func splitProfile(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, x := range b {
		if x == profileSplit {
			out = append(out, b[start:i])
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, b[start:]) // a last block without its separator
	}
	return out
}

func nonEmpty(blocks [][]byte) int {
	n := 0
	for _, b := range blocks {
		if len(b) > 0 {
			n++
		}
	}
	return n
}

// EncodeLoadProfile writes one record (the simulator's side): the time and, for each class, its
// values, or nothing for classes not recorded.
func EncodeLoadProfile(t time.Time, values [profileClassNum][]float64) ([]byte, error) {
	body, err := builtinFormat(FormatRecordTime, false).EncodeClock(t)
	if err != nil {
		return nil, err
	}
	for i, vals := range values {
		if vals != nil {
			entries := ProfileClass(i + 1)
			if len(vals) != len(entries) {
				return nil, fmt.Errorf("load profile class %d has %d values, got %d", i+1, len(entries), len(vals))
			}
			for j, e := range entries {
				if body, err = e.Format.AppendEncode(body, vals[j]); err != nil {
					return nil, fmt.Errorf("load profile class %d, %s: %w", i+1, e.Name, err)
				}
			}
		}
		body = append(body, profileSplit)
	}
	out := append([]byte{profileStart, profileStart, byte(len(body))}, body...)
	var cs byte
	for _, x := range out {
		cs += x
	}
	return append(out, cs, profileEnd), nil
}

// LoadProfileRequest asks for count records of a load-profile identifier (06 class 00 mode); mode 01
// (ProfileFrom) starts at the given time, in the meter's zone.
func LoadProfileRequest(addr Address, di DI, count int, from time.Time) (Frame, error) {
	if di.Byte(3) != 0x06 || di.Byte(2) > profileClassNum || di.Byte(1) != 0 || di.Byte(0) > byte(ProfileLatest) {
		return Frame{}, fmt.Errorf("dlt645: %s is not a load-profile identifier (06cc000m: class 00-06, mode 00-02)", di.Format(V2007))
	}
	if count < 1 || count > 99 {
		return Frame{}, fmt.Errorf("dlt645: load-profile record count %d: want 1 to 99", count)
	}
	data := appendDI(nil, V2007, di)
	data = append(data, byte(count/10)<<4|byte(count%10))
	if di.Byte(0) == byte(ProfileFrom) {
		t, err := builtinFormat(FormatRecordTime, false).EncodeClock(from)
		if err != nil {
			return Frame{}, err
		}
		data = append(data, t...)
	}
	return Frame{Address: addr, Control: FuncRead2007, Data: data}, nil
}

// ParseLoadProfileRequest reads what a load-profile request asks for (the simulator's side).
func ParseLoadProfileRequest(data []byte) (di DI, count int, from Clock, err error) {
	di, ok := readDI(V2007, data)
	if !ok || di.Byte(3) != 0x06 || di.Byte(2) > profileClassNum || di.Byte(1) != 0 || di.Byte(0) > byte(ProfileLatest) {
		return 0, 0, Clock{}, fmt.Errorf("%w: not a load-profile request (06cc000m: class 00-06, mode 00-02)", ErrUnexpected)
	}
	if len(data) < 5 {
		return di, 0, Clock{}, fmt.Errorf("%w: load-profile request without a record count", ErrUnexpected)
	}
	nn, err := builtinFormat("XX", false).Decode(data[4:5])
	if err != nil {
		return di, 0, Clock{}, fmt.Errorf("%w: record count: %w", ErrUnexpected, err)
	}
	count = int(nn)
	if di.Byte(0) == byte(ProfileFrom) {
		if len(data) < 10 {
			return di, count, Clock{}, fmt.Errorf("%w: load-profile request without a start time", ErrUnexpected)
		}
		if from, err = builtinFormat(FormatRecordTime, false).DecodeClock(data[5:10]); err != nil {
			return di, count, from, fmt.Errorf("%w: start time: %w", ErrUnexpected, err)
		}
	}
	return di, count, from, nil
}

// ReadLoadProfile reads up to count records of a load-profile identifier from the meter at addr
// (mode ProfileFrom: the first at or after from, in the meter's zone), following up as Read does,
// and decodes them. A backfill reads the records it missed this way, a bounded count per poll.
func (c *Client) ReadLoadProfile(ctx context.Context, addr Address, di DI, count int, from time.Time) ([]ProfileRecord, Result, error) {
	req, err := LoadProfileRequest(addr, di, count, from)
	if err != nil {
		return nil, Result{}, err
	}
	res, err := c.read(ctx, V2007, addr, di, req)
	if err != nil {
		return nil, res, err
	}
	recs, err := DecodeLoadProfile(int(di.Byte(2)), res.Value)
	return recs, res, err
}
