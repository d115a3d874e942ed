package opcua

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/goleak"

	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func loadOPCUA(t *testing.T, out string) *opcuareceiver.Config {
	t.Helper()
	ret, err := confmap.NewRetrievedFromYAML([]byte(out))
	require.NoError(t, err, out)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	cfg := opcuareceiver.NewFactory().CreateDefaultConfig().(*opcuareceiver.Config)
	require.NoError(t, conf.Unmarshal(cfg), out)
	require.NoError(t, cfg.Validate(), out)
	return cfg
}

// TestBrowseSimulator browses the project's OPC UA simulator from the Objects folder: the plant's
// numeric and Boolean variables become nodes (by namespace URI), text and Bad variables are left as
// comments, the Server object is skipped, and the file loads in the receiver.
func TestBrowseSimulator(t *testing.T) {
	srv, err := sim.Start(sim.Config{Port: freePort(t), Security: []string{"all"}})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	cfg := BrowseConfig{Endpoint: srv.Endpoint(), Root: "ns=0;i=85", Depth: 5, MaxNodes: 100, Timeout: 5 * time.Second, DeviceID: "line-plc"}
	res, err := Browse(context.Background(), cfg)
	require.NoError(t, err)
	assert.Contains(t, res.Security, "Basic256Sha256/SignAndEncrypt")

	var out bytes.Buffer
	require.NoError(t, WriteBrowse(&out, cfg, res))
	s := out.String()
	assert.Contains(t, s, `# - {id: "nsu=urn:otelcol-iiot:opcuasim;s=Name", name: plant.line1.name}  # String: not a number`)
	assert.Contains(t, s, `# - {id: "nsu=urn:otelcol-iiot:opcuasim;s=Broken", name: plant.line1.broken}  # StatusBadNoCommunication`)
	assert.NotContains(t, s, "server.serverstatus")
	c := loadOPCUA(t, s)
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	assert.Equal(t, []string{"plant.line1.temperature", "plant.line1.pressure", "plant.line1.counter", "plant.line1.running",
		"plant.line1.vector", "plant.line1.doubtful", "plant.line2.temperature", "plant.line2.pressure"}, names)
	assert.Equal(t, "nsu=urn:otelcol-iiot:opcuasim;s=Temperature", c.Nodes[0].ID)
	assert.Equal(t, "line-plc", c.ID)
	// The server has secured endpoints: the entry uses them, pinning the certificate the probe saw.
	assert.Equal(t, opcuareceiver.PolicyAuto, c.Security.Policy)
	assert.Equal(t, []string{fingerprint(srv.CertificateDER())}, c.Security.ServerCertificateFingerprints)
	assert.Equal(t, "None/None", res.Over)
}

// TestBrowseDepthAndLimit: a shallow browse does not reach the variables; a small limit stops and says so.
func TestBrowseDepthAndLimit(t *testing.T) {
	srv, err := sim.Start(sim.Config{Port: freePort(t), BulkNodes: 50})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	cfg := BrowseConfig{Endpoint: srv.Endpoint(), Root: "ns=0;i=85", Depth: 1, Timeout: 5 * time.Second, DeviceID: "d"}
	res, err := Browse(context.Background(), cfg)
	require.NoError(t, err)
	assert.Empty(t, res.Variables, "Objects → Plant → Line1 → variables is three levels")
	require.Error(t, WriteBrowse(&bytes.Buffer{}, cfg, res))

	cfg.Depth, cfg.MaxNodes = 5, 20
	res, err = Browse(context.Background(), cfg)
	require.NoError(t, err)
	assert.Len(t, res.Variables, 20)
	assert.True(t, res.Truncated)

	// A root by namespace URI; a root the server does not have.
	cfg.Root, cfg.MaxNodes = "nsu=urn:otelcol-iiot:opcuasim;s=Folder.Line2", 0
	res, err = Browse(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Variables, 2)
	assert.Equal(t, []string{"Temperature"}, res.Variables[0].Path)
	cfg.Root = "nsu=urn:otelcol-iiot:opcuasim;s=Nope"
	_, err = Browse(context.Background(), cfg)
	require.ErrorContains(t, err, "StatusBadNodeIDUnknown")
	cfg.Root = "nsu=urn:nope;s=X"
	_, err = Browse(context.Background(), cfg)
	require.ErrorContains(t, err, `the server has no namespace "urn:nope"`)
}

// TestBrowseEngineeringUnits serves variables with an EngineeringUnits property (a UNECE code, and a
// display name only) from a gopcua server: the probe writes their UCUM units.
func TestBrowseEngineeringUnits(t *testing.T) {
	port := freePort(t)
	srv := server.New(server.EndPoint("127.0.0.1", port), server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous))
	ns := server.NewNodeNameSpace(srv, "urn:test:units")
	objects := srv.Node(ua.NewNumericNodeID(0, id.ObjectsFolder))
	dev := ns.AddNode(server.NewFolderNode(ua.NewStringNodeID(ns.ID(), "Meter"), "Meter"))
	objects.AddRef(dev, id.Organizes, true)
	variable := func(key string, v any, eu *ua.EUInformation) {
		n := ns.AddNode(server.NewNode(ua.NewStringNodeID(ns.ID(), key), map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName:  server.DataValueFromValue(attrs.BrowseName(key)),
			ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(key, key)),
		}, nil, func() *ua.DataValue { return server.DataValueFromValue(v) }))
		dev.AddRef(n, id.HasComponent, true)
		if eu == nil {
			return
		}
		p := ns.AddNode(server.NewNode(ua.NewStringNodeID(ns.ID(), key+".EU"), map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName:  server.DataValueFromValue(attrs.BrowseName("EngineeringUnits")),
			ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName("EngineeringUnits", "EngineeringUnits")),
		}, nil, func() *ua.DataValue { return server.DataValueFromValue(ua.NewExtensionObject(eu)) }))
		n.AddRef(p, id.HasProperty, true)
	}
	code := func(s string) int32 {
		var c int32
		for _, r := range s {
			c = c<<8 | r
		}
		return c
	}
	variable("Voltage", 230.4, &ua.EUInformation{NamespaceURI: "http://www.opcfoundation.org/UA/units/un/cefact", UnitID: code("VLT"), DisplayName: ua.NewLocalizedText("V"), Description: ua.NewLocalizedText("")})
	variable("Energy", 1234.5, &ua.EUInformation{UnitID: code("KWH"), DisplayName: ua.NewLocalizedText("kWh"), Description: ua.NewLocalizedText("")})
	variable("Temperature", 21.5, &ua.EUInformation{UnitID: -1, DisplayName: ua.NewLocalizedText("°C"), Description: ua.NewLocalizedText("")})
	variable("Speed", 1500.0, &ua.EUInformation{UnitID: -1, DisplayName: ua.NewLocalizedText("furlongs/fortnight"), Description: ua.NewLocalizedText("")})
	variable("Count", uint32(7), nil)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		_ = srv.Close()
		cancel() // the server's connection monitor ends with its context
	})

	cfg := BrowseConfig{Endpoint: "opc.tcp://127.0.0.1:" + itoa(port), Root: "ns=0;i=85", Depth: 5, Timeout: 5 * time.Second, DeviceID: "meter"}
	res, err := Browse(context.Background(), cfg)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, WriteBrowse(&out, cfg, res))
	c := loadOPCUA(t, out.String())
	units := map[string]string{}
	for _, n := range c.Nodes {
		units[n.Name] = n.Unit
	}
	assert.Equal(t, map[string]string{"meter.voltage": "V", "meter.energy": "kWh", "meter.temperature": "Cel", "meter.speed": "", "meter.count": ""}, units)
	assert.Contains(t, out.String(), `unit "furlongs/fortnight" not mapped to UCUM`)
}

func TestUCUM(t *testing.T) {
	assert.Equal(t, "Cel", UCUM(0x43454C, ""))
	assert.Equal(t, "%", UCUM(0x5031, ""))
	assert.Equal(t, "Cel", UCUM(-1, "°C"))
	assert.Equal(t, "", UCUM(-1, "widgets"))
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestBrowseRefused: a server with secured endpoints only is refused with what it offers, unless the
// probe is told to browse securely; a server that is not there is an error, not a hang.
func TestBrowseRefused(t *testing.T) {
	srv, err := sim.Start(sim.Config{Port: freePort(t), Security: []string{"Basic256Sha256:SignAndEncrypt"}})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	cfg := BrowseConfig{Endpoint: srv.Endpoint(), Root: "ns=0;i=85", Depth: 5, Timeout: 2 * time.Second, DeviceID: "d"}
	_, err = Browse(context.Background(), cfg)
	require.ErrorContains(t, err, "offers no endpoint without security (it offers Basic256Sha256/SignAndEncrypt): browse with --security auto")

	// With --security auto the probe browses over the secured endpoint with a throw-away certificate.
	cfg.Secure = true
	res, err := Browse(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "Basic256Sha256/SignAndEncrypt", res.Over)
	assert.NotEmpty(t, res.Variables)
	var out bytes.Buffer
	require.NoError(t, WriteBrowse(&out, cfg, res))
	loadOPCUA(t, out.String())
	cfg.Secure = false

	cfg.Endpoint = "opc.tcp://127.0.0.1:" + strconv.Itoa(freePort(t))
	_, err = Browse(context.Background(), cfg)
	require.ErrorContains(t, err, "cannot get the endpoints")
}
