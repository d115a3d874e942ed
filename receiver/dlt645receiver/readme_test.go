package dlt645receiver

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// The examples of the README are valid configurations.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := strings.Split(string(b), "```yaml\n")[1:]
	require.Len(t, blocks, 9)
	for i, blk := range blocks {
		src := blk[:strings.Index(blk, "```")]
		var doc struct {
			Receivers map[string]map[string]any `yaml:"receivers"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(src), &doc), "example %d", i)
		raw, ok := doc.Receivers["dlt645"]
		require.True(t, ok, "example %d", i)
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg), "example %d", i)
		require.NoError(t, cfg.Validate(), "example %d", i)
	}
}
