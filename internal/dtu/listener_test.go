package dtu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

// startMeters serves DL/T 645 meters on loopback (the serial side of a DTU).
func startMeters(t *testing.T, meters ...*sim.Meter) string {
	t.Helper()
	srv := sim.NewServer(sim.Options{Preamble: 4}, meters...)
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
	return l.Addr().String()
}

func simMeter(t *testing.T, address string, voltage float64) *sim.Meter {
	t.Helper()
	a, err := dlt645.ParseAddress(address)
	require.NoError(t, err)
	m := sim.NewMeter(a, dlt645.V2007)
	require.NoError(t, m.Set(0x02010100, voltage))
	return m
}

type fixture struct {
	l    *Listener
	addr string
	logs *observer.ObservedLogs
	mr   *sdkmetric.ManualReader
}

// listen starts a listener on a free loopback port for ids.
func listen(t *testing.T, cfg *Config, ids ...string) fixture {
	t.Helper()
	if cfg.Endpoint == "" {
		cfg.Endpoint = "127.0.0.1:0"
	}
	core, logs := observer.New(zapcore.DebugLevel)
	mr := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(mr))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	l, err := New(context.Background(), *cfg, ids, Settings{Logger: zap.New(core), MeterProvider: mp, Scope: "test"})
	require.NoError(t, err)
	require.NoError(t, l.Start())
	t.Cleanup(l.Close)
	return fixture{l: l, addr: l.Addr().String(), logs: logs, mr: mr}
}

func defaults(mod func(*Config)) *Config {
	c := NewDefaultConfig()
	c.Heartbeat = PatternConfig{Text: "HB"}
	if mod != nil {
		mod(c)
	}
	return c
}

// readVoltage reads phase A voltage of meter addr over the DTU's connection.
func readVoltage(t *testing.T, conn net.Conn, addr string) (dlt645.Result, dlt645.Counts, error) {
	t.Helper()
	a, err := dlt645.ParseAddress(addr)
	require.NoError(t, err)
	c := dlt645.NewClient(conn)
	c.Gap = 0
	c.Timeout = time.Second
	res, err := c.Read(context.Background(), dlt645.V2007, a, 0x02010100)
	return res, c.Counts(), err
}

// voltage encodes v as the meter would (XXX.X, BCD, +0x33).
func voltageBytes(t *testing.T, v float64) []byte {
	t.Helper()
	m := simMeter(t, "000000000009", v)
	req := dlt645.ReadRequest(dlt645.V2007, m.Address(), 0x02010100)
	replies := sim.NewServer(sim.Options{}, m).Handle(req, time.Now())
	require.Len(t, replies, 1)
	r, err := dlt645.ParseReadReply(dlt645.V2007, req, replies[0])
	require.NoError(t, err)
	return r.Value
}

func dialOK(t *testing.T, l *Listener, id string) net.Conn {
	t.Helper()
	var c net.Conn
	require.Eventually(t, func() bool {
		var err error
		c, err = l.Dial(id)
		return err == nil
	}, wait, time.Millisecond)
	return c
}

// Two DTUs on one port, each in front of its own meter: each id reaches its own meter, and heartbeats
// (in the middle of replies, and between polls) never reach the protocol client.
func TestTwoDTUsOnePortWithHeartbeats(t *testing.T) {
	f := listen(t, defaults(nil), "pv-east", "pv-west")
	east := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("pv-east\r\n"), Heartbeat: []byte("HB"),
		MidReply: true, Device: startMeters(t, simMeter(t, "000000000001", 231.5))})
	west := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("pv-west"), Heartbeat: []byte("HB"),
		HeartbeatEvery: 2 * time.Millisecond, Device: startMeters(t, simMeter(t, "000000000002", 228.4))})

	ce := dialOK(t, f.l, "pv-east")
	cw := dialOK(t, f.l, "pv-west")
	for i := range 20 {
		res, counts, err := readVoltage(t, ce, "000000000001")
		require.NoError(t, err, "poll %d", i)
		assert.Equal(t, voltageBytes(t, 231.5), res.Value)
		assert.Zero(t, counts.Noise+counts.Rejected, "no heartbeat byte reached the frame splitter")
		res, counts, err = readVoltage(t, cw, "000000000002")
		require.NoError(t, err, "poll %d", i)
		assert.Equal(t, voltageBytes(t, 228.4), res.Value)
		assert.Zero(t, counts.Noise+counts.Rejected)
	}
	assert.GreaterOrEqual(t, east.Beats(), uint64(20), "a heartbeat inside every reply")
	require.Eventually(t, func() bool { return west.Beats() > 0 }, wait, time.Millisecond)
	// A meter of the other DTU is not on this line.
	_, _, err := readVoltage(t, ce, "000000000002")
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.True(t, f.l.Connected("pv-east") && f.l.Connected("pv-west"))
	assert.Equal(t, uint64(2), f.l.Stats().Registrations)
}

// The registration repeated mid-stream (DTUs that send it as their heartbeat) is stripped too.
func TestRegistrationRepeatedIsStripped(t *testing.T) {
	f := listen(t, defaults(func(c *Config) { c.Heartbeat = PatternConfig{} }), "862951034567890")
	d := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("862951034567890"), Heartbeat: []byte("862951034567890"),
		MidReply: true, Device: startMeters(t, simMeter(t, "000000000001", 220))})
	c := dialOK(t, f.l, "862951034567890")
	res, counts, err := readVoltage(t, c, "000000000001")
	require.NoError(t, err)
	assert.Equal(t, voltageBytes(t, 220), res.Value)
	assert.Zero(t, counts.Noise+counts.Rejected)
	assert.Positive(t, d.Beats())
}

// A DTU that redials replaces its old socket, which is closed; old connections fail, Dial gives the
// new one.
func TestReconnectReplacesOldSocket(t *testing.T) {
	f := listen(t, defaults(nil), "dtu-1")
	dev := startMeters(t, simMeter(t, "000000000001", 230))
	first := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("dtu-1"), Device: dev})
	old := dialOK(t, f.l, "dtu-1")
	_, _, err := readVoltage(t, old, "000000000001")
	require.NoError(t, err)

	second := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("dtu-1"), Device: dev})
	select {
	case <-first.Closed():
	case <-time.After(wait):
		t.Fatal("the old socket was not closed")
	}
	_, err = old.Write([]byte{0x68})
	require.ErrorIs(t, err, net.ErrClosed)
	assert.False(t, second.IsClosed())
	c := dialOK(t, f.l, "dtu-1")
	_, _, err = readVoltage(t, c, "000000000001")
	require.NoError(t, err)
	st := f.l.Stats()
	assert.Equal(t, uint64(1), st.Replaced)
	assert.Equal(t, uint64(2), st.Registrations)

	// The DTU drops: Dial says not connected; reads of a view fail at once instead of timing out.
	second.Close()
	require.Eventually(t, func() bool { return !f.l.Connected("dtu-1") }, wait, time.Millisecond)
	_, err = f.l.Dial("dtu-1")
	require.ErrorIs(t, err, ErrNotConnected)
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
}

// An unknown id is closed, counted each time and logged once.
func TestUnknownIDClosedCountedLoggedOnce(t *testing.T) {
	f := listen(t, defaults(nil), "known")
	for range 3 {
		d := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("stranger")})
		select {
		case <-d.Closed():
		case <-time.After(wait):
			t.Fatal("unknown DTU not closed")
		}
	}
	require.Eventually(t, func() bool { return f.l.Stats().Unknown == 3 }, wait, time.Millisecond)
	assert.Equal(t, 1, f.logs.FilterMessageSnippet("unknown id").Len(), "logged once")
	assert.Equal(t, "stranger", f.logs.FilterMessageSnippet("unknown id").All()[0].ContextMap()["dtu.id"])
	assert.False(t, f.l.Connected("stranger"))
	assert.Equal(t, int64(3), counter(t, f.mr, "iiot.dtu.rejected", "reason", reasonUnknownID))
}

// A socket that sends nothing for idle_timeout is closed; heartbeats keep it open.
func TestIdleTimeout(t *testing.T) {
	f := listen(t, defaults(func(c *Config) { c.IdleTimeout = 150 * time.Millisecond }), "quiet", "beating")
	quiet := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("quiet")})
	beating := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("beating"), Heartbeat: []byte("HB"), HeartbeatEvery: 20 * time.Millisecond})
	select {
	case <-quiet.Closed():
	case <-time.After(wait):
		t.Fatal("idle DTU not closed")
	}
	// The beating DTU has outlived the idle timeout several times over.
	require.Eventually(t, func() bool { return beating.Beats() > 25 }, wait, time.Millisecond)
	assert.False(t, beating.IsClosed())
	assert.True(t, f.l.Connected("beating"))
	assert.Equal(t, uint64(1), f.l.Stats().IdleClosed)
	assert.GreaterOrEqual(t, f.l.Stats().Heartbeats, uint64(20), "heartbeats counted while the session runs")
}

// A socket that does not register in time is closed.
func TestRegistrationTimeout(t *testing.T) {
	f := listen(t, defaults(func(c *Config) { c.RegistrationTimeout = 100 * time.Millisecond }), "x")
	d := dtutest.Dial(t, f.addr, dtutest.Options{})
	select {
	case <-d.Closed():
	case <-time.After(wait):
		t.Fatal("silent socket not closed")
	}
	require.Eventually(t, func() bool { return f.l.Stats().Unregistered == 1 }, wait, time.Millisecond)
}

// Beyond max_connections, sockets are closed at once; a freed slot is usable again.
func TestMaxConnections(t *testing.T) {
	f := listen(t, defaults(func(c *Config) { c.MaxConnections = 2 }), "a", "b", "c")
	a := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("a")})
	dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("b")})
	require.Eventually(t, func() bool { return f.l.Connected("a") && f.l.Connected("b") }, wait, time.Millisecond)
	c := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("c")})
	select {
	case <-c.Closed():
	case <-time.After(wait):
		t.Fatal("third socket not closed")
	}
	assert.False(t, f.l.Connected("c"))
	assert.Equal(t, uint64(1), f.l.Stats().OverCap)
	assert.Equal(t, int64(1), counter(t, f.mr, "iiot.dtu.rejected", "reason", reasonMaxConnections))

	a.Close()
	require.Eventually(t, func() bool { return !f.l.Connected("a") }, wait, time.Millisecond)
	require.Eventually(t, func() bool {
		dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("c")})
		return f.l.Connected("c")
	}, wait, 20*time.Millisecond)
}

// IMEI by regex, and hex ids.
func TestRegistrationFormats(t *testing.T) {
	t.Run("regex", func(t *testing.T) {
		f := listen(t, defaults(func(c *Config) { c.Registration.Regex = `IMEI:(\d{15})` }), "862951034567890")
		dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("USR-G781 IMEI:862951034567890 V1.0")})
		require.Eventually(t, func() bool { return f.l.Connected("862951034567890") }, wait, time.Millisecond)
	})
	t.Run("regex across reads", func(t *testing.T) {
		f := listen(t, defaults(func(c *Config) { c.Registration.Regex = `^ICCID(\d{20});` }), "89860012345678901234")
		d := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("ICCID8986001234")})
		require.NoError(t, d.Send([]byte("5678901234;")))
		require.Eventually(t, func() bool { return f.l.Connected("89860012345678901234") }, wait, time.Millisecond)
	})
	t.Run("hex", func(t *testing.T) {
		cfg := defaults(func(c *Config) { c.Registration.Format = FormatHex; c.Heartbeat = PatternConfig{Hex: "FE FD"} })
		id, err := cfg.NormalizeID("00 01 a0 ff")
		require.NoError(t, err)
		assert.Equal(t, "0001A0FF", id)
		f := listen(t, cfg, id)
		dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte{0x00, 0x01, 0xA0, 0xFF}})
		require.Eventually(t, func() bool { return f.l.Connected("0001A0FF") }, wait, time.Millisecond)
	})
}

// DTUs that speak TLS.
func TestTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	cfg := defaults(func(c *Config) {
		c.TLS = &configtls.ServerConfig{Config: configtls.Config{CertFile: cert, KeyFile: key}}
	})
	f := listen(t, cfg, "tls-dtu")
	d := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("tls-dtu"), Heartbeat: []byte("HB"), MidReply: true,
		TLS: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, Device: startMeters(t, simMeter(t, "000000000001", 219.9))})
	c := dialOK(t, f.l, "tls-dtu")
	res, _, err := readVoltage(t, c, "000000000001")
	require.NoError(t, err)
	assert.Equal(t, voltageBytes(t, 219.9), res.Value)
	assert.Positive(t, d.Beats())

	// A plain-text DTU on the TLS port never registers.
	plain := dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("tls-dtu")})
	select {
	case <-plain.Closed():
	case <-time.After(wait):
		t.Fatal("plain DTU not closed")
	}
	assert.True(t, f.l.Connected("tls-dtu"), "the TLS session is untouched")
}

// Read deadlines of a view, and a deadline moved while a Read waits.
func TestConnDeadlines(t *testing.T) {
	f := listen(t, defaults(nil), "d")
	dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("d")})
	c := dialOK(t, f.l, "d")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := c.Read(make([]byte, 8))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout())

	require.NoError(t, c.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	require.NoError(t, c.SetReadDeadline(time.Now())) // as a cancelled context does
	select {
	case err := <-done:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(wait):
		t.Fatal("Read did not see the new deadline")
	}
	require.NoError(t, c.Close())
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	assert.True(t, f.l.Connected("d"), "closing a view leaves the DTU connected")
}

// The telemetry shows connected DTUs and their last registration time.
func TestTelemetry(t *testing.T) {
	f := listen(t, defaults(nil), "up", "down")
	before := time.Now()
	dtutest.Dial(t, f.addr, dtutest.Options{Registration: []byte("up")})
	require.Eventually(t, func() bool { return f.l.Connected("up") }, wait, time.Millisecond)
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.mr.Collect(context.Background(), &rm))
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					id, _ := p.Attributes.Value("dtu.id")
					got[m.Name+"/"+id.AsString()] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					id, _ := p.Attributes.Value("dtu.id")
					got[m.Name+"/"+id.AsString()] = p.Value
				}
			}
		}
	}
	assert.Equal(t, 1.0, got["iiot.dtu.connected/up"])
	assert.Equal(t, 0.0, got["iiot.dtu.connected/down"])
	assert.InDelta(t, float64(before.UnixNano())/1e9, got["iiot.dtu.registration.time/up"], 5)
	_, ok := got["iiot.dtu.registration.time/down"]
	assert.False(t, ok, "never registered: no time")
}

func TestValidate(t *testing.T) {
	c := &Config{Endpoint: "tcp://0.0.0.0:9000", Registration: RegistrationConfig{Format: "base64", Regex: "(a)(b)"},
		Heartbeat: PatternConfig{Text: "x", Hex: "zz"}, IdleTimeout: -1, MaxConnections: 0}
	err := c.Validate("dtu.")
	require.Error(t, err)
	for _, want := range []string{
		`dtu.endpoint: "tcp://0.0.0.0:9000" must be host:port`,
		`dtu.registration.format: unknown "base64" (want text or hex)`,
		`dtu.registration.regex: "(a)(b)" has 2 capture groups`,
		`dtu.heartbeat: give text or hex, not both`,
		`dtu.idle_timeout: must be > 0`,
		`dtu.registration_timeout: must be > 0`,
		`dtu.max_connections: must be at least 1`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	c = defaults(func(c *Config) { c.Endpoint = "127.0.0.1:9000"; c.Heartbeat = PatternConfig{Hex: "0xFE"} })
	require.ErrorContains(t, c.Validate(""), "heartbeat: one byte is too short")
	c.Heartbeat = PatternConfig{Hex: "FE 0"}
	require.ErrorContains(t, c.Validate(""), `heartbeat: "FE 0" is not hex bytes`)
	c.Heartbeat = PatternConfig{Hex: "FE:FE"}
	require.NoError(t, c.Validate(""))
	c.Registration.Format = FormatHex
	_, err = c.NormalizeID("pv-east")
	require.ErrorContains(t, err, "must be hex bytes")
}

func TestStartFailsOnBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	l, err := New(context.Background(), *defaults(func(c *Config) { c.Endpoint = busy.Addr().String() }), nil, Settings{})
	require.NoError(t, err)
	require.ErrorContains(t, l.Start(), "dtu: listen on "+busy.Addr().String())
	l.Close()
}

func counter(t *testing.T, mr *sdkmetric.ManualReader, name, key, value string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, mr.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range s.DataPoints {
					if v, _ := p.Attributes.Value(attribute.Key(key)); v.AsString() == value {
						return p.Value
					}
				}
			}
		}
	}
	return 0
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
