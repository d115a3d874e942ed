// Package dlt645 implements the DL/T 645 electricity-meter protocol, in both
// its 2007 and its 1997 editions, from the text of the standards.
//
// The package is pure: frames, the stream splitter, BCD number formats, the
// catalogue of data identifiers and the request/reply messages have no I/O.
// The Client drives one request/reply transaction at a time over any byte
// stream (a serial port or a TCP "transparent" serial server); the receiver
// and the meter simulator (internal/sim/dlt645) build on it.
//
// A frame on the wire is
//
//	[FE FE FE FE] 68 A0 A1 A2 A3 A4 A5 68 C L DATA(L bytes) CS 16
//
// where the optional FE bytes wake the receiver up, A0..A5 is the meter
// address in BCD with the low byte first, C is the control code, L the length
// of DATA, every DATA byte is sent plus 0x33 (modulo 256), and CS is the sum
// modulo 256 of every byte from the first 68 through the last DATA byte as
// sent. Values inside DATA are BCD, low byte first; for signed quantities the
// top bit of the most significant byte is the sign.
//
// Records are values a meter stores with a time (record.go, catalog_records.go):
// a maximum demand and when it occurred (XX.XXXX,YYMMDDhhmm), the energies at
// the last 12 settlement days (stamped by LastSettlement from the meter's
// settlement days), freezes (stamped by their freeze time), event counts and
// last events, and the load profile (loadprofile.go: records read by start time
// and count, decoded with their own time).
//
// Search (discover.go) finds the addresses of the meters on a line: the
// read-address command, then, when several meters answer at once, a search
// that narrows the AA wildcard address from the lowest byte up. The receiver's
// `discover:` and the probe's `dlt645 scan` both run it.
package dlt645
