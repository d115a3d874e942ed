//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGoMemoryLimitFromMemoryLimiter: the built collector sets the Go runtime's memory limit
// (GOMEMLIMIT) to its memory_limiter's soft limit at start, follows the configuration on a reload
// (SIGHUP), and leaves it alone when GOMEMLIMIT is in the environment.
func TestGoMemoryLimitFromMemoryLimiter(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	port := freePort(t)
	write := func(limit, spike int) {
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: %d
    spike_limit_mib: %d
exporters:
  debug:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [debug]
`, port, limit, spike)), 0o600))
	}
	const set = "Go memory limit (GOMEMLIMIT) set to the memory_limiter's soft limit"
	logged := func(c *collector, mib int) func() bool {
		return func() bool {
			for _, line := range strings.Split(c.output(), "\n") {
				if strings.Contains(line, set) && strings.Contains(line, fmt.Sprintf(`"limit_mib": %d}`, mib)) {
					return true
				}
			}
			return false
		}
	}

	write(300, 60)
	c := startCollectorFiles(t, map[string]string{"GOMEMLIMIT": ""}, cfg)
	require.True(t, assertEventually(60*time.Second, logged(c, 240)), "limit_mib - spike_limit_mib at start:\n%s", c.output())

	// a reload with a smaller limiter moves the runtime's limit with it
	write(100, 20)
	c.mu.Lock()
	pid := c.cmd.Process.Pid
	c.mu.Unlock()
	require.NoError(t, syscall.Kill(pid, syscall.SIGHUP))
	require.True(t, assertEventually(60*time.Second, logged(c, 80)), "after SIGHUP:\n%s", c.output())
	require.True(t, c.running(), "the collector runs on after the reload")
	c.Stop(t)

	// GOMEMLIMIT in the environment wins
	write(300, 60)
	c = startCollectorFiles(t, map[string]string{"GOMEMLIMIT": "100MiB"}, cfg)
	require.True(t, assertEventually(60*time.Second, func() bool {
		return strings.Contains(c.output(), "GOMEMLIMIT is set in the environment") && strings.Contains(c.output(), "Everything is ready")
	}), c.output())
	require.NotContains(t, c.output(), set)
}
