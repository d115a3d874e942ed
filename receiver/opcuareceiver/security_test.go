package opcuareceiver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

// connectSpan waits for a successful opcua.connect span and returns it.
func (h *harness) connectSpan(t *testing.T) ptrace.Span {
	t.Helper()
	var out ptrace.Span
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.connect" && s.Status().Code() != ptrace.StatusCodeError {
				out = s
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond)
	return out
}

func attrStr(s ptrace.Span, k string) string {
	v, _ := s.Attributes().Get(k)
	return v.AsString()
}

// TestEverySecurityPolicy connects with each policy in both modes, the server pinned by fingerprint.
func TestEverySecurityPolicy(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"all"}})
	for _, policy := range []SecurityPolicy{PolicyBasic128Rsa15, PolicyBasic256, PolicyBasic256Sha256, PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss} {
		for _, mode := range []SecurityMode{SecurityModeSign, SecurityModeSignAndEncrypt} {
			t.Run(string(policy)+"/"+string(mode), func(t *testing.T) {
				cfg := testConfig(srv.Endpoint())
				cfg.Security.Policy, cfg.Security.Mode = policy, mode
				cfg.Security.ServerCertificateFingerprints = []string{fingerprintSHA256(srv.CertificateDER())}
				cfg.Nodes = plantNodes()[:1]
				h := startReceiver(t, cfg)
				h.waitValue(t, "opcua.temperature", nil, 21.5)
				span := h.connectSpan(t)
				assert.Equal(t, string(policy), attrStr(span, "opcua.security_policy"))
				assert.Equal(t, string(mode), attrStr(span, "opcua.security_mode"))
			})
		}
	}
}

func TestAutoSecurityTakesTheBestEndpoint(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"None", "Basic256:Sign", "Aes256_Sha256_RsaPss:SignAndEncrypt"}})
	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyAuto, SecurityModeAuto
	cfg.Security.ServerCertificateFingerprints = []string{strings.ReplaceAll(fingerprintSHA256(srv.CertificateDER()), ":", "")}
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	span := h.connectSpan(t)
	assert.Equal(t, "Aes256_Sha256_RsaPss", attrStr(span, "opcua.security_policy"))
	assert.Equal(t, "SignAndEncrypt", attrStr(span, "opcua.security_mode"))
}

func TestUntrustedServerIsRefusedUntilTrusted(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"Basic256Sha256:SignAndEncrypt"}})
	dir := t.TempDir()
	other, _, err := sim.GenerateCertificate("urn:someone:else", []string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.der"), other, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("not a certificate"), 0o600))

	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyBasic256Sha256, SecurityModeSignAndEncrypt
	cfg.Security.TrustedCertificatesDir = dir
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)

	var failed ptrace.Span
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if s.Name() == "opcua.connect" && s.Status().Code() == ptrace.StatusCodeError {
				failed = s
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, failed.Status().Message(), "server certificate not trusted")
	assert.Contains(t, failed.Status().Message(), fingerprintSHA256(srv.CertificateDER()))
	assert.Positive(t, h.errorCount(device.ErrConnection))
	_, ok := h.latest("opcua.temperature", nil)
	require.True(t, ok)
	h.waitStale(t, "opcua.temperature", nil)

	// Trusting it needs no restart: the directory is read at every connect.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.CertificateDER()}), 0o600))
	h.waitValue(t, "opcua.temperature", nil, 21.5)
}

func TestServerTrustedThroughItsCA(t *testing.T) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plant CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	srvKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	u, _ := url.Parse("urn:plant:server")
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, URIs: []*url.URL{u},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	require.NoError(t, err)

	srv := startSim(t, sim.Config{Security: []string{"Basic256Sha256:Sign"}, CertificateDER: srvDER, Key: srvKey})
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyBasic256Sha256, SecurityModeSign
	cfg.Security.TrustedCertificatesDir = dir
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
}

// TestLoginModes: user name and certificate logins pick an endpoint that offers the token type.
func TestLoginModes(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"None", "Basic256Sha256:SignAndEncrypt"}, Users: map[string]string{"operator": "pw"}})
	t.Run("username", func(t *testing.T) {
		cfg := testConfig(srv.Endpoint())
		cfg.Security.Policy, cfg.Security.Mode = PolicyAuto, SecurityModeAuto
		cfg.Security.InsecureAcceptAnyServerCertificate = true
		cfg.Auth = AuthConfig{Type: AuthUsername, Username: "operator", Password: "pw"}
		cfg.Nodes = plantNodes()[:1]
		h := startReceiver(t, cfg)
		h.waitValue(t, "opcua.temperature", nil, 21.5)
		assert.Equal(t, "Basic256Sha256", attrStr(h.connectSpan(t), "opcua.security_policy"))
		require.Eventually(t, func() bool {
			for _, e := range h.logs.All() {
				if strings.Contains(e.Message, "insecure_accept_any_server_certificate is on") {
					return true
				}
			}
			return false
		}, time.Second, 10*time.Millisecond, "the insecure opt-in is logged")
	})
	t.Run("no endpoint for the login", func(t *testing.T) {
		cfg := testConfig(srv.Endpoint())
		cfg.Security.Policy, cfg.Security.Mode = PolicyAuto, SecurityModeAuto
		cfg.Security.InsecureAcceptAnyServerCertificate = true
		cfg.Auth = AuthConfig{Type: AuthCertificate}
		cfg.Nodes = plantNodes()[:1]
		h := startReceiver(t, cfg)
		require.Eventually(t, func() bool {
			for _, s := range h.spans() {
				if s.Name() == "opcua.connect" && strings.Contains(s.Status().Message(), "no endpoint with security policy auto, mode auto and certificate login") {
					return true
				}
			}
			return false
		}, 10*time.Second, 20*time.Millisecond)
	})
}

func TestCertificateLogin(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"Basic256Sha256:Sign"}, CertificateLogin: true})
	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyBasic256Sha256, SecurityModeSign
	cfg.Security.ServerCertificateFingerprints = []string{fingerprintSHA256(srv.CertificateDER())}
	cfg.Auth = AuthConfig{Type: AuthCertificate}
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
}

// TestClientCertificateIsGeneratedAndKept: generated once at the configured path with the application
// URI, then reused; both certificates' remaining validity is reported.
func TestClientCertificateIsGeneratedAndKept(t *testing.T) {
	srv := startSim(t, sim.Config{Security: []string{"Basic256Sha256:SignAndEncrypt"}})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "pki", "client.pem"), filepath.Join(dir, "pki", "client.key")
	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyBasic256Sha256, SecurityModeSignAndEncrypt
	cfg.Security.CertificateFile, cfg.Security.PrivateKeyFile = certFile, keyFile
	cfg.Security.ApplicationURI = "urn:test-gateway:otelcol"
	cfg.Security.CertificateValidity = 48 * time.Hour
	cfg.Security.ServerCertificateFingerprints = []string{fingerprintSHA256(srv.CertificateDER())}
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)

	certs, err := readCertificates(certFile)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	require.Len(t, certs[0].URIs, 1)
	assert.Equal(t, "urn:test-gateway:otelcol", certs[0].URIs[0].String())
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	require.Eventually(t, func() bool {
		c, okc := h.latest("opcua.certificate.remaining_validity", map[string]string{"opcua.certificate.role": "client"})
		s, oks := h.latest("opcua.certificate.remaining_validity", map[string]string{"opcua.certificate.role": "server"})
		return okc && oks && c.value > 47*3600 && c.value <= 48*3600 && s.value > 364*24*3600
	}, 10*time.Second, 20*time.Millisecond, h.summary())

	// A second receiver with the same files reuses the certificate.
	before, err := os.ReadFile(certFile)
	require.NoError(t, err)
	cfg2 := *cfg
	cfg2.ID = "press-8"
	h2 := startReceiver(t, &cfg2)
	h2.waitValue(t, "opcua.temperature", nil, 21.5)
	after, err := os.ReadFile(certFile)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// An application URI that differs from the kept certificate's is an error at start.
	cfg3 := *cfg
	cfg3.Security.ApplicationURI = "urn:another"
	r, err := newReceiver(&cfg3, receiverSettings())
	require.NoError(t, err)
	err = r.Start(t.Context(), &statusHost{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "differs from the URI")
	require.NoError(t, r.Shutdown(t.Context()))
}

func TestBadStatusOnTheServerSideOfASecureChannel(t *testing.T) {
	// A Bad value through an encrypted channel is still a stale series and a counted error.
	srv := startSim(t, sim.Config{Security: []string{"Aes128_Sha256_RsaOaep:SignAndEncrypt"}})
	cfg := testConfig(srv.Endpoint())
	cfg.Security.Policy, cfg.Security.Mode = PolicyAes128Sha256RsaOaep, SecurityModeSignAndEncrypt
	cfg.Security.ServerCertificateFingerprints = []string{fingerprintSHA256(srv.CertificateDER())}
	cfg.Nodes = plantNodes()[:1]
	h := startReceiver(t, cfg)
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	srv.SetStatus("Temperature", nil, ua.StatusBadOutOfService)
	h.waitStale(t, "opcua.temperature", nil)
	assert.Positive(t, h.errorCount(device.ErrBadStatus))
}
