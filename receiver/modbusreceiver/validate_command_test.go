package modbusreceiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

// dryRun is what `otelcol-iiot validate` does with a config file: validate it, then build the
// pipelines (which creates the components).
func dryRun(t *testing.T, cfgYAML string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfgYAML), 0o600))
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.NewDefaultBuildInfo(),
		Factories: func() (otelcol.Factories, error) {
			return otelcol.Factories{
				Receivers: map[component.Type]receiver.Factory{NewFactory().Type(): NewFactory()},
				Exporters: map[component.Type]exporter.Factory{debugexporter.NewFactory().Type(): debugexporter.NewFactory()},
				Telemetry: otelconftelemetry.NewFactory(),
			}, nil
		},
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"file:" + path},
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
		}},
	})
	require.NoError(t, err)
	return col.DryRun(context.Background())
}

// The validate command reports a missing profile file, though Validate reads no file: it creates
// the receiver, and the receiver reads its files then.
func TestValidateCommandReportsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	pipeline := `
exporters:
  debug:
service:
  pipelines:
    metrics:
      receivers: [modbus]
      exporters: [debug]
`
	missing := filepath.Join(dir, "nope.yaml")
	err := dryRun(t, `
receivers:
  modbus:
    profile_files: [`+missing+`]
    connections:
      - endpoint: tcp://127.0.0.1:502
        devices: [{id: d, profile: meter}]
`+pipeline)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `profile_files[0] "`+missing+`": open `)

	err = dryRun(t, `
receivers:
  modbus:
    connections:
      - endpoint: tcp+tls://127.0.0.1:802
        tls: {ca_file: `+filepath.Join(dir, "ca.pem")+`, cert_file: `+filepath.Join(dir, "c.pem")+`, key_file: `+filepath.Join(dir, "k.pem")+`}
        devices: [{id: d, fields: [{name: v, address: 0}]}]
`+pipeline)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `connections[0].tls: failed to load TLS config`)

	file := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(file, []byte("profiles:\n  meter:\n    fields:\n      - {name: v, address: 0}\n"), 0o600))
	require.NoError(t, dryRun(t, `
receivers:
  modbus:
    profile_files: [`+file+`]
    connections:
      - endpoint: tcp://127.0.0.1:502
        devices: [{id: d, profile: meter}]
`+pipeline))
}
