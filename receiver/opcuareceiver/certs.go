package opcuareceiver

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 is the OPC UA certificate thumbprint; accepted for pinning next to SHA-256
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// clientCertificate is the client's application instance certificate.
type clientCertificate struct {
	der  []byte
	key  *rsa.PrivateKey
	cert *x509.Certificate
	uri  string
}

// defaultApplicationURI names this collector on this host.
func defaultApplicationURI() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "urn:" + host + ":otelcol-iiot:opcua"
}

// loadOrCreateClientCertificate loads the certificate and key from the given files, or generates a
// self-signed certificate (written to the files when they are given, else kept in memory). generated
// tells whether it was generated.
func loadOrCreateClientCertificate(certFile, keyFile, appURI string, validity time.Duration, now time.Time) (c *clientCertificate, generated bool, err error) {
	if certFile != "" {
		_, errC := os.Stat(certFile)
		_, errK := os.Stat(keyFile)
		switch {
		case errC == nil && errK == nil:
			c, err := loadClientCertificate(certFile, keyFile)
			if err != nil {
				return nil, false, err
			}
			if appURI != "" && c.uri != appURI {
				return nil, false, fmt.Errorf("security.application_uri %q differs from the URI %q in %s: remove the files to have a new certificate generated, or fix application_uri", appURI, c.uri, certFile)
			}
			return c, false, nil
		case errC == nil || errK == nil:
			return nil, false, fmt.Errorf("only one of %s and %s exists: both or neither must exist", certFile, keyFile)
		case !errors.Is(errC, os.ErrNotExist) || !errors.Is(errK, os.ErrNotExist):
			return nil, false, fmt.Errorf("cannot check client certificate files: %w", errors.Join(errC, errK))
		}
	}
	if appURI == "" {
		appURI = defaultApplicationURI()
	}
	c, err = generateClientCertificate(appURI, validity, now)
	if err != nil {
		return nil, false, err
	}
	if certFile != "" {
		if err := writeClientCertificate(c, certFile, keyFile); err != nil {
			return nil, false, err
		}
	}
	return c, true, nil
}

func generateClientCertificate(appURI string, validity time.Duration, now time.Time) (*clientCertificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	uri, err := url.Parse(appURI)
	if err != nil {
		return nil, fmt.Errorf("application URI %q: %w", appURI, err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "otelcol-iiot opcua receiver", Organization: []string{"otelcol-iiot"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
		DNSNames:              []string{host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &clientCertificate{der: der, key: key, cert: cert, uri: appURI}, nil
}

func writeClientCertificate(c *clientCertificate, certFile, keyFile string) error {
	for _, f := range []string{certFile, keyFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return fmt.Errorf("create directory for %s: %w", f, err)
		}
	}
	certBytes := c.der
	if !strings.HasSuffix(strings.ToLower(certFile), ".der") {
		certBytes = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(c.key)})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write client key: %w", err)
	}
	if err := os.WriteFile(certFile, certBytes, 0o644); err != nil { //nolint:gosec // a certificate is public
		return fmt.Errorf("write client certificate: %w", err)
	}
	return nil
}

func loadClientCertificate(certFile, keyFile string) (*clientCertificate, error) {
	certs, err := readCertificates(certFile)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate", certFile)
	}
	key, err := readRSAKey(keyFile)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("%s does not belong to the key in %s (OPC UA needs an RSA key pair)", certFile, keyFile)
	}
	c := &clientCertificate{der: cert.Raw, key: key, cert: cert}
	if len(cert.URIs) > 0 {
		c.uri = cert.URIs[0].String()
	} else {
		return nil, fmt.Errorf("%s has no URI in its subjectAltName: OPC UA needs the application URI there", certFile)
	}
	return c, nil
}

// readCertificates reads every certificate of a PEM file, or one DER certificate.
func readCertificates(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file) //nolint:gosec // the operator's configured certificate file or trusted directory
	if err != nil {
		return nil, err
	}
	return parseCertificates(b, file)
}

func parseCertificates(b []byte, name string) ([]*x509.Certificate, error) {
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func readRSAKey(file string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(file) //nolint:gosec // the operator's configured key file
	if err != nil {
		return nil, err
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		der = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: not an RSA private key (PKCS#1 or PKCS#8, PEM or DER)", file)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: OPC UA needs an RSA key, got %T", file, k)
	}
	return rk, nil
}

// trustStore decides whether a server certificate is trusted.
type trustStore struct {
	dir          string
	fingerprints [][]byte
	acceptAny    bool
}

func newTrustStore(s SecurityConfig) *trustStore {
	t := &trustStore{dir: s.TrustedCertificatesDir, acceptAny: s.InsecureAcceptAnyServerCertificate}
	for _, f := range s.ServerCertificateFingerprints {
		t.fingerprints = append(t.fingerprints, decodeFingerprint(f))
	}
	return t
}

// fingerprintSHA256 is the SHA-256 of a DER certificate, hex with colons.
func fingerprintSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// verify returns nil when der is trusted: pinned by fingerprint, equal to a certificate in the trusted
// directory, or issued by one of them (a CA); the directory is read at every call so certificates can be
// added without a restart.
func (t *trustStore) verify(der []byte, now time.Time) error {
	if len(der) == 0 {
		return errors.New("the server sent no certificate")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("server certificate does not parse: %w", err)
	}
	if t.acceptAny {
		return nil
	}
	s256 := sha256.Sum256(der)
	s1 := sha1.Sum(der) //nolint:gosec // see import
	for _, f := range t.fingerprints {
		if bytes.Equal(f, s256[:]) || bytes.Equal(f, s1[:]) {
			return nil
		}
	}
	if t.dir != "" {
		entries, err := os.ReadDir(t.dir)
		if err != nil {
			return fmt.Errorf("server certificate not trusted: cannot read trusted_certificates_dir: %w", err)
		}
		roots := x509.NewCertPool()
		haveCA := false
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			certs, err := readCertificates(filepath.Join(t.dir, e.Name()))
			if err != nil {
				continue // not a certificate (a README, a CRL …)
			}
			for _, c := range certs {
				if bytes.Equal(c.Raw, der) {
					if now.After(c.NotAfter) {
						return fmt.Errorf("server certificate %s is trusted but expired on %s", c.Subject, c.NotAfter.Format(time.RFC3339))
					}
					return nil
				}
				if c.IsCA {
					roots.AddCert(c)
					haveCA = true
				}
			}
		}
		if haveCA {
			_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("server certificate not trusted (subject %q, SHA-256 %s): put it in trusted_certificates_dir or pin its fingerprint", cert.Subject.String(), fingerprintSHA256(der))
}
