package opcuareceiver

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
)

// SecurityPolicy is an OPC UA security policy, or auto (the best the server offers).
type SecurityPolicy string

const (
	PolicyAuto                SecurityPolicy = "auto"
	PolicyNone                SecurityPolicy = "None"
	PolicyBasic128Rsa15       SecurityPolicy = "Basic128Rsa15"
	PolicyBasic256            SecurityPolicy = "Basic256"
	PolicyBasic256Sha256      SecurityPolicy = "Basic256Sha256"
	PolicyAes128Sha256RsaOaep SecurityPolicy = "Aes128_Sha256_RsaOaep"
	PolicyAes256Sha256RsaPss  SecurityPolicy = "Aes256_Sha256_RsaPss"
)

var securityPolicies = []SecurityPolicy{PolicyAuto, PolicyNone, PolicyBasic128Rsa15, PolicyBasic256, PolicyBasic256Sha256, PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss}

// SecurityMode is an OPC UA message security mode, or auto.
type SecurityMode string

const (
	SecurityModeAuto           SecurityMode = "auto"
	SecurityModeNone           SecurityMode = "None"
	SecurityModeSign           SecurityMode = "Sign"
	SecurityModeSignAndEncrypt SecurityMode = "SignAndEncrypt"
)

var securityModes = []SecurityMode{SecurityModeAuto, SecurityModeNone, SecurityModeSign, SecurityModeSignAndEncrypt}

// AuthType is how the session authenticates the user.
type AuthType string

const (
	AuthAnonymous   AuthType = "anonymous"
	AuthUsername    AuthType = "username"
	AuthCertificate AuthType = "certificate"
)

// SecurityConfig chooses the secure channel and how the server is trusted. It is not the collector's
// configtls: OPC UA over opc.tcp does not run TLS. Its secure channel (Part 6, UA Secure Conversation)
// signs and encrypts with the application instance certificate under a security policy and mode;
// that certificate carries the application URI, may be generated and written on first use, and the
// server's is trusted by a directory or pinned fingerprints. None of that maps to configtls's keys
// (TLS versions, cipher suites, server name, a CA pool for a TLS handshake).
type SecurityConfig struct {
	// Policy is None, Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep,
	// Aes256_Sha256_RsaPss or auto (the endpoint with the highest security level the server offers).
	Policy SecurityPolicy `mapstructure:"policy"`
	// Mode is None, Sign, SignAndEncrypt or auto.
	Mode SecurityMode `mapstructure:"mode"`
	// CertificateFile and PrivateKeyFile are the client's application instance certificate (PEM or DER)
	// and RSA key (PEM). When set but absent, a certificate is generated and written there; when not set
	// and a secure endpoint is used, a certificate is generated in memory at every start.
	CertificateFile string `mapstructure:"certificate_file"`
	PrivateKeyFile  string `mapstructure:"private_key_file"`
	// ApplicationURI of the client; it must equal the certificate's URI SAN. Default:
	// urn:<hostname>:otelcol-iiot:opcua (or the URI of a given certificate).
	ApplicationURI string `mapstructure:"application_uri"`
	// TrustedCertificatesDir holds trusted server certificates or CA certificates (PEM or DER), read at
	// every connect.
	TrustedCertificatesDir string `mapstructure:"trusted_certificates_dir"`
	// ServerCertificateFingerprints pins server certificates by SHA-256 (or SHA-1) fingerprint, hex with
	// or without colons.
	ServerCertificateFingerprints []string `mapstructure:"server_certificate_fingerprints"`
	// InsecureAcceptAnyServerCertificate trusts whatever certificate the server shows (logged).
	InsecureAcceptAnyServerCertificate bool `mapstructure:"insecure_accept_any_server_certificate"`
	// CertificateValidity is the lifetime of a generated client certificate.
	CertificateValidity time.Duration `mapstructure:"certificate_validity"`
}

// AuthConfig is the user identity of the session.
type AuthConfig struct {
	// Type is anonymous, username or certificate.
	Type     AuthType            `mapstructure:"type"`
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// CertificateFile and PrivateKeyFile are the user certificate for type certificate; empty means the
	// client's application instance certificate.
	CertificateFile string `mapstructure:"certificate_file"`
	PrivateKeyFile  string `mapstructure:"private_key_file"`
}

var fingerprintRE = regexp.MustCompile(`^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$`)

// Validate reports every problem of the security keys, named under prefix ("security.").
func (s SecurityConfig) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(securityPolicies, s.Policy) {
		add("%spolicy: unknown %q (want auto, None, Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss)", prefix, s.Policy)
	}
	if !slices.Contains(securityModes, s.Mode) {
		add("%smode: unknown %q (want auto, None, Sign or SignAndEncrypt)", prefix, s.Mode)
	}
	if s.Policy == PolicyNone && (s.Mode == SecurityModeSign || s.Mode == SecurityModeSignAndEncrypt) {
		add("%smode: %s needs a %spolicy other than None", prefix, s.Mode, prefix)
	}
	if s.Mode == SecurityModeNone && s.Policy != PolicyNone && s.Policy != PolicyAuto && slices.Contains(securityPolicies, s.Policy) {
		add("%smode: None cannot be used with %spolicy %s (want Sign or SignAndEncrypt, or policy None)", prefix, prefix, s.Policy)
	}
	if (s.CertificateFile == "") != (s.PrivateKeyFile == "") {
		add("%scertificate_file, %sprivate_key_file: set both or neither", prefix, prefix)
	}
	if s.CertificateFile != "" && s.CertificateFile == s.PrivateKeyFile {
		add("%sprivate_key_file: must differ from certificate_file", prefix)
	}
	if s.ApplicationURI != "" {
		if u, err := url.Parse(s.ApplicationURI); err != nil || u.Scheme == "" {
			add("%sapplication_uri: %q is not a URI (e.g. urn:site-a:gateway:otelcol)", prefix, s.ApplicationURI)
		}
	}
	for i, f := range s.ServerCertificateFingerprints {
		if !fingerprintRE.MatchString(normalizeFingerprint(f)) {
			add("%sserver_certificate_fingerprints[%d]: %q is not a SHA-256 (64 hex digits) or SHA-1 (40 hex digits) fingerprint", prefix, i, f)
		}
	}
	trusts := s.TrustedCertificatesDir != "" || len(s.ServerCertificateFingerprints) > 0
	if s.InsecureAcceptAnyServerCertificate && trusts {
		add("%sinsecure_accept_any_server_certificate: cannot be combined with trusted_certificates_dir or server_certificate_fingerprints", prefix)
	}
	if s.Policy != PolicyNone && !trusts && !s.InsecureAcceptAnyServerCertificate {
		add("%s: policy %s needs trusted_certificates_dir or server_certificate_fingerprints to trust the server (or insecure_accept_any_server_certificate: true)", strings.TrimSuffix(prefix, "."), s.Policy)
	}
	if s.CertificateValidity < time.Hour {
		add("%scertificate_validity: must be >= 1h, got %s", prefix, s.CertificateValidity)
	}
	return errors.Join(errs...)
}

// Validate reports every problem of the auth keys, named under prefix ("auth."); sec is the
// security block, which decides whether a client certificate is in use.
func (a AuthConfig) Validate(prefix string, sec SecurityConfig) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch a.Type {
	case AuthAnonymous:
	case AuthUsername:
		if a.Username == "" {
			add("%susername: required with %stype username", prefix, prefix)
		}
	case AuthCertificate:
		if (a.CertificateFile == "") != (a.PrivateKeyFile == "") {
			add("%scertificate_file, %sprivate_key_file: set both or neither (neither: the client certificate)", prefix, prefix)
		}
		if a.CertificateFile == "" && sec.Policy == PolicyNone {
			add("%scertificate_file: required with %stype certificate when security.policy is None (no client certificate is in use)", prefix, prefix)
		}
	default:
		add("%stype: unknown %q (want anonymous, username or certificate)", prefix, a.Type)
	}
	if a.Type != AuthUsername && (a.Username != "" || a.Password != "") {
		add("%susername, %spassword: only used with %stype username", prefix, prefix, prefix)
	}
	if a.Type != AuthCertificate && (a.CertificateFile != "" || a.PrivateKeyFile != "") {
		add("%scertificate_file, %sprivate_key_file: only used with %stype certificate", prefix, prefix, prefix)
	}
	return errors.Join(errs...)
}

func normalizeFingerprint(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sha256:"), "sha1:")
	s = strings.ReplaceAll(s, ":", "")
	s = strings.ReplaceAll(s, " ", "")
	return strings.ToLower(s)
}

func decodeFingerprint(s string) []byte {
	b, _ := hex.DecodeString(normalizeFingerprint(s))
	return b
}
