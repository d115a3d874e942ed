package dlt645

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/dlt645receiver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func addr(t *testing.T, s string) dlt645.Address {
	t.Helper()
	a, err := dlt645.ParseAddress(s)
	require.NoError(t, err)
	return a
}

// serve starts the DL/T 645 simulator with the meters on a loopback TCP port (a transparent serial
// server with the meters on its line).
func serve(t *testing.T, opts sim.Options, meters ...*sim.Meter) probe.Endpoint {
	t.Helper()
	srv := sim.NewServer(opts, meters...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	ep, err := probe.ParseEndpoint("tcp://"+ln.Addr().String(), "tcp", "serial")
	require.NoError(t, err)
	return ep
}

// threePhase is a 2007 meter with energies (total and two tariffs), voltages, currents and frequency.
func threePhase(t *testing.T, a string) *sim.Meter {
	t.Helper()
	m := sim.NewMeter(addr(t, a), dlt645.V2007)
	for di, v := range map[dlt645.DI]float64{
		0x00010000: 1234.56, 0x00010100: 600, 0x00010200: 634.56, 0x00020000: 12.5,
		0x02010100: 230.1, 0x02010200: 229.8, 0x02010300: 231.0,
		0x02020100: 5.123, 0x02020200: 4.9, 0x02020300: 5.0,
		0x02800002: 49.99,
	} {
		require.NoError(t, m.Set(di, v))
	}
	return m
}

// loadDLT645 unmarshals the probe's output into the dlt645 receiver's configuration and validates it.
func loadDLT645(t *testing.T, out string) *dlt645receiver.Config {
	t.Helper()
	ret, err := confmap.NewRetrievedFromYAML([]byte(out))
	require.NoError(t, err, out)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	cfg := dlt645receiver.NewFactory().CreateDefaultConfig().(*dlt645receiver.Config)
	require.NoError(t, conf.Unmarshal(cfg), out)
	require.NoError(t, cfg.Validate(), out)
	return cfg
}

func identifiers(c *dlt645receiver.Config, meter int) []string {
	var out []string
	for _, i := range c.Buses[0].Meters[meter].Identifiers {
		out = append(out, i.DI)
	}
	return out
}

// TestScanOneMeter: the only meter of a line is found by the read-address command; the identifiers it
// answers are listed (refused ones are not), the clock as a whole, and the entry loads.
func TestScanOneMeter(t *testing.T) {
	m := threePhase(t, "000012345678")
	m.SetError(0x02800002, 0x02) // frequency: "no requested data"
	ep := serve(t, sim.Options{}, m)
	cfg := ScanConfig{Endpoint: ep, Gap: time.Millisecond, Timeout: 200 * time.Millisecond, Versions: []dlt645.Version{dlt645.V2007, dlt645.V1997}}
	res, err := Scan(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Meters, 1)
	assert.Equal(t, "000012345678", res.Meters[0].Address.String())
	assert.Equal(t, "read address", res.Meters[0].Found)

	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	c := loadDLT645(t, out.String())
	require.Len(t, c.Buses[0].Meters, 1)
	assert.Equal(t, "000012345678", c.Buses[0].Meters[0].Address)
	assert.Equal(t, []string{"00010000", "00010100", "00010200", "00020000", "02010100", "02010200", "02010300",
		"02020100", "02020200", "02020300", "0400010C"}, identifiers(c, 0), "the clock once, as date and time together")
}

// TestScanCollision: three meters on one line collide on the read-address command (the simulator
// overlays their frames as a bus does); the address search finds all three, two of which share their
// lowest digits. The meters send the FE wake-up preamble as real meters do: their overlaid frames then
// arrive as bytes that are neither noise nor a frame with a bad checksum to the splitter, and must
// still count as a collision.
func TestScanCollision(t *testing.T) {
	t.Parallel() // about 200 requests, most of them a timeout of silence
	old := sim.NewMeter(addr(t, "000000001997"), dlt645.V1997)
	require.NoError(t, old.Set(0x9010, 345.67))
	ep := serve(t, sim.Options{Preamble: 4},
		threePhase(t, "000000000101"), threePhase(t, "000000000201"), threePhase(t, "000000000307"), old)
	// The timeout is short for a loopback simulator but long enough for a loaded machine: a late answer
	// would read as silence and lose a meter.
	cfg := ScanConfig{Endpoint: ep, Gap: time.Millisecond, Timeout: 60 * time.Millisecond, Versions: []dlt645.Version{dlt645.V2007}}
	res, err := Scan(context.Background(), cfg)
	require.NoError(t, err)
	found := map[string]dlt645.Version{}
	for _, m := range res.Meters {
		found[m.Address.String()] = m.Version
		assert.Equal(t, "address search", m.Found)
	}
	assert.Equal(t, map[string]dlt645.Version{"000000000101": dlt645.V2007, "000000000201": dlt645.V2007, "000000000307": dlt645.V2007,
		"000000001997": dlt645.V1997}, found, "the 1997 meter answers the 2007 search with error frames; its edition is found after")
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	assert.Contains(t, out.String(), "several meters answered the read-address command at once")
	c := loadDLT645(t, out.String())
	assert.Len(t, c.Buses[0].Meters, 4)
}

// TestScan1997: a 1997 meter (no read-address command) answers the 2007 command with an error frame,
// which names it; its edition is then found by what it reads. Asked in 1997 only, the wildcard read of
// forward active energy finds it.
func TestScan1997(t *testing.T) {
	m := sim.NewMeter(addr(t, "000000004321"), dlt645.V1997)
	require.NoError(t, m.Set(0x9010, 345.67))
	require.NoError(t, m.Set(0xB611, 220.5))
	ep := serve(t, sim.Options{}, m)
	cfg := ScanConfig{Endpoint: ep, Gap: time.Millisecond, Timeout: 100 * time.Millisecond, Versions: []dlt645.Version{dlt645.V2007, dlt645.V1997}}
	res, err := Scan(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Meters, 1)
	assert.Equal(t, dlt645.V1997, res.Meters[0].Version)
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	assert.Contains(t, out.String(), "meter 000000004321 (DL/T 645-1997, read address)")
	c := loadDLT645(t, out.String())
	assert.Equal(t, "1997", c.Buses[0].Meters[0].Version)
	assert.Equal(t, []string{"9010", "B611", "C010", "C011"}, identifiers(c, 0))

	cfg.Versions = []dlt645.Version{dlt645.V1997}
	res, err = Scan(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Meters, 1)
	assert.Equal(t, "000000004321", res.Meters[0].Address.String())
}

// TestScanFaults: a given address whose meter is off is reported, not hung on; noise on the line does
// not stop the others being read.
func TestScanFaults(t *testing.T) {
	off := threePhase(t, "000000000002")
	off.SetOff(true)
	ep := serve(t, sim.Options{NoiseProbability: 0.3, Seed: 7}, threePhase(t, "000000000001"), off)
	cfg := ScanConfig{Endpoint: ep, Gap: time.Millisecond, Timeout: 100 * time.Millisecond, Addresses: []dlt645.Address{addr(t, "1"), addr(t, "2")}}
	res, err := Scan(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Meters, 1)
	assert.Equal(t, "000000000001", res.Meters[0].Address.String())
	require.Len(t, res.Notes, 1)
	assert.Contains(t, res.Notes[0], "meter 000000000002 does not answer")
	assert.GreaterOrEqual(t, len(res.Meters[0].Answered), 10, "noise before replies is skipped")
}

// TestScanNothing: a line with no meter gives an empty report and no buses entry.
func TestScanNothing(t *testing.T) {
	ep := serve(t, sim.Options{})
	cfg := ScanConfig{Endpoint: ep, Gap: time.Millisecond, Timeout: 50 * time.Millisecond, Versions: []dlt645.Version{dlt645.V2007, dlt645.V1997}}
	res, err := Scan(context.Background(), cfg)
	require.NoError(t, err)
	assert.Empty(t, res.Meters)
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	assert.Contains(t, out.String(), "no meter found")
	assert.NotContains(t, out.String(), "buses:")
}
