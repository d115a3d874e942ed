// Package memlimit is a confmap converter that sets the Go runtime's soft memory limit (what the
// GOMEMLIMIT environment variable sets) from the memory_limiter processors of the configuration.
//
// The memory_limiter refuses data once the heap passes its soft limit (limit_mib - spike_limit_mib);
// the Go runtime by default only collects when the heap has doubled (GOGC=100), so on a small gateway
// the heap can overshoot to twice the live data before the limiter sees it. With the runtime's limit
// at the limiter's soft limit the garbage collector works harder as the heap nears the point where
// data would be refused, and the process stays below the limit the operator sized it for. Upstream
// recommends GOMEMLIMIT at 80% of the hard limit: the soft limit with the default spike (20%).
//
// A converter runs on every resolution of the configuration, at start and on each reload (SIGHUP),
// so the limit follows the configuration; an environment file or systemd unit would go stale when the
// configuration changes. GOMEMLIMIT in the environment always wins: then nothing is set.
package memlimit // import "github.com/otelcol-iiot/otelcol-iiot/internal/memlimit"

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"
)

const mib = 1 << 20

// NewFactory returns the converter's factory, for ocb's `converters:` list.
func NewFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(set confmap.ConverterSettings) confmap.Converter {
		return newConverter(set.Logger, os.Getenv, debug.SetMemoryLimit, totalMemory)
	})
}

type converter struct {
	logger *zap.Logger
	// setLimit is debug.SetMemoryLimit (a negative value reads the limit without changing it).
	setLimit func(int64) int64
	// totalMemory is what limit_percentage is a percentage of, as the memory_limiter computes it.
	totalMemory func() (uint64, error)
	fromEnv     bool

	mu sync.Mutex
	// initial is the runtime's limit before the first conversion, restored when the configuration
	// no longer has a memory_limiter.
	initial int64
	current int64 // the limit this converter set, 0 if none
}

func newConverter(logger *zap.Logger, getenv func(string) string, setLimit func(int64) int64, total func() (uint64, error)) *converter {
	if logger == nil {
		logger = zap.NewNop()
	}
	c := &converter{logger: logger, setLimit: setLimit, totalMemory: total, initial: setLimit(-1)}
	if v := getenv("GOMEMLIMIT"); v != "" {
		c.fromEnv = true
		logger.Info("GOMEMLIMIT is set in the environment: the Go memory limit is not derived from memory_limiter",
			zap.String("GOMEMLIMIT", v))
	}
	return c
}

// limiterConfig holds the memory_limiter keys the limit is derived from.
type limiterConfig struct {
	LimitMiB        uint32 `mapstructure:"limit_mib"`
	SpikeLimitMiB   uint32 `mapstructure:"spike_limit_mib"`
	LimitPercentage uint32 `mapstructure:"limit_percentage"`
	SpikePercentage uint32 `mapstructure:"spike_limit_percentage"`
}

// Convert sets the runtime's memory limit to the lowest soft limit of the memory_limiter processors
// that a pipeline uses. It never changes the configuration and never fails a configuration the
// collector itself would accept: what it cannot read it leaves to the processor's own validation.
func (c *converter) Convert(_ context.Context, conf *confmap.Conf) error {
	if c.fromEnv {
		return nil
	}
	limit, source := c.derive(conf)
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit == 0 {
		if c.current != 0 {
			c.setLimit(c.initial)
			c.current = 0
			c.logger.Info("No memory_limiter in the pipelines: the Go memory limit is back to the runtime's default")
		}
		return nil
	}
	if limit != c.current {
		c.setLimit(limit)
		c.current = limit
		c.logger.Info("Go memory limit (GOMEMLIMIT) set to the memory_limiter's soft limit",
			zap.String("processor", source), zap.Int64("limit_mib", limit/mib))
	}
	return nil
}

// derive returns the lowest soft limit in bytes among the memory_limiter processors in use (0 if none)
// and the processor it comes from.
func (c *converter) derive(conf *confmap.Conf) (int64, string) {
	var svc struct {
		Pipelines map[string]struct {
			Processors []string `mapstructure:"processors"`
		} `mapstructure:"pipelines"`
	}
	sub, err := conf.Sub("service")
	if err == nil {
		err = sub.Unmarshal(&svc, confmap.WithIgnoreUnused())
	}
	if err != nil {
		c.logger.Debug("Go memory limit: pipelines not readable, left to the configuration's validation", zap.Error(err))
		return 0, ""
	}
	used := map[string]bool{}
	for _, p := range svc.Pipelines {
		for _, id := range p.Processors {
			if typ, _, _ := strings.Cut(id, "/"); typ == "memory_limiter" {
				used[id] = true
			}
		}
	}
	var best int64
	var source string
	for id := range used {
		sub, err := conf.Sub("processors::" + id)
		if err != nil {
			continue
		}
		var lc limiterConfig
		if err := sub.Unmarshal(&lc, confmap.WithIgnoreUnused()); err != nil {
			continue // the processor's own validation names the key
		}
		soft, err := c.softLimit(lc)
		if err != nil {
			c.logger.Warn("Go memory limit: not derived from this memory_limiter", zap.String("processor", id), zap.Error(err))
			continue
		}
		if soft > 0 && (best == 0 || soft < best || (soft == best && id < source)) {
			best, source = soft, id
		}
	}
	return best, source
}

// softLimit is the memory_limiter's soft limit in bytes, computed as the processor computes it
// (limit_mib wins over limit_percentage; an unset spike is 20% of the limit).
func (c *converter) softLimit(lc limiterConfig) (int64, error) {
	var limit, spike uint64
	switch {
	case lc.LimitMiB != 0:
		limit, spike = uint64(lc.LimitMiB)*mib, uint64(lc.SpikeLimitMiB)*mib
	case lc.LimitPercentage != 0:
		total, err := c.totalMemory()
		if err != nil {
			return 0, err
		}
		limit, spike = uint64(lc.LimitPercentage)*total/100, uint64(lc.SpikePercentage)*total/100
	default:
		return 0, nil
	}
	if spike == 0 {
		spike = limit / 5
	}
	if spike >= limit || limit-spike > math.MaxInt64 {
		return 0, nil // invalid: the processor's validation reports it
	}
	return int64(limit - spike), nil
}

// totalMemory is the memory available to the process: the cgroup v2 limit (memory.max) when it has
// one, else the machine's MemTotal — what the memory_limiter uses for limit_percentage.
func totalMemory() (uint64, error) {
	machine, err := memTotal("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	if cg, ok := cgroupLimit("/proc/self/cgroup", "/sys/fs/cgroup"); ok && cg < machine {
		return cg, nil
	}
	return machine, nil
}

func memTotal(path string) (uint64, error) {
	b, err := os.ReadFile(path) //nolint:gosec // a fixed /proc path
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New(path + ": no MemTotal")
}

// cgroupLimit reads memory.max of the process's cgroup v2 ("0::/path" in /proc/self/cgroup).
func cgroupLimit(selfCgroup, root string) (uint64, bool) {
	b, err := os.ReadFile(selfCgroup) //nolint:gosec // a fixed /proc path
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		v, err := os.ReadFile(filepath.Join(root, rest, "memory.max")) //nolint:gosec // under /sys/fs/cgroup
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(v)), 10, 64)
		return n, err == nil // "max": no limit
	}
	return 0, false
}
