package modbusreceiver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

func configFromYAML(t *testing.T, yml string) *Config {
	t.Helper()
	ret, err := confmap.NewRetrievedFromYAML([]byte(yml))
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, conf.Unmarshal(cfg))
	return cfg
}

// create runs the factory as the collector (and its validate command) does after Validate.
func create(t *testing.T, cfg *Config) error {
	t.Helper()
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err == nil {
		require.NoError(t, r.Shutdown(context.Background()))
	}
	return err
}

// Validate does no I/O: files are read once, when the receiver is created, and a missing or bad file
// fails the creation with an error naming the key.
func TestFilesReadAtCreation(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("profiles:\n  meter:\n    fields:\n      - {name: v, address: 0, type: float128}\n"), 0o600))
	for _, tc := range []struct {
		name, yml, wantErr string
	}{
		{"missing profile file", `
profile_files: [` + filepath.Join(dir, "nope.yaml") + `]
connections:
  - endpoint: tcp://127.0.0.1:502
    devices: [{id: d, profile: meter}]
`, `profile_files[0] "` + filepath.Join(dir, "nope.yaml") + `": open `},
		{"bad profile in a file", `
profile_files: [` + bad + `]
connections:
  - endpoint: tcp://127.0.0.1:502
    devices: [{id: d, profile: meter}]
`, `profile_files[0]::meter: fields[0] "v": type: unknown "float128"`},
		{"missing tls file", `
connections:
  - endpoint: tcp+tls://127.0.0.1:802
    tls: {ca_file: ` + filepath.Join(dir, "ca.pem") + `, cert_file: ` + filepath.Join(dir, "c.pem") + `, key_file: ` + filepath.Join(dir, "k.pem") + `}
    devices: [{id: d, fields: [{name: v, address: 0}]}]
`, `connections[0].tls: failed to load TLS config`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configFromYAML(t, tc.yml)
			require.NoError(t, confmap.Validate(cfg), "Validate reads no file")
			err := create(t, cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// A device whose profile is in a profile file is checked at creation; its own keys already in
// Validate, and a profile that is in no file then is unknown.
func TestProfileFromFileResolvedAtCreation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(file, []byte("profiles:\n  meter:\n    fields:\n      - {name: v, address: 0}\n"), 0o600))
	cfg := configFromYAML(t, `
profile_files: [`+file+`]
connections:
  - endpoint: tcp://127.0.0.1:502
    devices:
      - {id: a, profile: meter, fields: [{name: w, address: 1}]}
      - {id: b, profile: other, unit_id: 300}
`)
	err := confmap.Validate(cfg)
	require.Error(t, err)
	assert.Equal(t, `connections[0].devices[1] "b": unit_id: must be 1 to 247, or 0 or 255 on tcp://, tcp+tls:// and udp://, got 300`, err.Error(),
		"the device's own keys are checked; its profile is left for creation")
	cfg.Connections[0].Devices[1].UnitID = nil
	require.NoError(t, confmap.Validate(cfg))
	_, err = cfg.resolve()
	require.Error(t, err)
	assert.Equal(t, `connections[0].devices[1] "b": profile: unknown "other" (known: meter)`, err.Error())
	cfg.Connections[0].Devices = cfg.Connections[0].Devices[:1]
	conns, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, conns[0].devices[0].fields, 2)
	assert.Equal(t, 1, conns[0].devices[0].fields[1].address)
}

// The tls block is the collector's configtls.ClientConfig; keys the Modbus library cannot honour are
// refused rather than ignored.
func TestTLSBlock(t *testing.T) {
	cfg := configFromYAML(t, `
connections:
  - endpoint: tcp+tls://127.0.0.1:802
    tls: {cert_file: c.pem, min_version: "1.3", insecure_skip_verify: true}
    devices: [{id: d, fields: [{name: v, address: 0}]}]
  - endpoint: tcp://127.0.0.1:502
    tls: {ca_file: ca.pem}
    devices: [{id: e, fields: [{name: v, address: 0}]}]
  - endpoint: tcp+tls://127.0.0.1:803
    tls: {ca_file: ca.pem}
    devices: [{id: f, fields: [{name: v, address: 0}]}]
`)
	err := confmap.Validate(cfg)
	require.Error(t, err)
	for _, want := range []string{
		`connections[0].tls.ca_file: required (Modbus/TCP Security authenticates both ends by certificate)`,
		`connections[0].tls.insecure_skip_verify: not supported by Modbus/TCP Security`,
		`connections[0].tls.min_version: not supported by Modbus/TCP Security`,
		`connections[1].tls: only tcp+tls:// endpoints use TLS (endpoint is tcp://)`,
		`connections[2].tls.cert_file, connections[2].tls.key_file: required`,
		// configtls's own Validate, called by confmap.Validate: a certificate without its key is
		// reported there, once.
		`connections::0::tls: TLS configuration must include both certificate and key`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "connections[0].tls.key_file")
	assert.NotContains(t, err.Error(), "connections[0].tls.cert_file")
}

// A typo in an order that fields inherit is one mistake: it is reported where it was made, once, not
// again for every field that inherits it (one typo used to print 40 lines).
func TestInheritedByteOrderTypoReportedOnce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "meter.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`profiles:
  meter:
    byte_order: ABDC
    fields:
      - {name: v1, address: 0, type: float32}
      - {name: v2, address: 2, type: float32}
      - {name: v3, address: 4, type: float32, byte_order: DBCA}
`), 0o600))
	cfg := configFromYAML(t, `
profile_files: [`+file+`]
connections:
  - endpoint: tcp://127.0.0.1:502
    devices:
      - {id: d, profile: meter}
      - {id: e, byte_order: BADX, fields: [{name: w, address: 0, type: uint32}]}
`)
	err := create(t, cfg)
	require.Error(t, err)
	msg := err.Error()
	assert.Equal(t, 1, strings.Count(msg, `"ABDC"`), "the profile's typo once: %s", msg)
	assert.Equal(t, 1, strings.Count(msg, `"DBCA"`), "a field's own typo is its own mistake: %s", msg)
	assert.Equal(t, 1, strings.Count(msg, `"BADX"`), "the device's typo once: %s", msg)
	assert.Equal(t, 3, strings.Count(msg, "byte_order: unknown"), msg)
	assert.NotContains(t, msg, `unknown ""`)
}

// enabled: false keeps a device validated (its mistakes and its unit id count) but not polled.
func TestDeviceDisabled(t *testing.T) {
	cfg := configFromYAML(t, `
connections:
  - endpoint: tcp://127.0.0.1:502
    devices:
      - {id: on, unit_id: 1, fields: [{name: v, address: 0, type: uint16}]}
      - {id: off, unit_id: 2, enabled: false, fields: [{name: v, address: 0, type: uint16}]}
  - endpoint: tcp://127.0.0.1:503
    devices:
      - {id: all-off, enabled: false, fields: [{name: v, address: 0, type: uint16}]}
`)
	conns, err := cfg.resolve()
	require.NoError(t, err)
	require.Len(t, conns, 2)
	require.Len(t, conns[0].devices, 1)
	assert.Equal(t, "on", conns[0].devices[0].identity.ID)
	assert.Empty(t, conns[1].devices, "a connection whose devices are all disabled polls nothing (and so never opens)")

	bad := configFromYAML(t, `
connections:
  - endpoint: tcp://127.0.0.1:502
    devices:
      - {id: on, unit_id: 1, fields: [{name: v, address: 0, type: uint16}]}
      - {id: off, unit_id: 1, enabled: false, fields: [{name: v, address: 0, type: float128}]}
`)
	_, err = bad.resolve()
	require.Error(t, err, "a disabled device is still validated")
	assert.ErrorContains(t, err, `type: unknown "float128"`)
	assert.ErrorContains(t, err, "unit_id: 1 is already used")
}
