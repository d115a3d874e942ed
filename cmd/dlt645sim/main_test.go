package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645/sim"
)

func TestDemoConfig(t *testing.T) {
	cfg, err := sim.ParseConfig([]byte(demoConfig))
	require.NoError(t, err)
	meters, animated, err := cfg.BuildMeters()
	require.NoError(t, err)
	require.Len(t, meters, 4)
	require.Len(t, animated, 4)
}
