package modbusreceiver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

type pki struct {
	dir                       string
	caFile, certFile, keyFile string // client side
	serverCert                tls.Certificate
	clientCAs                 *x509.CertPool
}

// newPKI makes a throwaway CA, a server certificate for 127.0.0.1 and a client certificate.
func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ip bool) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth, true)
	cliDER, cliKey := issue(3, "client", x509.ExtKeyUsageClientAuth, false)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	require.NoError(t, err)
	p := pki{dir: dir, caFile: write("ca.pem", "CERTIFICATE", caDER), certFile: write("client.pem", "CERTIFICATE", cliDER), keyFile: write("client-key.pem", "EC PRIVATE KEY", cliKeyDER)}
	p.serverCert = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	p.clientCAs = x509.NewCertPool()
	p.clientCAs.AddCert(ca)
	return p
}

func TestReceiverTLS(t *testing.T) {
	p := newPKI(t)
	bank := modbussim.NewBank(7)
	bank.SetRegisters(7, modbussim.Input, 10, f32regs(230.25)...)
	addr := freeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp+tls://" + addr, TLSServerCert: &p.serverCert, TLSClientCAs: p.clientCAs,
		MaxClients: 4, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })

	cfg := loadConfig(t, `
poll: {interval: 100ms, timeout: 100ms}
connections:
  - endpoint: tcp+tls://`+addr+`
    tls: {ca_file: `+p.caFile+`, cert_file: `+p.certFile+`, key_file: `+p.keyFile+`}
    devices:
      - id: secure
        unit_id: 7
        fields:
          - {name: voltage, table: input, address: 10, type: float32, unit: V}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		v, ok := latest(points(s.metrics.AllMetrics()), "secure", "voltage", nil)
		return ok && !v.stale && v.value == 230.25
	}, 5*time.Second, 10*time.Millisecond)
}

// A TLS server that does not trust the client's CA refuses it: connection errors, the device is down.
func TestReceiverTLSUntrustedClient(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	bank := modbussim.NewBank(1)
	addr := freeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp+tls://" + addr, TLSServerCert: &p.serverCert, TLSClientCAs: other.clientCAs,
		MaxClients: 4, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })
	cfg := loadConfig(t, `
poll: {interval: 100ms, timeout: 100ms}
connections:
  - endpoint: tcp+tls://`+addr+`
    tls: {ca_file: `+p.caFile+`, cert_file: `+p.certFile+`, key_file: `+p.keyFile+`}
    devices:
      - {id: secure, fields: [{name: x, address: 0}]}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		up, ok := latest(pts, "secure", "iiot.device.up", nil)
		x, okx := latest(pts, "secure", "x", nil)
		return ok && up.value == 0 && okx && x.stale
	}, 5*time.Second, 10*time.Millisecond)
}

// RTU framing over TCP, with a reply from the wrong unit that the receiver retries.
func TestReceiverRTUOverTCP(t *testing.T) {
	bank := modbussim.NewBank(3, 4)
	bank.SetRegisters(3, modbussim.Holding, 0, 0xFFFE, 0x0001) // int32 CDAB → 0x0001FFFE
	bank.SetBits(3, modbussim.Coils, 5, true)
	bank.SetBits(4, modbussim.Discrete, 0, false, true)
	srv, err := modbussim.ListenRTUOverTCP("127.0.0.1:0", bank)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	bank.WrongUnit(3, 1)

	cfg := loadConfig(t, `
poll: {interval: 300ms, timeout: 200ms, retries: 2}
traces: {success_sample_ratio: 1}
connections:
  - endpoint: rtuovertcp://`+srv.Addr()+`
    baud_rate: 115200
    devices:
      - id: a
        unit_id: 3
        fields:
          - {name: counter, address: 0, type: int32, byte_order: CDAB, kind: sum}
          - {name: relay, table: coil, address: 5}
      - id: b
        unit_id: 4
        fields:
          - {name: door, register: 10002}
`)
	s := startReceiver(t, cfg)
	require.Eventually(t, func() bool {
		pts := points(s.metrics.AllMetrics())
		c, ok1 := latest(pts, "a", "counter", nil)
		r, ok2 := latest(pts, "a", "relay", nil)
		d, ok3 := latest(pts, "b", "door", nil)
		return ok1 && ok2 && ok3 && c.value == 0x0001FFFE && c.sum && r.value == 1 && d.value == 1
	}, 5*time.Second, 10*time.Millisecond)
	// The first read of unit 3 got an answer from unit 4: a protocol error, retried on the same span.
	found := false
	for _, sp := range spans(s.traces.AllTraces()) {
		if sp.name == "modbus.read_holding_registers" && sp.attrs["iiot.request.attempts"] == int64(2) {
			found = true
		}
	}
	assert.True(t, found, "a retried request span with 2 attempts: %v", spans(s.traces.AllTraces()))
	pe, ok := latest(points(s.metrics.AllMetrics()), "a", "iiot.device.poll.errors", map[string]string{"error.type": "protocol"})
	require.True(t, ok)
	assert.Equal(t, 1.0, pe.value)
}
