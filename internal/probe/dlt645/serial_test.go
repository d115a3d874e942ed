//go:build linux

package dlt645

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/probe"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// TestScanSerial scans meters on a serial line: the simulator serves one end of a socat pty pair at
// 9600 8E1, the probe opens the other.
func TestScanSerial(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pair, err := sim.NewPTYPair(ctx, t.TempDir())
	if err != nil {
		t.Skipf("no pty pair: %v", err)
	}
	t.Cleanup(func() { _ = pair.Close() })
	srv := sim.NewServer(sim.Options{Preamble: 4}, threePhase(t, "000000000011"))
	sc := dlt645.DefaultSerialConfig(pair.B)
	sc.BaudRate = 9600
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeSerial(ctx, sc) }()
	t.Cleanup(func() { _ = srv.Close(); cancel(); <-done })

	ep, err := probe.ParseEndpoint("serial://"+pair.A, "tcp", "serial")
	require.NoError(t, err)
	cfg := ScanConfig{Endpoint: ep, Serial: sc, Timeout: 300 * time.Millisecond, Versions: []dlt645.Version{dlt645.V2007}}
	res, err := Scan(ctx, cfg)
	require.NoError(t, err)
	require.Len(t, res.Meters, 1)
	assert.Equal(t, "000000000011", res.Meters[0].Address.String())
	var out bytes.Buffer
	WriteScan(&out, cfg, res)
	c := loadDLT645(t, out.String())
	assert.Equal(t, "serial://"+pair.A, c.Buses[0].Endpoint)
	assert.Equal(t, 9600, c.Buses[0].BaudRate)
	assert.Len(t, identifiers(c, 0), 12)
}
