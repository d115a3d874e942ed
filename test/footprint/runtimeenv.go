package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

// goRuntimeVars are the Go runtime settings the shipped env file may set for the collector.
var goRuntimeVars = []string{"GOGC", "GOMEMLIMIT"}

// runtimeEnv returns the Go runtime settings the collector runs with, as the packaged service would get
// them: from the env file (what systemd's EnvironmentFile gives the service), unless this program's own
// environment sets the variable, and then the -env overrides. Each value names where it came from.
func runtimeEnv(envFile string, getenv func(string) string, overrides []string) (map[string]string, map[string]string, error) {
	vals, from := map[string]string{}, map[string]string{}
	if envFile != "" {
		f, err := os.Open(envFile) //nolint:gosec // the env file named on the command line
		if err != nil {
			return nil, nil, fmt.Errorf("-env-file: %w", err)
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), "=")
			if !ok || strings.HasPrefix(k, "#") {
				continue
			}
			for _, name := range goRuntimeVars {
				if k == name {
					vals[k], from[k] = strings.Trim(v, `"'`), "env file"
				}
			}
		}
		if err := s.Err(); err != nil {
			return nil, nil, fmt.Errorf("-env-file: %w", err)
		}
	}
	for _, name := range goRuntimeVars {
		if v := getenv(name); v != "" {
			vals[name], from[name] = v, "environment"
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("-env %q: give NAME=VALUE", o)
		}
		vals[k], from[k] = v, "-env"
	}
	return vals, from, nil
}

// describeEnv is the settings in one line for the table's header, e.g. "GOGC=50 (env file)".
func describeEnv(vals, from map[string]string) string {
	if len(vals) == 0 {
		return "Go runtime defaults"
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%s (%s)", k, vals[k], from[k]))
	}
	return strings.Join(parts, ", ")
}

// envList is a repeatable NAME=VALUE flag.
type envList []string

func (e *envList) String() string     { return strings.Join(*e, ",") }
func (e *envList) Set(v string) error { *e = append(*e, v); return nil }

// fileList is a repeatable file flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }
