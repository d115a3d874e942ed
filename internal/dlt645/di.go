package dlt645

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is the edition of the standard a meter speaks.
type Version int

const (
	// V2007 is DL/T 645-2007: 4-byte data identifiers, read with 0x11.
	V2007 Version = 2007
	// V1997 is DL/T 645-1997: 2-byte data identifiers, read with 0x01.
	V1997 Version = 1997
)

// ParseVersion accepts "2007" or "1997" (also "07", "97").
func ParseVersion(s string) (Version, error) {
	switch strings.TrimSpace(s) {
	case "2007", "07":
		return V2007, nil
	case "1997", "97":
		return V1997, nil
	}
	return 0, fmt.Errorf("version %q: want 2007 or 1997", s)
}

// String prints the year.
func (v Version) String() string { return strconv.Itoa(int(v)) }

// Valid reports whether v is one of the two editions.
func (v Version) Valid() bool { return v == V2007 || v == V1997 }

// DISize is the number of bytes of a data identifier in this edition.
func (v Version) DISize() int {
	if v == V1997 {
		return 2
	}
	return 4
}

// DI is a data identifier, written as in the standard's tables: DI3 DI2 DI1
// DI0 for 2007 (0x00010000, forward active energy) and DI1 DI0 for 1997
// (0x9010). On the wire the low byte (DI0) goes first.
type DI uint32

// ParseDI reads an identifier written as hex digits in the standard's order:
// 8 digits for 2007 ("00010000", "0201FF00"), 4 for 1997 ("9010", "B61F").
// Spaces, dots and a 0x prefix are ignored.
func ParseDI(v Version, s string) (DI, error) {
	t := strings.NewReplacer(" ", "", ".", "", "_", "", "-", "").Replace(strings.TrimSpace(s))
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	want := 2 * v.DISize()
	if len(t) != want {
		return 0, fmt.Errorf("data identifier %q: want %d hex digits for DL/T 645-%s", s, want, v)
	}
	n, err := strconv.ParseUint(t, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("data identifier %q: want %d hex digits for DL/T 645-%s", s, want, v)
	}
	return DI(n), nil
}

// Format prints the identifier with the number of digits of the edition.
func (d DI) Format(v Version) string {
	if v == V1997 {
		return fmt.Sprintf("%04X", uint32(d))
	}
	return fmt.Sprintf("%08X", uint32(d))
}

// Byte returns DIi (0 = lowest).
func (d DI) Byte(i int) byte { return byte(d >> (8 * i)) }

// appendDI appends the wire form (low byte first).
func appendDI(dst []byte, v Version, d DI) []byte {
	for i := range v.DISize() {
		dst = append(dst, d.Byte(i))
	}
	return dst
}

// readDI reads the wire form from the start of b.
func readDI(v Version, b []byte) (DI, bool) {
	n := v.DISize()
	if len(b) < n {
		return 0, false
	}
	var d DI
	for i := n - 1; i >= 0; i-- {
		d = d<<8 | DI(b[i])
	}
	return d, true
}
