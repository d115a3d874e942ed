package transport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var modbusSchemes = []Scheme{{Name: "tcp"}, {Name: "rtuovertcp"}, {Name: "tcp+tls"}, {Name: "rtu", Serial: true}, {Name: "ascii", Serial: true}, {Name: "asciiovertcp"}}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		raw     string
		want    Endpoint
		wantErr string
	}{
		{raw: "tcp://127.0.0.1:502", want: Endpoint{URL: "tcp://127.0.0.1:502", Scheme: "tcp", Address: "127.0.0.1:502"}},
		{raw: "tcp://[::1]:502/", want: Endpoint{URL: "tcp://[::1]:502/", Scheme: "tcp", Address: "[::1]:502"}},
		{raw: "rtu:///dev/ttyUSB0", want: Endpoint{URL: "rtu:///dev/ttyUSB0", Scheme: "rtu", Address: "/dev/ttyUSB0", Serial: true}},
		{raw: "ascii:///dev/ttyS1", want: Endpoint{URL: "ascii:///dev/ttyS1", Scheme: "ascii", Address: "/dev/ttyS1", Serial: true}},
		{raw: "asciiovertcp://10.0.0.9:4001", want: Endpoint{URL: "asciiovertcp://10.0.0.9:4001", Scheme: "asciiovertcp", Address: "10.0.0.9:4001"}},
		{raw: "ascii://ttyS1", wantErr: `"ascii://ttyS1" must be ascii:///path/to/device (three slashes)`},
		{raw: "asciiovertcp:///dev/ttyS1", wantErr: `"asciiovertcp:///dev/ttyS1" must be asciiovertcp://host:port`},
		{raw: "rtu://dev/ttyUSB0", wantErr: `"rtu://dev/ttyUSB0" must be rtu:///path/to/device (three slashes)`},
		{raw: "tcp://127.0.0.1", wantErr: `"tcp://127.0.0.1" must be tcp://host:port`},
		{raw: "tcp://:502", wantErr: `"tcp://:502" must be tcp://host:port`},
		{raw: "tcp://h:502/x", wantErr: `"tcp://h:502/x" must be tcp://host:port`},
		{raw: "tcp://h:0", wantErr: `port "0" must be a number from 1 to 65535`},
		{raw: "tcp://h:70000", wantErr: `port "70000" must be a number from 1 to 65535`},
		{raw: "serial:/dev/ttyS0", wantErr: `unknown scheme "serial" in "serial:/dev/ttyS0" (want tcp, rtuovertcp, tcp+tls, rtu, ascii or asciiovertcp)`},
		{raw: "::", wantErr: `"::" is not a URL`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseEndpoint(tt.raw, modbusSchemes...)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := ParseEndpoint("udp://h:1", Scheme{Name: "serial", Serial: true}, Scheme{Name: "tcp"})
	assert.EqualError(t, err, `unknown scheme "udp" in "udp://h:1" (want serial or tcp)`)
}

func TestLineValidate(t *testing.T) {
	assert.NoError(t, LineConfig{}.Validate("c."))
	assert.NoError(t, LineConfig{BaudRate: 115200, DataBits: 7, Parity: "E", StopBits: 2}.Validate("c."))
	err := LineConfig{BaudRate: 5_000_000, DataBits: 9, Parity: "mark", StopBits: 3}.Validate("c.")
	require.Error(t, err)
	assert.Equal(t, "c.baud_rate: must be between 1 and 4000000, got 5000000\n"+
		"c.data_bits: must be 5, 6, 7 or 8, got 9\n"+
		`c.parity: "mark" is not a parity (want even, odd or none)`+"\n"+
		"c.stop_bits: must be 1 or 2, got 3", err.Error())
	assert.EqualError(t, LineConfig{BaudRate: 2500}.Validate("b.", 1200, 2400), "b.baud_rate: 2500 is not supported (want 1200 or 2400)")
	assert.EqualError(t, LineConfig{BaudRate: -1}.Validate("b."), "b.baud_rate: must be between 1 and 4000000, got -1")
	assert.NoError(t, LineConfig{BaudRate: 2400}.Validate("b.", 1200, 2400))
}

func TestLineOver(t *testing.T) {
	def := Line{BaudRate: 2400, DataBits: 8, Parity: ParityEven, StopBits: 1}
	assert.Equal(t, def, def.Over(LineConfig{}))
	assert.Equal(t, Line{BaudRate: 9600, DataBits: 7, Parity: ParityNone, StopBits: 2},
		def.Over(LineConfig{BaudRate: 9600, DataBits: 7, Parity: "none", StopBits: 2}))
	assert.Equal(t, ParityOdd, def.Over(LineConfig{Parity: "O"}).Parity)
	assert.Equal(t, ParityEven, def.Over(LineConfig{Parity: "mark"}).Parity, "a bad parity is reported by Validate, not applied")
	assert.True(t, LineConfig{StopBits: 1}.Framing())
	assert.False(t, LineConfig{BaudRate: 9600}.Framing())
}

func TestParity(t *testing.T) {
	for _, p := range []Parity{ParityNone, ParityEven, ParityOdd} {
		back, err := ParseParity(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, back)
	}
}

func TestCharTime(t *testing.T) {
	// 2400 8E1: 11 bits a character.
	l := Line{BaudRate: 2400, DataBits: 8, Parity: ParityEven, StopBits: 1}
	assert.Equal(t, 11*time.Second/2400, l.CharTime())
	// 9600 8N1: 10 bits.
	fast := Line{BaudRate: 9600, DataBits: 8, StopBits: 1}
	assert.Equal(t, 10*time.Second/9600, fast.CharTime())
	assert.Zero(t, Line{}.CharTime())
}

func TestFailoverKeys(t *testing.T) {
	after, back, errs := FailoverKeys("c", "", []string{"tcp://a:1", "tcp://b:1"}, 0, 0)
	assert.Empty(t, errs)
	assert.Equal(t, DefaultFailoverAfter, after)
	assert.Equal(t, DefaultFailbackAfter, back)

	_, _, errs = FailoverKeys("c", "", nil, 3, 0)
	require.Len(t, errs, 1, "failover_after set without endpoints, even at its default value")
	assert.EqualError(t, errs[0], "c: failover_after and failback_after apply only with endpoints: (an endpoint and its backups)")

	_, _, errs = FailoverKeys("c", "tcp://a:1", []string{"tcp://a:1"}, -1, -time.Second)
	require.Len(t, errs, 3)
	assert.EqualError(t, errs[0], "c.failover_after: must be at least 1 (failed connects before the next endpoint), got -1")
	assert.EqualError(t, errs[1], "c.failback_after: must be > 0, got -1s")
	assert.EqualError(t, errs[2], "c: give endpoint (one) or endpoints (an endpoint and its backups), not both")
}
