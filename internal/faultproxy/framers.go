package faultproxy

// MBAPFrames cuts Modbus/TCP replies: a 7-byte MBAP header whose length field counts the bytes after it
// from the unit id on.
func MBAPFrames(b []byte) int {
	if len(b) < 7 {
		return 0
	}
	n := 6 + (int(b[4])<<8 | int(b[5]))
	if n < 8 || n > 260 {
		return -1
	}
	if len(b) < n {
		return 0
	}
	return n
}

// RTUFrames cuts Modbus RTU replies (the server side of RTU over TCP): reads (function codes 1-4) carry
// a byte count, writes (5, 6, 15, 16) are 8 bytes, exceptions 5, each with its CRC.
func RTUFrames(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	n := 0
	switch fc := b[1]; {
	case fc&0x80 != 0:
		n = 5
	case fc >= 1 && fc <= 4:
		if len(b) < 3 {
			return 0
		}
		n = 3 + int(b[2]) + 2
	case fc == 5 || fc == 6 || fc == 15 || fc == 16:
		n = 8
	default:
		return -1
	}
	if len(b) < n {
		return 0
	}
	return n
}

// DLT645Frames cuts DL/T 645 replies: FE wake-up bytes, then 68, address (6), 68, control, length L,
// L data bytes, checksum and 16.
func DLT645Frames(b []byte) int {
	i := 0
	for i < len(b) && b[i] == 0xFE {
		i++
	}
	if i == len(b) {
		return 0
	}
	if b[i] != 0x68 {
		return -1
	}
	if len(b) < i+10 {
		return 0
	}
	n := i + 12 + int(b[i+9])
	if len(b) < n {
		return 0
	}
	return n
}
