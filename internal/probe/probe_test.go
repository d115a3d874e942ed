package probe

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseEndpoint(t *testing.T) {
	ep, err := ParseEndpoint("tcp://10.0.0.5:502", "tcp", "rtu")
	require.NoError(t, err)
	assert.Equal(t, Endpoint{Scheme: "tcp", Address: "10.0.0.5:502", Raw: "tcp://10.0.0.5:502"}, ep)
	ep, err = ParseEndpoint("rtu:///dev/ttyUSB0", "tcp", "rtu")
	require.NoError(t, err)
	assert.Equal(t, "/dev/ttyUSB0", ep.Address)
	assert.True(t, ep.Serial())

	for in, want := range map[string]string{
		"":                    "--endpoint: required",
		"udp://h:1":           `unknown scheme "udp"`,
		"tcp://host":          "must be tcp://host:port",
		"tcp://host:99999":    "port \"99999\" must be a number from 1 to 65535",
		"rtu://dev/ttyUSB0":   "three slashes",
		"tcp://:502":          "must be tcp://host:port",
		"tcp://h:502/extra/x": "must be tcp://host:port",
	} {
		_, err := ParseEndpoint(in, "tcp", "rtu")
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestParseRange(t *testing.T) {
	got, err := ParseRange("--units", "5,1-3,3,10-11", 0, 255)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3, 5, 10, 11}, got)
	assert.Equal(t, "1-3,5,10-11", CompactRange(got))
	for _, bad := range []string{"0-300", "x", "5-1", "1-", ""} {
		_, err := ParseRange("--units", bad, 1, 247)
		assert.Error(t, err, bad)
	}
}

// TestYAMLScalars: what Q, Map and List write reads back as the same strings.
func TestYAMLScalars(t *testing.T) {
	m := map[string]string{"plain": "voltage_l1", "url": "tcp://h:502", "bool": "yes", "num": "00010000", "colon": "a: b", "quote": `say "hi"`, "hash": "x #y", "empty": ""}
	var b bytes.Buffer
	b.WriteString("m: " + StringMap(m) + "\n")
	b.WriteString("l: " + List([]string{"on", "1e3", "ns=2;s=A"}) + "\n")
	var got struct {
		M map[string]string `yaml:"m"`
		L []string          `yaml:"l"`
	}
	require.NoError(t, yaml.Unmarshal(b.Bytes(), &got), b.String())
	delete(m, "empty") // Map leaves empty values out
	got.M["empty"] = ""
	m["empty"] = ""
	assert.Equal(t, m, got.M)
	assert.Equal(t, []string{"on", "1e3", "ns=2;s=A"}, got.L)
}
