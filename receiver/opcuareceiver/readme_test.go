package opcuareceiver

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"gopkg.in/yaml.v3"
)

// TestReadmeExamplesAreValid unmarshals and validates every opcua receiver of the README's examples.
func TestReadmeExamplesAreValid(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	t.Setenv("OPCUA_PASSWORD", "x")
	found := 0
	for _, b := range blocks {
		if !strings.HasPrefix(b[1], "receivers:") {
			continue
		}
		var doc map[string]map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(b[1]), &doc))
		for name, rc := range doc["receivers"] {
			if !strings.HasPrefix(name, "opcua") {
				continue
			}
			found++
			cfg := createDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(rc.(map[string]any)).Unmarshal(cfg), name)
			require.NoError(t, confmap.Validate(cfg), name)
		}
	}
	require.Equal(t, 5, found, "the README has five receiver examples")
}
