package dlt645_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

func addr(t testing.TB, s string) dlt645.Address {
	t.Helper()
	a, err := dlt645.ParseAddress(s)
	require.NoError(t, err)
	return a
}

// line serves the meters on a loopback port, as a transparent serial server with them on its line,
// and returns a client on it with a timeout short for loopback but long enough for a loaded machine
// (a late answer would read as silence and lose a meter).
func line(t *testing.T, opts sim.Options, meters ...*sim.Meter) (*sim.Server, *dlt645.Client) {
	t.Helper()
	srv := sim.NewServer(opts, meters...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		srv.Close()
		<-done
	})
	cl := dlt645.NewClient(c)
	cl.Gap, cl.Timeout = time.Millisecond, 60*time.Millisecond
	return srv, cl
}

func meters(t *testing.T, v dlt645.Version, addrs ...string) []*sim.Meter {
	var out []*sim.Meter
	for _, a := range addrs {
		m := sim.NewMeter(addr(t, a), v)
		if v == dlt645.V2007 {
			require.NoError(t, m.Set(0x00010000, 12.5))
		} else {
			require.NoError(t, m.Set(0x9010, 12.5))
		}
		out = append(out, m)
	}
	return out
}

func strs(as []dlt645.Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// TestSearchThreeMeters: three meters whose addresses share their leading digits and, two of them, their
// lowest four: the first request collides (the simulator overlays the frames as a bus does, with the FE
// preamble), the two collide again on 01 and on 01 00, and part on the third byte. Found in the order of
// the search, each once, in 2 + (100 + 1) + (100 + 1) + 100 requests (a garble is asked twice), and
// one more each to check it answers at its own address.
func TestSearchThreeMeters(t *testing.T) {
	t.Parallel()
	srv, c := line(t, sim.Options{Preamble: 4}, meters(t, dlt645.V2007, "123456780001", "123456790001", "123456780002")...)
	res, err := dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007})
	require.NoError(t, err)
	assert.Equal(t, []string{"123456780001", "123456790001", "123456780002"}, strs(res.Meters))
	assert.True(t, res.Collided)
	assert.True(t, res.Complete())
	assert.Empty(t, res.Shared)
	assert.Equal(t, 2+101+101+100+3, res.Frames)
	assert.Equal(t, uint64(res.Frames), srv.Stats().Requests)
}

// TestSearchOneAndNone: the only meter of a line answers the first request (one request); an empty line
// is silent (one request); 1997 asks with a wildcard read.
func TestSearchOneAndNone(t *testing.T) {
	t.Parallel()
	_, c := line(t, sim.Options{}, meters(t, dlt645.V2007, "000012345678")...)
	res, err := dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007})
	require.NoError(t, err)
	assert.Equal(t, []string{"000012345678"}, strs(res.Meters))
	assert.Equal(t, 2, res.Frames, "the read-address command, and a read at the address")
	assert.False(t, res.Collided)

	_, c = line(t, sim.Options{})
	res, err = dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007})
	require.NoError(t, err)
	assert.Empty(t, res.Meters)
	assert.Equal(t, 1, res.Frames)
	assert.True(t, res.Complete())

	_, c = line(t, sim.Options{}, meters(t, dlt645.V1997, "000000001997")...)
	res, err = dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V1997})
	require.NoError(t, err)
	assert.Equal(t, []string{"000000001997"}, strs(res.Meters))

	_, c = line(t, sim.Options{}, meters(t, dlt645.V1997, "000000001997", "000000002097")...)
	res, err = dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V1997})
	require.NoError(t, err)
	assert.Equal(t, []string{"000000001997", "000000002097"}, strs(res.Meters), "1997: narrowed by wildcard reads")
	assert.Equal(t, 2+101+100+2, res.Frames)
}

// TestSearchBounds: the frame bound stops a search midway and reports what it found so far; the meter
// bound stops it at the n-th meter.
func TestSearchBounds(t *testing.T) {
	t.Parallel()
	_, c := line(t, sim.Options{}, meters(t, dlt645.V2007, "000000000101", "000000000201", "000000000350")...)
	res, err := dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007, MaxFrames: 8})
	require.NoError(t, err)
	assert.Equal(t, "max_frames", res.Stopped)
	assert.False(t, res.Complete())
	assert.Equal(t, 8, res.Frames)
	// 2 for the first, 1 for 00, 2 for 01, then 00 and 01 under 01, and 01 01 at its address: the
	// first meter is found.
	assert.Equal(t, []string{"000000000101"}, strs(res.Meters))
	assert.Contains(t, res.String(), "stopped at max_frames (partial)")

	res, err = dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007, MaxMeters: 2})
	require.NoError(t, err)
	assert.Equal(t, "max_meters", res.Stopped)
	assert.Equal(t, []string{"000000000101", "000000000201"}, strs(res.Meters))
}

// TestSearchNoise: garbage on the line before replies (and in silences) neither loses a meter nor
// invents one: a burst is asked again, and noise before a reply is skipped by the framer.
func TestSearchNoise(t *testing.T) {
	t.Parallel()
	srv, c := line(t, sim.Options{NoiseProbability: 0.3, Seed: 11}, meters(t, dlt645.V2007, "000000000001", "000000000002")...)
	res, err := dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007, MaxFrames: 1000})
	require.NoError(t, err)
	assert.Equal(t, []string{"000000000001", "000000000002"}, strs(res.Meters))
	assert.True(t, res.Complete())
	assert.Positive(t, srv.Stats().NoiseBytes)
}

// TestSearchEcho: an adapter that hears its own requests does not make every silence a collision.
func TestSearchEcho(t *testing.T) {
	t.Parallel()
	_, c := line(t, sim.Options{Echo: true}, meters(t, dlt645.V2007, "000000000001", "000000000002")...)
	res, err := dlt645.Search(context.Background(), dlt645.ClientSearch(c), dlt645.SearchOptions{Version: dlt645.V2007})
	require.NoError(t, err)
	assert.Equal(t, []string{"000000000001", "000000000002"}, strs(res.Meters))
	assert.Equal(t, 2+100+2, res.Frames, "silences stay silences")
}

// TestSearchBlend: answers that overlay into a frame passing its checksum, whose address blends the
// senders' (000000000101 | 000000000201 = 000000000301, which no meter has), are not taken for a meter:
// the blend does not answer at its own address, so the search goes a byte deeper and finds both.
func TestSearchBlend(t *testing.T) {
	t.Parallel()
	// Neither has forward active energy: both answer with the same error reply but for the address,
	// and the simulator's overlay of the two passes the checksum.
	a, b := sim.NewMeter(addr(t, "000000000101"), dlt645.V2007), sim.NewMeter(addr(t, "000000000201"), dlt645.V2007)
	blend := false
	_, c := line(t, sim.Options{AlignedCollisions: true}, a, b)
	x := func(ctx context.Context, req dlt645.Frame) (dlt645.Frame, dlt645.Heard, error) {
		f, h, err := dlt645.ClientSearch(c)(ctx, req)
		blend = blend || (h == dlt645.HeardAnswer && f.Address.String() == "000000000301")
		return f, h, err
	}
	res, err := dlt645.Search(context.Background(), x, dlt645.SearchOptions{Version: dlt645.V2007})
	require.NoError(t, err)
	assert.Equal(t, []string{"000000000101", "000000000201"}, strs(res.Meters))
	assert.True(t, res.Complete())
	assert.True(t, blend, "the line did blend the two answers into a frame")
}

// TestSearchLineFails: a line that closes ends the search with its error and what was found so far.
func TestSearchLineFails(t *testing.T) {
	t.Parallel()
	srv, c := line(t, sim.Options{}, meters(t, dlt645.V2007, "000000000001", "000000000050")...)
	n := 0
	x := func(ctx context.Context, req dlt645.Frame) (dlt645.Frame, dlt645.Heard, error) {
		if n++; n == 10 {
			srv.DropConnections()
		}
		return dlt645.ClientSearch(c)(ctx, req)
	}
	res, err := dlt645.Search(context.Background(), x, dlt645.SearchOptions{Version: dlt645.V2007})
	require.Error(t, err)
	assert.Equal(t, []string{"000000000001"}, strs(res.Meters))
	assert.Less(t, res.Frames, 12)
}

// FuzzSearch drives a search with arbitrary outcomes and reply frames decoded from the input (the
// replies a broken or hostile line could bring): it never panics, keeps its bounds, and every meter it
// reports is a meter's address (no wildcard, not broadcast), found once.
func FuzzSearch(f *testing.F) {
	f.Add([]byte{2, 2, 0, 1, 0x68, 1, 0, 0, 0, 0, 0, 0x68, 0x91, 0}, uint8(3), uint16(50))
	f.Add([]byte{1}, uint8(0), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, maxMeters uint8, maxFrames uint16) {
		maxFrames %= 2000 // a full search of a garbling line is 100^6 requests
		if maxFrames == 0 {
			maxFrames = 2000
		}
		pos := 0
		next := func() byte {
			if pos >= len(in) {
				return 0
			}
			pos++
			return in[pos-1]
		}
		x := func(_ context.Context, req dlt645.Frame) (dlt645.Frame, dlt645.Heard, error) {
			switch next() % 3 {
			case 0:
				return dlt645.Frame{}, dlt645.HeardNothing, nil
			case 1:
				return dlt645.Frame{}, dlt645.HeardGarble, nil
			}
			var a dlt645.Address
			for i := range a {
				a[i] = next()
			}
			return dlt645.Frame{Address: a, Control: req.Control | dlt645.Reply, Data: []byte{next(), next(), next(), next(), next(), next()}}, dlt645.HeardAnswer, nil
		}
		res, err := dlt645.Search(context.Background(), x, dlt645.SearchOptions{Version: dlt645.V2007, MaxMeters: int(maxMeters), MaxFrames: int(maxFrames)})
		require.NoError(t, err)
		assert.LessOrEqual(t, res.Frames, int(maxFrames))
		if maxMeters > 0 {
			assert.LessOrEqual(t, len(res.Meters), int(maxMeters))
		}
		seen := map[dlt645.Address]bool{}
		for _, a := range res.Meters {
			assert.False(t, seen[a], "found twice: %s", a)
			seen[a] = true
			assert.NotContains(t, a[:], byte(0xAA), "a wildcard is no meter's address")
			assert.NotEqual(t, dlt645.BroadcastAddress, a)
		}
	})
}
