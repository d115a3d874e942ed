package opcuareceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/opcuareceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.MustNewIDWithName(metadata.Type.String(), name).String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfigValid(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("opcua")
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	want := createDefaultConfig()
	want.Endpoint = "opc.tcp://127.0.0.1:4840"
	want.ID = "press-7"
	want.Nodes = []NodeConfig{{ID: "ns=2;s=Temperature", Name: "temperature"}}
	assert.Equal(t, want, cfg, "defaults round-trip")
	assert.Equal(t, time.Minute, cfg.Subscription.RepeatInterval, "held values are repeated every minute by default")

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, PolicyBasic256Sha256, full.Security.Policy)
	assert.Equal(t, "s3cret", string(full.Auth.Password))
	assert.False(t, full.health().Requests, "iiot.device.* keys go to the health metrics")
	assert.True(t, full.health().Up)
	assert.False(t, full.Metrics.OpcuaCertificateRemainingValidity.Enabled, "opcua.* keys go to the receiver's own metrics")
	assert.True(t, full.Metrics.OpcuaSessionsEstablished.Enabled)
	assert.Equal(t, 500*time.Millisecond, full.Subscription.PublishingInterval)
	assert.Equal(t, DeadbandAbsolute, full.Subscription.Deadband.Type)
	assert.Equal(t, 2*time.Minute, full.Subscription.RepeatInterval)

	specs, err := full.readingSpecs()
	require.NoError(t, err)
	require.Len(t, specs, 6)
	temp, m1, m2, energy, power, pf := specs[0], specs[1], specs[2], specs[3], specs[4], specs[5]
	assert.Equal(t, "plant.temperature", temp.metric)
	assert.Equal(t, "urn:acme:press", temp.ref.nsURI)
	assert.Equal(t, DeadbandConfig{Type: DeadbandPercent, Value: 2}, temp.item.Deadband, "a node's deadband overrides the subscription's")
	assert.Equal(t, device.Ptr(250*time.Millisecond), temp.item.SamplingInterval)
	assert.Equal(t, identityConversion, temp.conv, "no scale, no offset: the identity")
	assert.Equal(t, "electrical.energy.active", energy.metric)
	assert.Equal(t, "Wh", energy.unit)
	assert.Equal(t, device.KindSum, energy.kind)
	assert.Equal(t, map[string]string{"direction": "import", "phase": "total", "opcua.node_id": "nsu=urn:acme:press;i=1001"}, energy.attrs)
	assert.Equal(t, newConversion(1000, 0), energy.conv, "the group's scale")
	assert.Equal(t, newConversion(0.01, 0), pf.conv, "a node's scale replaces the group's")
	assert.Equal(t, DeadbandConfig{Type: DeadbandAbsolute, Value: 0.5}, energy.item.Deadband, "the subscription's deadband is the default")
	// The deadband is configured in the reading's unit (W, Wh), the server compares raw values (kW, kWh).
	rawDeadband := func(s *readingSpec) float64 {
		var f ua.DataChangeFilter
		obj := monitoredItemRequest(&item{spec: s}, 1).RequestedParameters.Filter
		require.NotNil(t, obj)
		f = *obj.Value.(*ua.DataChangeFilter)
		return f.DeadbandValue
	}
	assert.InDelta(t, 0.0005, rawDeadband(energy), 1e-15, "0.5 Wh is 0.0005 kWh")
	assert.InDelta(t, 0.5, rawDeadband(power), 1e-15, "500 W is 0.5 kW")
	assert.InDelta(t, 2, rawDeadband(pf), 0, "a percent deadband (of the EURange) needs no conversion")
	assert.Equal(t, "plant.motor.current", m1.metric)
	assert.Equal(t, "nsu=urn:acme:press;s=Motor1.Current", m1.ref.text, "the group's namespace applies to bare ids")
	assert.Equal(t, "A", m1.unit)
	assert.Equal(t, map[string]string{"area": "drives", "motor": "1", "opcua.node_id": "nsu=urn:acme:press;s=Motor1.Current"}, m1.attrs, "include_node_id adds the id")
	assert.Equal(t, 10*time.Second, m1.interval)
	assert.Equal(t, device.Ptr(10*time.Second), m1.item.SamplingInterval, "a group's interval is its sampling interval")
	assert.Equal(t, device.Ptr(100*time.Millisecond), m2.item.SamplingInterval)
	assert.Equal(t, TriggerStatus, m2.item.Trigger)
	assert.Equal(t, 1, m1.group)

	_, err = loadConfig(t, "certificate_auth")
	require.NoError(t, err)
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"misspelt", []string{"nodez"}},
		{"unknown_metric", []string{"opcua.no.such.metric"}},
		{"no_endpoint", []string{"endpoint: required"}},
		{"bad_endpoint", []string{`endpoint: "http://127.0.0.1:4840" is not an opc.tcp://host:port URL`, "id: required"}},
		{"reserved_resource_attribute", []string{`resource_attributes: "device.id" is set by the receiver`}},
		{"bad_security", []string{
			`security.policy: unknown "Basic512"`,
			`security.mode: unknown "Encrypt"`,
			"security.certificate_file, security.private_key_file: set both or neither",
			`security.application_uri: "not a uri" is not a URI`,
			`security.server_certificate_fingerprints[0]: "12:34" is not a SHA-256`,
			"security.certificate_validity: must be >= 1h",
		}},
		{"sign_without_policy", []string{"security.mode: Sign needs a security.policy other than None"}},
		{"policy_without_mode", []string{"security.mode: None cannot be used with security.policy Basic256Sha256"}},
		{"no_trust", []string{"security: policy Aes256_Sha256_RsaPss needs trusted_certificates_dir or server_certificate_fingerprints"}},
		{"contradicting_trust", []string{
			"security.private_key_file: must differ from certificate_file",
			"security.insecure_accept_any_server_certificate: cannot be combined",
		}},
		{"bad_auth_username", []string{"auth.username: required with auth.type username", "auth.certificate_file, auth.private_key_file: only used with auth.type certificate"}},
		{"bad_auth_certificate", []string{
			"auth.certificate_file, auth.private_key_file: set both or neither",
			"auth.username, auth.password: only used with auth.type username",
		}},
		{"certificate_auth_without_certificate", []string{"auth.certificate_file: required with auth.type certificate when security.policy is None"}},
		{"bad_auth_type", []string{`auth.type: unknown "kerberos"`}},
		{"bad_scalars", []string{
			`mode: unknown "stream"`,
			`timestamp: unknown "device"`,
			`metric_prefix: "9lives" must start with a letter`,
			"max_nodes_per_read: must be >= 1",
			"connect_timeout: must be > 0",
			"refused_node_retry: must be >= 0 (0 reads a refused node at every poll), got -1s",
			"session_timeout: must be >= 1s",
			"heartbeat.max_stalled: must be >= 1",
			"poll.timeout: 5s is longer than the poll interval 1s",
		}},
		{"bad_subscription", []string{
			"subscription.publishing_interval: must be > 0",
			"subscription.keep_alive_count: must be >= 1",
			"subscription.queue_size: must be >= 1",
			"subscription.repeat_interval: must be >= 0 (0: off), got -1s",
			"subscription.sampling_interval: must be >= 0",
			`subscription.trigger: unknown "always"`,
			`subscription.deadband.type: unknown "relative"`,
		}},
		{"bad_deadbands", []string{
			"nodes[0].deadband.value: set deadband.type to absolute or percent",
			"nodes[1].deadband.value: must be >= 0",
			"nodes[2].deadband.value: a percent deadband must be between 0 and 100",
		}},
		{"bad_scale", []string{
			"nodes[0].scale: must be a finite number other than 0 (value = raw × scale + offset), got 0",
			"nodes[1].offset: must be a finite number, got NaN",
			"nodes[2].scale: must be a finite number other than 0 (value = raw × scale + offset), got -Inf",
			`groups[0] "meter".scale: must be a finite number other than 0`,
			`groups[0] "meter".offset: must be a finite number, got +Inf`,
			"browse[0].scale: must be a finite number other than 0",
		}},
		{"no_nodes", []string{"nodes, groups, browse, events: at least one"}},
		{"bad_events", []string{
			`events[0].notifier: "ns=x;i=2253": namespace index must be 0..65535`,
			"events[0].where: at 12: want a field or a value",
			"events[1].where: at 32: Severity is 1..1000, got 5000",
			"events[1].fields[0].path: empty browse path",
			`events[1].fields[1].path: "A//B": empty name in the browse path`,
			`events[1].fields[2].attribute: "opcua.event.severity" is already written by a standard field`,
			`events[1].fields[3].type: "i=": `,
			`events[2].where: at 11: want a field or a value, got ">"`,
			`events[3].where: at 14: want ")" after the node id`,
			"events[4].where: at 13: Severity is an integer 1..1000, got 1.5",
			"events[5].where: at 15: unterminated string",
		}},
		{"bad_nodes", []string{
			"nodes[0].id: required",
			`nodes[1].id: "ns=two;s=T": namespace index must be 0..65535`,
			`nodes[2].id: "nsu=urn:x": want nsu=<namespace URI>;{i,s,g,b}=<identifier>`,
			`nodes[3].id: "ns=2;x=T": identifier must be i=<number>, s=<string>, g=<guid> or b=<base64>`,
			`nodes[4].id: "ns=2;g=not-a-guid"`,
			"nodes[5].name: required",
			`nodes[6].name: metric name "opcua.has space" must start with a letter`,
			`nodes[7].kind: unknown "histogram"`,
			`nodes[8].attributes: "index" is reserved`,
		}},
		{"duplicates", []string{
			`node ns=2;s=B: same metric "opcua.temperature" and attributes as node ns=2;s=A`,
			`node ns=2;s=C: metric "opcua.temperature" is already used by node ns=2;s=A with unit "Cel"`,
		}},
		{"bad_groups", []string{
			`groups[0] "fast".namespace: "no-scheme" is not a namespace URI`,
			`groups[0] "fast".metric_prefix: "-x" must start with a letter`,
			`groups[0] "fast".interval: 1s is shorter than poll.interval 10s`,
			`groups[0] "fast".kind: unknown "counter"`,
			`groups[0] "fast".nodes: a group needs at least one node`,
			`groups[1] "negative".interval: must be >= 0`,
		}},
		{"bad_browse", []string{
			`browse[0].root: "ns=x;s=Line1"`,
			"browse[0].max_depth: must be between 1 and 32",
			"browse[0].max_nodes: must be >= 1",
			"browse[0].name_filter: error parsing regexp",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigLogicalErrorsAreAllReported(t *testing.T) {
	_, err := loadConfig(t, "bad_nodes")
	require.Error(t, err)
	assert.GreaterOrEqual(t, strings.Count(err.Error(), "\n")+1, 9, "every problem is reported, not only the first")
}

// A node (or group) that sets sampling_interval to 0 asks the server for its fastest rate instead of
// inheriting the level above; a key left out is inherited, the group's first.
func TestLayeredMonitoredItems(t *testing.T) {
	cfg, err := loadConfig(t, "layers")
	require.NoError(t, err)
	specs, err := cfg.readingSpecs()
	require.NoError(t, err)
	type want struct {
		sampling float64 // as requested from the server, ms; -1: the publishing interval
		queue    uint32
	}
	got := map[string]want{}
	for _, s := range specs {
		req := monitoredItemRequest(&item{spec: s}, 1).RequestedParameters
		got[strings.TrimPrefix(s.metric, "opcua.")] = want{req.SamplingInterval, req.QueueSize}
	}
	assert.Equal(t, map[string]want{
		"top":       {250, 5},
		"top_zero":  {0, 5},
		"inherit":   {100, 3},
		"zero":      {0, 1},
		"slow":      {10000, 5},
		"slow_zero": {0, 5},
	}, got)
}

// confmap.Validate, as the collector runs it, reports each problem once.
func TestValidateReportsEachProblemOnce(t *testing.T) {
	_, err := loadConfig(t, "once")
	require.Error(t, err)
	want := []string{
		"poll.interval: must be > 0, got -1s",
		"poll.jitter: must be between 0 and 0.5 (a fraction of interval), got 0.9",
		"poll.retries: must be between 0 and 10, got 11",
		"breaker.failure_threshold: must be >= 0 (0 disables the breaker), got -1",
		"traces.success_sample_ratio: must be between 0 and 1, got 2",
		"nodes[0].queue_size: must be >= 1, got 0",
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range want {
		n := 0
		for _, l := range lines {
			if l == w {
				n++
			}
		}
		assert.Equal(t, 1, n, "%q once in:\n%v", w, err)
	}
	assert.Len(t, lines, len(want), "no other message, none twice:\n%v", err)
}
