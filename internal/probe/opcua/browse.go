// Package opcua is the OPC UA part of otelcol-iiot-probe: browse a server and write the variables it
// finds as the opcua receiver's nodes: list, with their units where the server gives EngineeringUnits.
package opcua

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
)

// BrowseConfig is what `opcua browse` asks.
type BrowseConfig struct {
	Endpoint string
	Root     string // a node id, default the Objects folder (ns=0;i=85)
	Depth    int    // levels below the root
	MaxNodes int    // most variables listed
	Timeout  time.Duration
	DeviceID string
	// Secure browses over the server's most secure endpoint with a throw-away client certificate
	// instead of an endpoint without security (for servers that offer none).
	Secure bool
}

// Variable is one variable found.
type Variable struct {
	ID       string // nsu=<uri>;… for namespaces other than 0, so the entry survives index changes
	Path     []string
	Unit     string // UCUM, from EngineeringUnits
	UnitText string // the server's display name of the unit
	Type     string // the value's type, e.g. Double
	Status   string // the value's status when not Good
	Usable   bool   // numeric or Boolean (what the receiver turns into a metric)
}

// BrowseResult is the outcome of a browse.
type BrowseResult struct {
	Variables []*Variable
	Security  []string // policies and modes the server offers
	// Fingerprint is the SHA-256 of the server's certificate (hex, colons), when it offers secured endpoints.
	Fingerprint string
	// Over is the policy/mode the probe browsed over.
	Over      string
	Truncated bool
	Elapsed   time.Duration
}

// Browse connects without security (anonymous) and walks the hierarchy below the root.
func Browse(ctx context.Context, cfg BrowseConfig) (*BrowseResult, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, max(cfg.Timeout*50, time.Minute))
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, cfg.Endpoint, opcua.RequestTimeout(cfg.Timeout), opcua.DialTimeout(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("cannot get the endpoints of %s: %w", cfg.Endpoint, err)
	}
	res := &BrowseResult{}
	var none *ua.EndpointDescription
	seen := map[string]bool{}
	for _, ep := range eps {
		s := endpointName(ep)
		if !seen[s] {
			seen[s] = true
			res.Security = append(res.Security, s)
		}
		if ep.SecurityMode == ua.MessageSecurityModeNone && none == nil {
			none = ep
		}
		if ep.SecurityMode != ua.MessageSecurityModeNone && len(ep.ServerCertificate) > 0 && res.Fingerprint == "" {
			res.Fingerprint = fingerprint(ep.ServerCertificate)
		}
	}
	opts := []opcua.Option{opcua.AuthAnonymous(), opcua.AutoReconnect(false), opcua.RequestTimeout(cfg.Timeout), opcua.DialTimeout(cfg.Timeout),
		opcua.ApplicationName("otelcol-iiot-probe"), opcua.ApplicationURI(appURI)}
	switch {
	case cfg.Secure:
		best, err := opcua.SelectEndpoint(eps, "", ua.MessageSecurityModeInvalid)
		if err != nil {
			return nil, err
		}
		der, key, err := throwAwayCertificate()
		if err != nil {
			return nil, err
		}
		opts = append(opts, opcua.SecurityFromEndpoint(best, ua.UserTokenTypeAnonymous), opcua.Certificate(der), opcua.PrivateKey(key))
		res.Over = endpointName(best)
	case none == nil:
		return nil, fmt.Errorf("%s offers no endpoint without security (it offers %s): browse with --security auto",
			cfg.Endpoint, strings.Join(res.Security, ", "))
	default:
		opts = append(opts, opcua.SecurityFromEndpoint(none, ua.UserTokenTypeAnonymous))
		res.Over = endpointName(none)
	}
	c, err := opcua.NewClient(cfg.Endpoint, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", cfg.Endpoint, err)
	}
	defer c.Close(context.Background())
	root, err := parseNodeID(cfg.Root, c.Namespaces())
	if err != nil {
		return nil, fmt.Errorf("--root: %w", err)
	}
	b := &browser{c: c, ns: c.Namespaces(), res: res, max: cfg.MaxNodes, units: map[string]*Variable{}}
	if err := b.walk(ctx, root, cfg.Depth); err != nil {
		return nil, err
	}
	if err := b.readValues(ctx); err != nil {
		return nil, err
	}
	if err := b.readUnits(ctx); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// parseNodeID reads a node id, also in the nsu=<namespace URI>;… form the receiver accepts.
func parseNodeID(s string, namespaces []string) (*ua.NodeID, error) {
	if rest, ok := strings.CutPrefix(s, "nsu="); ok {
		uri, ident, ok := strings.Cut(rest, ";")
		if !ok {
			return nil, fmt.Errorf("%q: want nsu=<uri>;<s=…|i=…>", s)
		}
		for i, ns := range namespaces {
			if ns == uri {
				return ua.ParseNodeID(fmt.Sprintf("ns=%d;%s", i, ident))
			}
		}
		return nil, fmt.Errorf("%q: the server has no namespace %q (it has %s)", s, uri, strings.Join(namespaces, ", "))
	}
	return ua.ParseNodeID(s)
}

const appURI = "urn:otelcol-iiot:probe"

func endpointName(ep *ua.EndpointDescription) string {
	pol := strings.TrimPrefix(ep.SecurityPolicyURI, "http://opcfoundation.org/UA/SecurityPolicy#")
	return pol + "/" + strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode")
}

// fingerprint is the SHA-256 of a DER certificate, hex with colons (as the receiver logs and accepts it).
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// throwAwayCertificate makes the self-signed client certificate of one browse: it lives in memory
// only. A server that checks client certificates must be told to trust it (or to accept any).
func throwAwayCertificate() ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	uri, _ := url.Parse(appURI)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "otelcol-iiot-probe", Organization: []string{"otelcol-iiot"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageContentCommitment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}

type node struct {
	id   *ua.NodeID
	path []string
	v    *Variable // set for variables: their properties are browsed for EngineeringUnits
}

type browser struct {
	c       *opcua.Client
	ns      []string
	res     *BrowseResult
	max     int
	nodeIDs []*ua.NodeID // of res.Variables
	units   map[string]*Variable
	unitIDs []*ua.NodeID
	unitFor []*Variable
}

// walk browses level by level (objects and variables, hierarchical references), following
// continuation points, up to depth levels below root.
func (b *browser) walk(ctx context.Context, root *ua.NodeID, depth int) error {
	level := []node{{id: root}}
	visited := map[string]bool{root.String(): true}
	for d := 0; d <= depth && len(level) > 0; d++ {
		var next []node
		for start := 0; start < len(level); start += 100 {
			chunk := level[start:min(start+100, len(level))]
			req := &ua.BrowseRequest{NodesToBrowse: make([]*ua.BrowseDescription, len(chunk))}
			for i, n := range chunk {
				req.NodesToBrowse[i] = &ua.BrowseDescription{
					NodeID: n.id, BrowseDirection: ua.BrowseDirectionForward,
					ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
					NodeClassMask: uint32(ua.NodeClassObject | ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
				}
			}
			resp, err := b.c.Browse(ctx, req)
			if err != nil {
				return fmt.Errorf("browse: %w", err)
			}
			for i, r := range resp.Results {
				if d == 0 && r != nil && r.StatusCode != ua.StatusOK {
					return fmt.Errorf("--root %s: %s", root, statusName(r.StatusCode))
				}
				if i >= len(chunk) || r == nil || r.StatusCode != ua.StatusOK {
					continue
				}
				refs := r.References
				for cp := r.ContinuationPoint; len(cp) > 0; {
					nr, err := b.c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
					if err != nil || len(nr.Results) != 1 || nr.Results[0] == nil {
						break
					}
					refs = append(refs, nr.Results[0].References...)
					cp = nr.Results[0].ContinuationPoint
				}
				parent := chunk[i]
				for _, ref := range refs {
					if ref == nil || ref.NodeID == nil || ref.NodeID.NodeID == nil || ref.BrowseName == nil {
						continue
					}
					nid := ref.NodeID.NodeID
					property := ref.ReferenceTypeID != nil && ref.ReferenceTypeID.Namespace() == 0 && ref.ReferenceTypeID.IntID() == id.HasProperty
					if property {
						if parent.v != nil && ref.BrowseName.Name == "EngineeringUnits" {
							b.unitIDs, b.unitFor = append(b.unitIDs, nid), append(b.unitFor, parent.v)
						}
						continue // other properties (EURange …) describe a variable, they are not readings
					}
					if parent.v != nil || visited[nid.String()] {
						continue
					}
					if nid.Namespace() == 0 && ref.NodeClass == ua.NodeClassObject {
						continue // the Server object and its diagnostics: the server's, not the plant's
					}
					visited[nid.String()] = true
					path := append(append([]string(nil), parent.path...), ref.BrowseName.Name)
					switch ref.NodeClass {
					case ua.NodeClassObject:
						next = append(next, node{id: nid, path: path})
					case ua.NodeClassVariable:
						if b.max > 0 && len(b.res.Variables) >= b.max {
							b.res.Truncated = true
							continue
						}
						v := &Variable{ID: b.idText(nid), Path: path}
						b.res.Variables = append(b.res.Variables, v)
						b.nodeIDs = append(b.nodeIDs, nid)
						next = append(next, node{id: nid, path: path, v: v})
					}
				}
			}
		}
		level = next
	}
	// The variables of the last level were not browsed for their properties: do it now.
	for _, n := range level {
		if n.v != nil {
			if err := b.walkProps(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *browser) walkProps(ctx context.Context, n node) error {
	resp, err := b.c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{{
		NodeID: n.id, BrowseDirection: ua.BrowseDirectionForward,
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HasProperty), IncludeSubtypes: true,
		NodeClassMask: uint32(ua.NodeClassVariable), ResultMask: uint32(ua.BrowseResultMaskAll),
	}}})
	if err != nil {
		return fmt.Errorf("browse: %w", err)
	}
	for _, r := range resp.Results {
		for _, ref := range r.References {
			if ref != nil && ref.BrowseName != nil && ref.BrowseName.Name == "EngineeringUnits" && ref.NodeID != nil {
				b.unitIDs, b.unitFor = append(b.unitIDs, ref.NodeID.NodeID), append(b.unitFor, n.v)
			}
		}
	}
	return nil
}

// idText writes a node id with its namespace URI (nsu=) instead of its index: indexes may change
// when the server restarts, URIs do not (the receiver re-resolves them).
func (b *browser) idText(nid *ua.NodeID) string {
	s := nid.String()
	ns := int(nid.Namespace())
	if ns == 0 || ns >= len(b.ns) {
		return s
	}
	_, ident, _ := strings.Cut(s, ";")
	return "nsu=" + b.ns[ns] + ";" + ident
}

// read reads the value attribute of nodes, in batches.
func (b *browser) read(ctx context.Context, ids []*ua.NodeID, each func(i int, dv *ua.DataValue)) error {
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: make([]*ua.ReadValueID, len(chunk))}
		for i, nid := range chunk {
			req.NodesToRead[i] = &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValue}
		}
		resp, err := b.c.Read(ctx, req)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for i, dv := range resp.Results {
			if i < len(chunk) {
				each(start+i, dv)
			}
		}
	}
	return nil
}

func (b *browser) readValues(ctx context.Context) error {
	return b.read(ctx, b.nodeIDs, func(i int, dv *ua.DataValue) {
		v := b.res.Variables[i]
		if dv == nil {
			return
		}
		if dv.Status != ua.StatusOK {
			v.Status = statusName(dv.Status)
		}
		if dv.Value == nil {
			return
		}
		v.Type = strings.TrimPrefix(dv.Value.Type().String(), "TypeID")
		switch dv.Value.Type() {
		case ua.TypeIDBoolean, ua.TypeIDSByte, ua.TypeIDByte, ua.TypeIDInt16, ua.TypeIDUint16, ua.TypeIDInt32, ua.TypeIDUint32,
			ua.TypeIDInt64, ua.TypeIDUint64, ua.TypeIDFloat, ua.TypeIDDouble:
			v.Usable = true
		}
		if dv.Value.ArrayLength() > 0 || len(dv.Value.ArrayDimensions()) > 0 {
			v.Type += "[]"
		}
	})
}

// statusName is the short name of a status code (StatusBadNoCommunication), without its long text.
func statusName(c ua.StatusCode) string {
	f := strings.Fields(c.Error())
	for i := len(f) - 1; i >= 0; i-- {
		if strings.HasPrefix(f[i], "Status") {
			return f[i]
		}
	}
	return fmt.Sprintf("0x%08X", uint32(c))
}

func (b *browser) readUnits(ctx context.Context) error {
	return b.read(ctx, b.unitIDs, func(i int, dv *ua.DataValue) {
		if dv == nil || dv.Value == nil {
			return
		}
		eo, ok := dv.Value.Value().(*ua.ExtensionObject)
		if !ok || eo == nil {
			return
		}
		eu, ok := eo.Value.(*ua.EUInformation)
		if !ok || eu == nil {
			return
		}
		v := b.unitFor[i]
		if eu.DisplayName != nil {
			v.UnitText = eu.DisplayName.Text
		}
		v.Unit = UCUM(eu.UnitID, v.UnitText)
	})
}

// unece maps UNECE Recommendation 20 codes (EUInformation.UnitId, the OPC UA default) to UCUM.
var unece = map[string]string{
	"CEL": "Cel", "KEL": "K", "FAH": "[degF]", "VLT": "V", "KVT": "kV", "AMP": "A", "KA": "kA", "4K": "mA",
	"WTT": "W", "KWT": "kW", "MAW": "MW", "WHR": "Wh", "KWH": "kWh", "MWH": "MWh", "D46": "VA", "KVA": "kVA",
	"HTZ": "Hz", "BAR": "bar", "MBR": "mbar", "PAL": "Pa", "KPA": "kPa", "P1": "%", "MTR": "m", "MMT": "mm",
	"LTR": "L", "MQH": "m3/h", "MQS": "m3/s", "KGM": "kg", "SEC": "s", "MIN": "min", "HUR": "h", "RPM": "{rpm}",
	"C62": "1", "DD": "deg",
}

// symbols maps common display names to UCUM when the server gives no UNECE code.
var symbols = map[string]string{"°C": "Cel", "℃": "Cel", "°F": "[degF]", "%": "%", "V": "V", "A": "A", "W": "W", "kW": "kW",
	"kWh": "kWh", "Hz": "Hz", "bar": "bar", "Pa": "Pa", "kPa": "kPa", "m³/h": "m3/h", "rpm": "{rpm}", "s": "s"}

// UCUM returns the UCUM unit of an EngineeringUnits value: by its UNECE code, else by its display name.
func UCUM(code int32, display string) string {
	var b []byte
	for shift := 16; shift >= 0; shift -= 8 {
		if c := byte(code >> shift); c != 0 {
			b = append(b, c)
		}
	}
	if u, ok := unece[string(b)]; ok {
		return u
	}
	return symbols[strings.TrimSpace(display)]
}

// name turns a browse path into a metric name: lower case, dots between levels.
func name(path []string) string {
	parts := make([]string, 0, len(path))
	for _, p := range path {
		var s strings.Builder
		for _, r := range strings.ToLower(p) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
				s.WriteRune(r)
			case r == '.' || r == '-' || r == ' ' || r == '/':
				s.WriteByte('_')
			}
		}
		if s.Len() > 0 {
			parts = append(parts, strings.Trim(s.String(), "_"))
		}
	}
	return strings.Join(parts, ".")
}

// WriteBrowse prints the receiver configuration: the endpoint, a device id and the nodes: list, with the
// variables the receiver cannot turn into metrics (text, Bad status) left as comments.
func WriteBrowse(w io.Writer, cfg BrowseConfig, r *BrowseResult) error {
	usable := 0
	for _, v := range r.Variables {
		if v.Usable {
			usable++
		}
	}
	probe.Comment(w, "otelcol-iiot-probe opcua browse %s from %s, %d levels: %d variables, %d numeric or Boolean (%s)",
		cfg.Endpoint, cfg.Root, cfg.Depth, len(r.Variables), usable, r.Elapsed.Round(time.Millisecond))
	probe.Comment(w, "the server offers: %s; browsed over %s", strings.Join(r.Security, ", "), r.Over)
	if r.Truncated {
		probe.Comment(w, "stopped at --max-nodes %d variables: narrow --root or raise --max-nodes", cfg.MaxNodes)
	}
	if usable == 0 {
		probe.Comment(w, "no numeric or Boolean variable found below the root: try another --root or a larger --depth")
		return errors.New("no variables to list")
	}
	fmt.Fprintf(w, "endpoint: %s\n", probe.Q(cfg.Endpoint))
	fmt.Fprintf(w, "id: %s\n", probe.Q(cfg.DeviceID))
	if r.Fingerprint != "" {
		// The server has secured endpoints: use them, trusting the certificate it showed the probe.
		fmt.Fprintln(w, "security:")
		fmt.Fprintln(w, "  policy: auto")
		fmt.Fprintln(w, "  mode: auto")
		fmt.Fprintln(w, "  # the certificate the server presented to the probe: compare it with the one the server shows")
		fmt.Fprintln(w, "  # before trusting it. The server must trust the collector's client certificate in turn (the")
		fmt.Fprintln(w, "  # receiver logs its fingerprint when it generates it; see the receiver's README).")
		fmt.Fprintf(w, "  server_certificate_fingerprints: [%q]\n", r.Fingerprint)
	}
	fmt.Fprintln(w, "nodes:")
	names := map[string]bool{}
	for _, v := range r.Variables {
		n := name(v.Path)
		if n == "" || names[n] {
			n = probe.ID(v.ID)
		}
		kv := []string{"id", probe.Q(v.ID), "name", probe.Q(n), "unit", probe.Q(v.Unit)}
		if v.Unit == "" {
			kv[5] = ""
		}
		entry := probe.Map(kv...)
		note := v.Type
		if v.UnitText != "" && v.Unit == "" {
			note += fmt.Sprintf(", unit %q not mapped to UCUM", v.UnitText)
		}
		switch {
		case !v.Usable && v.Status != "":
			fmt.Fprintf(w, "  # - %s  # %s\n", entry, v.Status)
		case !v.Usable:
			fmt.Fprintf(w, "  # - %s  # %s: not a number\n", entry, orUnknown(v.Type))
		default:
			names[n] = true
			if v.Status != "" {
				note += ", now " + v.Status
			}
			fmt.Fprintf(w, "  - %s  # %s\n", entry, note)
		}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "no value"
	}
	return s
}
