package dlt645

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrorWord is the error byte of an abnormal reply.
type ErrorWord byte

var errorBits = map[Version][8]string{
	V2007: {"other error", "no requested data", "password error or unauthorised", "baud rate cannot be changed",
		"too many annual time zones", "too many daily time periods", "too many tariffs", "reserved bit 7"},
	V1997: {"illegal data", "data identifier error", "password error", "reserved bit 3",
		"too many annual time zones", "too many daily time periods", "too many tariffs", "reserved bit 7"},
}

// Describe lists the meanings of the bits that are set, for one edition.
func (w ErrorWord) Describe(v Version) string {
	bits, ok := errorBits[v]
	if !ok {
		bits = errorBits[V2007]
	}
	var parts []string
	for i := range 8 {
		if w&(1<<i) != 0 {
			parts = append(parts, bits[i])
		}
	}
	if len(parts) == 0 {
		return "no error bit set"
	}
	return strings.Join(parts, ", ")
}

// MeterError is the error a meter answered with.
type MeterError struct {
	Version Version
	Word    ErrorWord
}

func (e *MeterError) Error() string {
	return fmt.Sprintf("meter error word %02X (%s)", byte(e.Word), e.Word.Describe(e.Version))
}

// ErrUnexpected is wrapped by errors about replies that do not fit the request.
var ErrUnexpected = errors.New("dlt645: unexpected reply")

func readFunc(v Version) Control {
	if v == V1997 {
		return FuncRead1997
	}
	return FuncRead2007
}

func followUpFunc(v Version) Control {
	if v == V1997 {
		return FuncReadFollowUp97
	}
	return FuncReadFollowUp07
}

// ReadRequest asks a meter for the value of one identifier (2007: C=11,
// 1997: C=01).
func ReadRequest(v Version, addr Address, di DI) Frame {
	return Frame{Address: addr, Control: readFunc(v), Data: appendDI(nil, v, di)}
}

// FollowUpRequest asks for the next follow-up frame after a reply with the
// follow-up bit set. 2007 (C=12) carries the frame sequence number seq,
// counted from 1; 1997 (C=02) carries only the identifier.
func FollowUpRequest(v Version, addr Address, di DI, seq byte) Frame {
	data := appendDI(nil, v, di)
	if v == V2007 {
		data = append(data, seq)
	}
	return Frame{Address: addr, Control: followUpFunc(v), Data: data}
}

// ReadAddressRequest asks the only meter on the line for its address
// (2007, C=13, sent to the wildcard address).
func ReadAddressRequest() Frame {
	return Frame{Address: WildcardAddress, Control: FuncReadAddress2007}
}

// TimeSyncRequest sets the clock of every meter on the line (C=08, broadcast
// address, no reply). t is written in its own location: pass the meters'
// local time.
func TimeSyncRequest(t time.Time) Frame {
	bcd := func(n int) byte { return byte(n/10)<<4 | byte(n%10) }
	return Frame{Address: BroadcastAddress, Control: FuncBroadcastTime, Data: []byte{
		bcd(t.Second()), bcd(t.Minute()), bcd(t.Hour()), bcd(t.Day()), bcd(int(t.Month())), bcd(t.Year() % 100),
	}}
}

// ReadReply is a meter's answer to a read or follow-up request.
type ReadReply struct {
	DI    DI
	Value []byte // the value bytes (no identifier, no sequence number)
	More  bool   // a follow-up frame holds the rest
	Seq   byte   // 2007 follow-up replies: the sequence number echoed
	Err   *MeterError
}

// IsReplyTo reports whether f answers req (same function, a reply, and the
// address the request reached). Frames that do not are someone else's
// traffic (or a late answer to an earlier request) and should be skipped.
func IsReplyTo(req, f Frame) bool {
	if !f.Control.IsReply() || f.Control.Func() != req.Control.Func() {
		return false
	}
	return req.Address.Matches(f.Address)
}

// ParseReadReply reads the answer f to the read or follow-up request req.
func ParseReadReply(v Version, req, f Frame) (ReadReply, error) {
	var r ReadReply
	if !IsReplyTo(req, f) {
		return r, fmt.Errorf("%w: %s to request %s", ErrUnexpected, f, req)
	}
	if f.Control.IsAbnormal() {
		if len(f.Data) != 1 {
			return r, fmt.Errorf("%w: error reply with %d data bytes", ErrUnexpected, len(f.Data))
		}
		r.DI, _ = readDI(v, req.Data)
		r.Err = &MeterError{Version: v, Word: ErrorWord(f.Data[0])}
		return r, nil
	}
	di, ok := readDI(v, f.Data)
	want, _ := readDI(v, req.Data)
	if !ok || di != want {
		return r, fmt.Errorf("%w: reply for identifier % X, asked for %s", ErrUnexpected, f.Data[:min(len(f.Data), v.DISize())], want.Format(v))
	}
	r.DI = di
	r.More = f.Control.HasMore()
	r.Value = f.Data[v.DISize():]
	if v == V2007 && req.Control.Func() == FuncReadFollowUp07 {
		if len(r.Value) == 0 || len(req.Data) < 5 || r.Value[len(r.Value)-1] != req.Data[4] {
			return r, fmt.Errorf("%w: follow-up reply without the sequence number %d", ErrUnexpected, req.Data[min(4, len(req.Data)-1)])
		}
		r.Seq = r.Value[len(r.Value)-1]
		r.Value = r.Value[:len(r.Value)-1]
	}
	return r, nil
}

// ParseAddressReply reads the answer to ReadAddressRequest.
func ParseAddressReply(f Frame) (Address, error) {
	if !IsReplyTo(ReadAddressRequest(), f) || f.Control.IsAbnormal() || len(f.Data) != 6 {
		return Address{}, fmt.Errorf("%w: %s to a read-address request", ErrUnexpected, f)
	}
	var a Address
	copy(a[:], f.Data)
	if a != f.Address {
		return a, fmt.Errorf("%w: address %s in the data, %s in the frame", ErrUnexpected, a, f.Address)
	}
	return a, nil
}

// ReadResponse builds a meter's reply to a read request (used by the
// simulator and tests). more sets the follow-up bit.
func ReadResponse(v Version, addr Address, di DI, value []byte, more bool) Frame {
	c := Reply | readFunc(v)
	if more {
		c |= More
	}
	return Frame{Address: addr, Control: c, Data: append(appendDI(nil, v, di), value...)}
}

// FollowUpResponse builds a meter's follow-up frame.
func FollowUpResponse(v Version, addr Address, di DI, value []byte, seq byte, more bool) Frame {
	c := Reply | followUpFunc(v)
	if more {
		c |= More
	}
	data := append(appendDI(nil, v, di), value...)
	if v == V2007 {
		data = append(data, seq)
	}
	return Frame{Address: addr, Control: c, Data: data}
}

// ErrorResponse builds a meter's error reply to the request with function fn.
func ErrorResponse(addr Address, fn Control, w ErrorWord) Frame {
	return Frame{Address: addr, Control: Reply | Abnormal | fn.Func(), Data: []byte{byte(w)}}
}

// AddressResponse builds a meter's answer to ReadAddressRequest.
func AddressResponse(addr Address) Frame {
	return Frame{Address: addr, Control: Reply | FuncReadAddress2007, Data: append([]byte(nil), addr[:]...)}
}
