// Copyright The otelcol-iiot Authors
// SPDX-License-Identifier: Apache-2.0

//go:build package

package packagetest

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// goRuntime are variables the Go runtime reads, not the YAML.
var goRuntime = map[string]bool{"GOGC": true, "GOMEMLIMIT": true}

// TestEnvFilesCoverConfig: the env file each package installs sets every variable its YAML files read
// (so the administrator sees every knob in one place), and nothing the YAML does not read (a renamed
// variable would otherwise be silently ignored).
func TestEnvFilesCoverConfig(t *testing.T) {
	ref := regexp.MustCompile(`\$\{env:([A-Z0-9_]+)`)
	for _, dist := range []string{"otelcol-iiot", "otelcol-iiot-gateway"} {
		t.Run(dist, func(t *testing.T) {
			d := filepath.Join(repoRoot, "distributions", dist)
			var yamls []string
			for _, g := range []string{"*.yaml", "devices/*.yaml", "profiles/*.yaml"} {
				m, err := filepath.Glob(filepath.Join(d, g))
				require.NoError(t, err)
				yamls = append(yamls, m...)
			}
			used := map[string]bool{}
			for _, y := range yamls {
				if filepath.Base(y) == "builder-config.yaml" || filepath.Base(y) == "demo.yaml" {
					continue // not installed
				}
				b, err := os.ReadFile(y)
				require.NoError(t, err)
				for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
					used[m[1]] = true
				}
			}
			env := readEnvFile(t, filepath.Join(d, dist+".conf"))
			var missing, unused []string
			for k := range used {
				if _, ok := env[k]; !ok {
					missing = append(missing, k)
				}
			}
			for k := range env {
				if k != "OTELCOL_OPTIONS" && !goRuntime[k] && !used[k] {
					unused = append(unused, k)
				}
			}
			sort.Strings(missing)
			sort.Strings(unused)
			require.Empty(t, missing, "read by %s's YAML but not set in %s.conf", dist, dist)
			require.Empty(t, unused, "set in %s.conf but read by no installed YAML", dist)
			require.Contains(t, env["OTELCOL_OPTIONS"], "--config=/etc/"+dist+"/config.yaml")
		})
	}
}
