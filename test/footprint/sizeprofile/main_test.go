package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPackageOf(t *testing.T) {
	for sym, want := range map[string]string{
		"github.com/gopcua/opcua/ua.(*NodeID).String":                             "github.com/gopcua/opcua/ua",
		"github.com/gopcua/opcua/ua.map.init.0":                                   "github.com/gopcua/opcua/ua",
		"type:*github.com/a/b.T":                                                  "github.com/a/b",
		"go:itab.*github.com/a/b.T,io.Writer":                                     "github.com/a/b",
		"slices.SortFunc[go.shape.[]github.com/a/b.T,go.shape.struct {}]":         "slices",
		"go.opentelemetry.io/collector/pdata/pmetric.Metrics.ResourceMetrics":     "go.opentelemetry.io/collector/pdata/pmetric",
		"crypto/internal/fips140/drbg.memory":                                     "crypto/internal/fips140/drbg",
		"runtime.mallocgc":                                                        "runtime",
		"gonum.org/v1/gonum/lapack/gonum.Implementation.Dgesvd":                   "gonum.org/v1/gonum/lapack/gonum",
		"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver.newScraper": "github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver",
	} {
		assert.Equal(t, want, packageOf(sym), sym)
	}
}

func TestOwner(t *testing.T) {
	mods := []string{"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl", "github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor", "gonum.org/v1/gonum"}
	assert.Equal(t, "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl", owner("github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs.NewFactory", mods))
	assert.Equal(t, "gonum.org/v1/gonum", owner("gonum.org/v1/gonum/mat.(*Dense).Mul", mods))
	assert.Equal(t, "std: crypto", owner("crypto/tls.(*Conn).Handshake", mods))
	assert.Equal(t, "std: internal, vendor", owner("internal/poll.(*FD).Read", mods))
	assert.Equal(t, "(function table)", owner("runtime.findfunctab", mods))
	assert.Equal(t, "(strings, closures, type data of no one package)", owner("go:func.*", mods))
}

func TestIsComponent(t *testing.T) {
	for imp, want := range map[string]bool{
		"go.opentelemetry.io/collector/receiver/otlpreceiver":                                      true,
		"go.opentelemetry.io/collector/receiver":                                                   false,
		"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage":  true,
		"github.com/otelcol-iiot/otelcol-iiot/internal/memlimit":                                   false,
		"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry":                        false,
		"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension": true,
	} {
		assert.Equal(t, want, isComponent(imp), imp)
	}
}
