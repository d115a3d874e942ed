package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The collector under test gets the Go runtime settings of the shipped env file, as the service does.
func TestRuntimeEnvFromShippedEnvFile(t *testing.T) {
	shipped := filepath.Join("..", "..", "distributions", "otelcol-iiot", "otelcol-iiot.conf")
	none := func(string) string { return "" }
	vals, from, err := runtimeEnv(shipped, none, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"GOGC": "50"}, vals)
	assert.Equal(t, "GOGC=50 (env file)", describeEnv(vals, from))

	// this program's environment wins over the file, -env over both
	vals, from, err = runtimeEnv(shipped, func(k string) string { return map[string]string{"GOGC": "80", "GOMEMLIMIT": "100MiB"}[k] }, []string{"GOGC=100"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"GOGC": "100", "GOMEMLIMIT": "100MiB"}, vals)
	assert.Equal(t, "GOGC=100 (-env), GOMEMLIMIT=100MiB (environment)", describeEnv(vals, from))

	vals, from, err = runtimeEnv("", none, nil)
	require.NoError(t, err)
	assert.Empty(t, vals)
	assert.Equal(t, "Go runtime defaults", describeEnv(vals, from))
}

func TestRuntimeEnvErrors(t *testing.T) {
	none := func(string) string { return "" }
	_, _, err := runtimeEnv(filepath.Join(t.TempDir(), "missing.conf"), none, nil)
	require.ErrorContains(t, err, "-env-file")
	_, _, err = runtimeEnv("", none, []string{"GOGC"})
	require.ErrorContains(t, err, "NAME=VALUE")

	// comments and other variables are not Go runtime settings; quotes are the env file's, not the value's
	f := filepath.Join(t.TempDir(), "x.conf")
	require.NoError(t, os.WriteFile(f, []byte("# GOGC=10\nOTELCOL_IIOT_SITE=a\nGOMEMLIMIT=\"64MiB\"\n"), 0o600))
	vals, _, err := runtimeEnv(f, none, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"GOMEMLIMIT": "64MiB"}, vals)
}
