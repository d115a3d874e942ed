package dlt645sim

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func addr(t testing.TB, s string) dlt645.Address {
	t.Helper()
	a, err := dlt645.ParseAddress(s)
	require.NoError(t, err)
	return a
}

// startTCP serves the meters on a loopback port and returns a client on it.
func startTCP(t *testing.T, opts Options, meters ...*Meter) (*Server, *dlt645.Client) {
	t.Helper()
	srv := NewServer(opts, meters...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	cl := dlt645.NewClient(c)
	cl.Gap = 0
	cl.Timeout = 300 * time.Millisecond
	return srv, cl
}

func TestReadValues2007(t *testing.T) {
	m := NewMeter(addr(t, "000000000001"), dlt645.V2007)
	require.NoError(t, m.Set(0x00010000, 12345.67))
	require.NoError(t, m.Set(0x02010100, 220.1))
	require.NoError(t, m.Set(0x02030000, -1.2345))
	require.Error(t, m.Set(0x02010100, 1000), "does not fit XXX.X")
	require.Error(t, m.Set(0x12345678, 1), "not catalogued")
	_, cl := startTCP(t, Options{Preamble: 4}, m)
	ctx := context.Background()

	for _, tc := range []struct {
		di   dlt645.DI
		want float64
	}{{0x00010000, 12345.67}, {0x02010100, 220.1}, {0x02030000, -1.2345}} {
		r, err := cl.Read(ctx, dlt645.V2007, m.Address(), tc.di)
		require.NoError(t, err)
		e, _ := dlt645.Builtin().Lookup(dlt645.V2007, tc.di)
		v, err := e.Format.Decode(r.Value)
		require.NoError(t, err)
		assert.Equal(t, tc.want, v)
		assert.Equal(t, 1, r.Frames)
	}

	_, err := cl.Read(ctx, dlt645.V2007, m.Address(), 0x02800002)
	var me *dlt645.MeterError
	require.True(t, errors.As(err, &me), "%v", err)
	assert.Equal(t, dlt645.ErrorWord(0x02), me.Word)

	m.SetError(0x02010100, 0x01)
	_, err = cl.Read(ctx, dlt645.V2007, m.Address(), 0x02010100)
	require.True(t, errors.As(err, &me))
	assert.Equal(t, dlt645.ErrorWord(0x01), me.Word)
	assert.Equal(t, uint64(2), cl.Counts().MeterError)
}

func TestFollowUpFrames(t *testing.T) {
	for _, v := range []dlt645.Version{dlt645.V2007, dlt645.V1997} {
		t.Run(v.String(), func(t *testing.T) {
			m := NewMeter(addr(t, "000000000007"), v)
			raw := make([]byte, 50)
			for i := range raw {
				raw[i] = byte(i % 100 / 10 << 4) // BCD-ish, any bytes will do
			}
			m.SetRaw(0x0400, raw)
			m.SetMaxData(16)
			_, cl := startTCP(t, Options{}, m)
			r, err := cl.Read(context.Background(), v, m.Address(), 0x0400)
			require.NoError(t, err)
			assert.Equal(t, raw, r.Value)
			assert.Equal(t, 4, r.Frames, "16+16+16+2")
			assert.Equal(t, uint64(3), cl.Counts().FollowUps)
		})
	}
}

func TestBlockRead(t *testing.T) {
	m := NewMeter(addr(t, "1"), dlt645.V2007)
	for i, v := range []float64{100, 10, 20, 30, 40} {
		require.NoError(t, m.Set(dlt645.DI(0x00010000|i<<8), v))
	}
	_, cl := startTCP(t, Options{}, m)
	r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x0001FF00)
	require.NoError(t, err)
	members, ok := dlt645.Builtin().Block(dlt645.V2007, 0x0001FF00)
	require.True(t, ok)
	parts, err := dlt645.SplitBlock(members, r.Value)
	require.NoError(t, err)
	require.Len(t, parts, 5)
	v, _ := parts[3].Entry.Format.Decode(parts[3].Data)
	assert.Equal(t, 30.0, v)
	assert.Equal(t, "3", parts[3].Entry.Attr(dlt645.AttrTariff))
}

// A meter that reads only single identifiers answers a block with the error word "no requested
// data", and its single identifiers as usual; from YAML too.
func TestRefuseBlocks(t *testing.T) {
	cfg, err := ParseConfig([]byte("meters:\n  - {address: \"1\", refuse_blocks: true, values: {\"00010000\": 100, \"00010100\": 10}}\n"))
	require.NoError(t, err)
	meters, _, err := cfg.BuildMeters()
	require.NoError(t, err)
	m := meters[0]
	_, cl := startTCP(t, Options{}, m)
	_, err = cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x0001FF00)
	var me *dlt645.MeterError
	require.ErrorAs(t, err, &me)
	assert.EqualValues(t, 0x02, me.Word)
	r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x00010100)
	require.NoError(t, err)
	e, ok := dlt645.Builtin().Lookup(dlt645.V2007, 0x00010100)
	require.True(t, ok)
	v, _ := e.Format.Decode(r.Value)
	assert.Equal(t, 10.0, v)

	m.SetRefuseBlocks(false)
	_, err = cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x0001FF00)
	require.NoError(t, err)
}

func TestRead1997(t *testing.T) {
	m := NewMeter(addr(t, "000000000042"), dlt645.V1997)
	require.NoError(t, m.Set(0x9010, 2345.6))
	require.NoError(t, m.Set(0xB611, 231))
	_, cl := startTCP(t, Options{}, m)
	r, err := cl.Read(context.Background(), dlt645.V1997, m.Address(), 0xB611)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x31, 0x02}, r.Value)
	_, err = cl.Read(context.Background(), dlt645.V1997, m.Address(), 0xB612)
	var me *dlt645.MeterError
	require.True(t, errors.As(err, &me))
	assert.Equal(t, "meter error word 02 (data identifier error)", me.Error())
}

func TestAddressDiscovery(t *testing.T) {
	one := NewMeter(addr(t, "202301150099"), dlt645.V2007)
	_, cl := startTCP(t, Options{}, one)
	a, err := cl.ReadAddress(context.Background(), dlt645.V2007)
	require.NoError(t, err)
	assert.Equal(t, "202301150099", a.String())

	old := NewMeter(addr(t, "000000001997"), dlt645.V1997)
	require.NoError(t, old.Set(0x9010, 1))
	_, cl97 := startTCP(t, Options{}, old)
	a, err = cl97.ReadAddress(context.Background(), dlt645.V1997)
	require.NoError(t, err)
	assert.Equal(t, "000000001997", a.String())

	// Two meters answering at once collide: no usable answer.
	_, clBoth := startTCP(t, Options{}, NewMeter(addr(t, "1"), dlt645.V2007), NewMeter(addr(t, "2"), dlt645.V2007))
	_, err = clBoth.ReadAddress(context.Background(), dlt645.V2007)
	require.Error(t, err)
}

func TestTimeSyncAndClock(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	m := NewMeter(addr(t, "1"), dlt645.V2007)
	m.SetClock(90*time.Second, loc)
	srv, cl := startTCP(t, Options{}, m)
	ctx := context.Background()
	r, err := cl.Read(ctx, dlt645.V2007, m.Address(), dlt645.DITime2007)
	require.NoError(t, err)
	e, _ := dlt645.Builtin().Lookup(dlt645.V2007, dlt645.DITime2007)
	c, err := e.Format.DecodeClock(r.Value)
	require.NoError(t, err)
	want := time.Now().Add(90 * time.Second).In(loc)
	got := time.Date(want.Year(), want.Month(), want.Day(), c.Hour, c.Minute, c.Second, 0, loc)
	assert.InDelta(t, 0, want.Sub(got).Seconds(), 2.5)

	require.NoError(t, cl.Broadcast(ctx, dlt645.TimeSyncRequest(time.Now().In(loc))))
	require.Eventually(t, func() bool {
		return srv.Stats().Requests >= 2 && m.ClockOffset() < 2*time.Second && m.ClockOffset() > -2*time.Second
	}, 5*time.Second, 10*time.Millisecond)
}

func TestNoiseDoesNotLoseFrames(t *testing.T) {
	meters := []*Meter{NewMeter(addr(t, "1"), dlt645.V2007), NewMeter(addr(t, "2"), dlt645.V2007)}
	for i, m := range meters {
		require.NoError(t, m.Set(0x02010100, 220+float64(i)))
	}
	srv, cl := startTCP(t, Options{NoiseProbability: 1, NoiseBytes: 12, Seed: 7, Preamble: 2}, meters...)
	for i := range 200 {
		m := meters[i%2]
		r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x02010100)
		require.NoError(t, err, "read %d", i)
		assert.Equal(t, []byte{0x00 + byte(i%2)<<4, 0x22}, r.Value, "read %d", i) // 220.0 / 221.0 V
	}
	assert.Greater(t, srv.Stats().NoiseBytes, uint64(200))
	assert.Positive(t, cl.Counts().Noise)
}

func TestMeterOffTimesOut(t *testing.T) {
	m := NewMeter(addr(t, "1"), dlt645.V2007)
	require.NoError(t, m.Set(0x02010100, 220))
	m.SetOff(true)
	_, cl := startTCP(t, Options{}, m)
	cl.Timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x02010100)
	require.ErrorIs(t, err, dlt645.ErrTimeout)
	assert.Less(t, time.Since(start), 2*time.Second)
	m.SetOff(false)
	_, err = cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x02010100)
	require.NoError(t, err)
}

func TestSerialOverPTY(t *testing.T) {
	pair, err := NewPTYPair(context.Background(), t.TempDir())
	if err != nil {
		t.Skipf("no pty pair: %v", err)
	}
	t.Cleanup(func() { pair.Close() })
	m := NewMeter(addr(t, "000000000003"), dlt645.V2007)
	require.NoError(t, m.Set(0x02800002, 50.01))
	require.NoError(t, m.Set(0x02020100, -5.5))
	srv := NewServer(Options{Preamble: 4, NoiseProbability: 0.5, Seed: 1}, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeSerial(ctx, dlt645.DefaultSerialConfig(pair.A)) }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		<-done //nolint:errcheck // the line was closed under it: its error says only that
	})
	link, err := dlt645.OpenSerial(dlt645.DefaultSerialConfig(pair.B))
	require.NoError(t, err)
	t.Cleanup(func() { link.Close() })
	cl := dlt645.NewClient(link)
	for range 20 {
		r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x02020100)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x00, 0x55, 0x80}, r.Value)
	}
	r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x02800002)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x01, 0x50}, r.Value)
}

// An adapter that echoes the request: the client skips its own frame.
func TestEchoIsSkipped(t *testing.T) {
	m := NewMeter(addr(t, "1"), dlt645.V2007)
	require.NoError(t, m.Set(0x02010100, 230))
	_, cl := startTCP(t, Options{Echo: true, Preamble: 4}, m)
	for range 5 {
		r, err := cl.Read(context.Background(), dlt645.V2007, m.Address(), 0x02010100)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x00, 0x23}, r.Value)
	}
	assert.Equal(t, uint64(5), cl.Counts().Skipped, "one echoed request per read")
}

// Meters answering at once collide: by default each later one starts a character behind, and the
// overlay is no frame; aligned, the overlay of two error replies that differ in one address bit is a
// frame that passes its checksum, with the blended address (the worst case a search must survive).
func TestCollisions(t *testing.T) {
	for _, tc := range []struct {
		aligned bool
		want    string
	}{{false, ""}, {true, "000000000301"}} {
		srv := NewServer(Options{Preamble: 4, AlignedCollisions: tc.aligned},
			NewMeter(addr(t, "000000000101"), dlt645.V2007), NewMeter(addr(t, "000000000201"), dlt645.V2007))
		pattern := addr(t, "000000000001")
		pattern[1], pattern[2], pattern[3], pattern[4], pattern[5] = 0xAA, 0xAA, 0xAA, 0xAA, 0xAA
		replies := srv.Handle(dlt645.ReadRequest(dlt645.V2007, pattern, 0x00010000), time.Now())
		require.Len(t, replies, 2)
		var sp dlt645.Splitter
		_, _ = sp.Write(srv.encodeReplies(replies))
		f, ok := sp.Next()
		if tc.want == "" {
			assert.False(t, ok, "no frame in the garble: %v", f)
			continue
		}
		require.True(t, ok)
		assert.Equal(t, tc.want, f.Address.String())
	}
}

func TestCollisionsConfig(t *testing.T) {
	c, err := ParseConfig([]byte("aligned_collisions: true\nmeters: [{address: \"1\"}, {address: \"2\"}]\n"))
	require.NoError(t, err)
	assert.True(t, c.Options().AlignedCollisions)
	c, err = ParseConfig([]byte("meters: [{address: \"1\"}]\n"))
	require.NoError(t, err)
	assert.False(t, c.Options().AlignedCollisions)
}
