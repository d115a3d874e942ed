// Package opcuasim is a small OPC UA server (gopcua's server package) with a plant-like address space, used
// by the opcua receiver's tests and benchmarks and by the opcuasim demo program.
//
// Address space, in the namespace URI of Config.NamespaceURI (default urn:otelcol-iiot:opcuasim):
//
//	Objects/Plant                      folder
//	  Line1                            folder
//	    Temperature  s=Temperature     Double
//	    Pressure     s=Pressure        Float
//	    Counter      s=Counter         UInt32 (an energy counter in kWh: read as Wh with scale 1000)
//	    Running      s=Running         Boolean
//	    Vector       s=Vector          Double[3]
//	    Name         s=Name            String (not a number)
//	    Broken       s=Broken          Bad status BadNoCommunication
//	    Doubtful     s=Doubtful        Uncertain status UncertainLastUsableValue, value 7
//	  Line2                            folder
//	    Temperature  s=Line2.Temperature  Double
//	    Pressure     s=Line2.Pressure     Float
//	  Bulk                             folder with Config.BulkNodes Double variables s=Bulk.00000 …
package opcuasim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
)

// DefaultNamespaceURI is the namespace of the simulator's nodes.
const DefaultNamespaceURI = "urn:otelcol-iiot:opcuasim"

// Config is what the simulator serves.
type Config struct {
	// Host and Port to listen on (the endpoint URL is opc.tcp://Host:Port).
	Host string
	Port int
	// AdvertiseEndpoints are further host:port addresses the server answers GetEndpoints and
	// CreateSession for (a proxy or NAT in front of it); the gopcua server only lists the endpoints
	// whose URL equals the one the client asked for.
	AdvertiseEndpoints []string
	// NamespaceURI of the plant nodes.
	NamespaceURI string
	// ExtraNamespaces are registered before NamespaceURI, so its index moves up by their number.
	ExtraNamespaces []string
	// BulkNodes is the number of Double variables under Plant/Bulk.
	BulkNodes int
	// Security lists the endpoints as "None" or "<policy>:<Sign|SignAndEncrypt>"; "all" offers None plus
	// every policy in both modes. Empty: None only.
	Security []string
	// Users enables user name login with these user → password pairs (the gopcua server does not check
	// the password; the end-to-end tests use a server that does).
	Users map[string]string
	// CertificateLogin enables X.509 user certificate login (not checked by the gopcua server either).
	CertificateLogin bool
	// CertificateDER and Key are the server's certificate; generated when nil and Security needs them.
	CertificateDER []byte
	Key            *rsa.PrivateKey
	// Logger receives the server's log lines; nil discards them.
	Logger server.Logger
}

// Server is a running simulator.
type Server struct {
	cfg    Config
	srv    *server.Server
	ns     *server.NodeNameSpace
	cancel context.CancelFunc

	mu     sync.Mutex
	values map[string]*ua.DataValue
	ids    map[string]*ua.NodeID
	closed bool
}

// Policies are the security policies the simulator can offer (the short names).
var Policies = []string{"Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"}

// Start builds the address space and starts listening.
func Start(cfg Config) (*Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.NamespaceURI == "" {
		cfg.NamespaceURI = DefaultNamespaceURI
	}
	if cfg.Port <= 0 {
		return nil, errors.New("sim: a port is required (the gopcua server does not report the port it bound)")
	}
	secure := false
	var sec [][2]string
	if len(cfg.Security) == 0 {
		cfg.Security = []string{"None"}
	}
	for _, s := range cfg.Security {
		switch s {
		case "all":
			sec = append(sec, [2]string{"None", "None"})
			for _, p := range Policies {
				sec = append(sec, [2]string{p, "Sign"}, [2]string{p, "SignAndEncrypt"})
			}
			secure = true
		case "None":
			sec = append(sec, [2]string{"None", "None"})
		default:
			p, m, ok := strings.Cut(s, ":")
			if !ok || (m != "Sign" && m != "SignAndEncrypt") {
				return nil, fmt.Errorf("sim: security %q: want None, all or <policy>:<Sign|SignAndEncrypt>", s)
			}
			sec = append(sec, [2]string{p, m})
			secure = true
		}
	}
	if cfg.CertificateDER == nil || cfg.Key == nil {
		der, key, err := GenerateCertificate("urn:otelcol-iiot:opcuasim:server", []string{cfg.Host, "localhost"}, 365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		cfg.CertificateDER, cfg.Key = der, key
	}

	opts := []server.Option{server.EndPoint(cfg.Host, cfg.Port)}
	for _, a := range cfg.AdvertiseEndpoints {
		h, p, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("sim: advertise endpoint %q: %w", a, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("sim: advertise endpoint %q: %w", a, err)
		}
		opts = append(opts, server.EndPoint(h, port))
	}
	opts = append(opts,
		server.ServerName("otelcol-iiot opcuasim"),
		server.ManufacturerName("otelcol-iiot"),
		server.ProductName("opcuasim"),
		server.SoftwareVersion("1.0.0"),
		server.PrivateKey(cfg.Key),
		server.Certificate(cfg.CertificateDER),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	)
	if cfg.Logger != nil {
		opts = append(opts, server.SetLogger(cfg.Logger))
	}
	for _, s := range sec {
		opts = append(opts, server.EnableSecurity(s[0], ua.MessageSecurityModeFromString(s[1])))
	}
	if len(cfg.Users) > 0 || cfg.CertificateLogin {
		if !secure {
			return nil, errors.New("sim: user name and certificate login need a secure endpoint (the gopcua server offers them only there)")
		}
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeUserName))
	}
	if cfg.CertificateLogin {
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeCertificate))
	}

	s := &Server{cfg: cfg, values: map[string]*ua.DataValue{}, ids: map[string]*ua.NodeID{}}
	s.srv = server.New(opts...)
	for _, uri := range cfg.ExtraNamespaces {
		server.NewNodeNameSpace(s.srv, uri)
	}
	s.ns = server.NewNodeNameSpace(s.srv, cfg.NamespaceURI)
	s.build()

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.srv.Start(ctx); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return fmt.Sprintf("opc.tcp://%s:%d", s.cfg.Host, s.cfg.Port) }

// CertificateDER is the server's certificate.
func (s *Server) CertificateDER() []byte { return s.cfg.CertificateDER }

// NamespaceIndex is the index of the plant namespace.
func (s *Server) NamespaceIndex() uint16 { return s.ns.ID() }

// NodeID returns the node id of a variable by its string id (e.g. "Temperature", "Bulk.00042").
func (s *Server) NodeID(name string) *ua.NodeID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[name]
}

func (s *Server) build() {
	objects := s.srv.Node(ua.NewNumericNodeID(0, id.ObjectsFolder))
	plant := s.folder("Plant")
	objects.AddRef(plant, id.Organizes, true)
	line1 := s.folder("Line1")
	line2 := s.folder("Line2")
	bulk := s.folder("Bulk")
	plant.AddRef(line1, id.Organizes, true)
	plant.AddRef(line2, id.Organizes, true)
	plant.AddRef(bulk, id.Organizes, true)

	now := time.Now()
	good := func(v any) *ua.DataValue { return dataValue(v, ua.StatusOK, now) }
	s.variable(line1, "Temperature", "Temperature", good(21.5))
	s.variable(line1, "Pressure", "Pressure", good(float32(1.25)))
	s.variable(line1, "Counter", "Counter", good(uint32(1000)))
	s.variable(line1, "Running", "Running", good(true))
	s.variable(line1, "Vector", "Vector", good([]float64{1.5, 2.5, 3.5}))
	s.variable(line1, "Name", "Name", good("press-7"))
	s.variable(line1, "Broken", "Broken", dataValue(nil, ua.StatusBadNoCommunication, now))
	s.variable(line1, "Doubtful", "Doubtful", dataValue(7.0, ua.StatusUncertainLastUsableValue, now))
	s.variable(line2, "Line2.Temperature", "Temperature", good(19.0))
	s.variable(line2, "Line2.Pressure", "Pressure", good(float32(0.75)))
	for i := 0; i < s.cfg.BulkNodes; i++ {
		name := fmt.Sprintf("Bulk.%05d", i)
		s.variable(bulk, name, name, good(float64(i)))
	}
}

func (s *Server) folder(name string) *server.Node {
	n := server.NewFolderNode(ua.NewStringNodeID(s.ns.ID(), "Folder."+name), name)
	return s.ns.AddNode(n)
}

func (s *Server) variable(parent *server.Node, key, browseName string, dv *ua.DataValue) {
	nid := ua.NewStringNodeID(s.ns.ID(), key)
	s.values[key] = dv
	s.ids[key] = nid
	n := server.NewNode(nid,
		map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName:  server.DataValueFromValue(attrs.BrowseName(browseName)),
			ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(browseName, browseName)),
			ua.AttributeIDDataType:    server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.BaseDataType)),
		},
		nil,
		func() *ua.DataValue {
			s.mu.Lock()
			defer s.mu.Unlock()
			v := *s.values[key]
			return &v
		},
	)
	s.ns.AddNode(n)
	parent.AddRef(n, id.HasComponent, true)
}

func dataValue(v any, status ua.StatusCode, ts time.Time) *ua.DataValue {
	dv := &ua.DataValue{
		EncodingMask:    ua.DataValueStatusCode | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Status:          status,
		SourceTimestamp: ts,
		ServerTimestamp: ts,
	}
	if v != nil {
		dv.EncodingMask |= ua.DataValueValue
		dv.Value = ua.MustVariant(v)
	}
	return dv
}

// Set changes a variable's value (Good status, source timestamp now) and notifies subscribers.
func (s *Server) Set(key string, v any) { s.SetStatus(key, v, ua.StatusOK) }

// SetStatus changes a variable's value and status and notifies subscribers; v nil sends no value.
func (s *Server) SetStatus(key string, v any, status ua.StatusCode) {
	s.SetAt(key, v, status, time.Now())
}

// SetAt changes a variable with an explicit source timestamp.
func (s *Server) SetAt(key string, v any, status ua.StatusCode, ts time.Time) {
	s.mu.Lock()
	nid, ok := s.ids[key]
	if ok {
		dv := dataValue(v, status, ts)
		dv.ServerTimestamp = time.Now()
		s.values[key] = dv
	}
	closed := s.closed
	s.mu.Unlock()
	if ok && !closed {
		s.srv.ChangeNotification(nid)
	}
}

// Value returns the current value of a variable.
func (s *Server) Value(key string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	dv := s.values[key]
	if dv == nil || dv.Value == nil {
		return nil
	}
	return dv.Value.Value()
}

// Simulate changes the plant values every interval until ctx ends: a temperature wave, a pressure wave,
// a growing counter and a toggling Running flag.
func (s *Server) Simulate(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	start := time.Now()
	var counter uint32 = 1000
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			x := now.Sub(start).Seconds()
			counter += 3
			s.Set("Temperature", 21.5+4*math.Sin(x/30))
			s.Set("Pressure", float32(1.25+0.2*math.Cos(x/20)))
			s.Set("Counter", counter)
			s.Set("Running", int(x/60)%5 != 4)
			s.Set("Vector", []float64{1.5 + math.Sin(x), 2.5, 3.5 + math.Cos(x)})
			s.Set("Line2.Temperature", 19+2*math.Sin(x/45))
		}
	}
}

// Close stops the server, ends its subscriptions and closes every connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	_ = s.srv.Close()
	s.cancel()
	// The gopcua server keeps a subscription running until its lifetime expires; end them now.
	if ss := s.srv.SubscriptionService; ss != nil {
		ss.Mu.Lock()
		var ids []uint32
		for id := range ss.Subs {
			ids = append(ids, id)
		}
		ss.Mu.Unlock()
		for _, id := range ids {
			ss.DeleteSubscription(id)
		}
	}
}

// GenerateCertificate makes a self-signed RSA certificate with the application URI and host names.
func GenerateCertificate(appURI string, hosts []string, validity time.Duration) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "opcuasim", Organization: []string{"otelcol-iiot"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// LoadOrGenerate reads a PEM certificate and key, or generates them and writes them there.
func LoadOrGenerate(certFile, keyFile string, hosts []string) ([]byte, *rsa.PrivateKey, error) {
	cb, errC := os.ReadFile(filepath.Clean(certFile))
	kb, errK := os.ReadFile(filepath.Clean(keyFile))
	if errC == nil && errK == nil {
		cblk, _ := pem.Decode(cb)
		kblk, _ := pem.Decode(kb)
		if cblk == nil || kblk == nil {
			return nil, nil, fmt.Errorf("%s and %s must be PEM", certFile, keyFile)
		}
		key, err := x509.ParsePKCS1PrivateKey(kblk.Bytes)
		if err != nil {
			return nil, nil, err
		}
		return cblk.Bytes, key, nil
	}
	der, key, err := GenerateCertificate("urn:otelcol-iiot:opcuasim:server", hosts, 365*24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil { //nolint:gosec // public certificate
		return nil, nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, nil, err
	}
	return der, key, nil
}
