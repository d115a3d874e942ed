package transport

import (
	"encoding/binary"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

func TestRS485Resolve(t *testing.T) {
	r, err := (*RS485Config)(nil).Resolve("c.rs485", true)
	require.NoError(t, err)
	assert.Equal(t, RS485{}, r, "no block: the port's mode is left alone")

	if runtime.GOOS != "linux" {
		_, err := (&RS485Config{Enabled: true}).Resolve("c.rs485", true)
		require.EqualError(t, err, "c.rs485: RS-485 driver control is Linux only (the kernel's TIOCSRS485 ioctl); remove it, or set the port's mode outside the collector")
		return
	}
	r, err = (&RS485Config{Enabled: true}).Resolve("c.rs485", true)
	require.NoError(t, err)
	assert.Equal(t, RS485{Enabled: true, RTSOnSend: true}, r, "default: RTS high while sending, low after")

	r, err = (&RS485Config{Enabled: true, RTSOnSend: ptr(false), DelayBeforeSend: 2 * time.Millisecond, DelayAfterSend: 100 * time.Millisecond, RXDuringTX: true}).Resolve("c.rs485", true)
	require.NoError(t, err)
	assert.Equal(t, RS485{Enabled: true, RTSAfterSend: true, RXDuringTX: true, DelayBeforeSend: 2 * time.Millisecond, DelayAfterSend: 100 * time.Millisecond}, r, "inverted RTS: low while sending, high after")

	_, err = (&RS485Config{Enabled: true, RTSOnSend: ptr(true), RTSAfterSend: ptr(true), DelayBeforeSend: 1500 * time.Microsecond, DelayAfterSend: 101 * time.Millisecond}).Resolve("connections[0].rs485", false)
	require.Error(t, err)
	assert.Equal(t, "connections[0].rs485: applies only to a local serial port (the serial server or DTU drives its own RS-485 line)\n"+
		"connections[0].rs485.delay_before_send: must be whole milliseconds (the kernel counts in ms), got 1.5ms\n"+
		"connections[0].rs485.delay_after_send: must be between 0 and 100ms, got 101ms\n"+
		"connections[0].rs485: rts_on_send and rts_after_send must differ (RTS changes level when sending starts and ends), both are true", err.Error())

	_, err = (&RS485Config{DelayAfterSend: time.Millisecond}).Resolve("b.rs485", true)
	require.EqualError(t, err, "b.rs485: rts_on_send, rts_after_send, delay_before_send, delay_after_send and rx_during_tx apply only with enabled: true")

	r, err = LineConfig{RS485: &RS485Config{Enabled: true}}.ResolveRS485("buses[1].", true)
	require.NoError(t, err)
	assert.True(t, r.Enabled)
}

// The struct handed to TIOCSRS485 is struct serial_rs485 of linux/serial.h: its size, field offsets
// and flag bits are checked against the kernel header itself when it is installed (linux-libc-dev),
// and the bytes the kernel reads are checked bit by bit.
func TestRS485KernelLayout(t *testing.T) {
	var k serialRS485
	assert.Equal(t, uintptr(32), unsafe.Sizeof(k), "flags, two delays, padding[5]: 8 u32")
	assert.Equal(t, uintptr(0), unsafe.Offsetof(k.Flags))
	assert.Equal(t, uintptr(4), unsafe.Offsetof(k.DelayRTSBeforeSend))
	assert.Equal(t, uintptr(8), unsafe.Offsetof(k.DelayRTSAfterSend))

	if h, err := os.ReadFile("/usr/include/linux/serial.h"); err == nil {
		defs := map[string]uint32{}
		for _, m := range regexp.MustCompile(`#define\s+SER_RS485_(\w+)\s+\(1 << (\d+)\)`).FindAllSubmatch(h, -1) {
			n, _ := strconv.Atoi(string(m[2]))
			defs[string(m[1])] = 1 << n
		}
		assert.Equal(t, defs["ENABLED"], uint32(serRS485Enabled))
		assert.Equal(t, defs["RTS_ON_SEND"], uint32(serRS485RTSOnSend))
		assert.Equal(t, defs["RTS_AFTER_SEND"], uint32(serRS485RTSAfterSend))
		assert.Equal(t, defs["RX_DURING_TX"], uint32(serRS485RXDuringTX))
		assert.Regexp(t, `struct serial_rs485 \{\s+__u32\s+flags;`, string(h))
	} else {
		t.Logf("no kernel header to compare with (%v); the constants are checked against their documented values", err)
	}

	tests := []struct {
		r     RS485
		flags uint32
		pre   uint32
		post  uint32
	}{
		{RS485{}, 0, 0, 0},
		{RS485{Enabled: true, RTSOnSend: true}, 0b00011, 0, 0},
		{RS485{Enabled: true, RTSAfterSend: true}, 0b00101, 0, 0},
		{RS485{Enabled: true, RTSOnSend: true, RXDuringTX: true, DelayBeforeSend: 3 * time.Millisecond, DelayAfterSend: 100 * time.Millisecond}, 0b10011, 3, 100},
	}
	for _, tt := range tests {
		k := tt.r.kernel()
		b := unsafe.Slice((*byte)(unsafe.Pointer(&k)), unsafe.Sizeof(k))
		assert.Equal(t, tt.flags, binary.NativeEndian.Uint32(b[0:]), "flags of %+v", tt.r)
		assert.Equal(t, tt.pre, binary.NativeEndian.Uint32(b[4:]), "delay_rts_before_send (ms) of %+v", tt.r)
		assert.Equal(t, tt.post, binary.NativeEndian.Uint32(b[8:]), "delay_rts_after_send (ms) of %+v", tt.r)
		assert.Equal(t, make([]byte, 20), b[12:], "padding stays zero")
	}
}
