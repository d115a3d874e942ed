package modbusreceiver

import (
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// silentServer accepts connections and never answers (a device that hangs).
type silentServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newSilentServer(t *testing.T, addr string) *silentServer {
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	s := &silentServer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return s
}

func (s *silentServer) Close() {
	_ = s.ln.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// One device that never answers among 20 that do: the healthy ones keep their period, the dead one's
// breaker opens, and when it comes back its data resumes without a restart.
func TestFaultIsolation(t *testing.T) {
	const interval = 200 * time.Millisecond
	var conns strings.Builder
	for g := 0; g < 4; g++ {
		bank := modbussim.NewBank()
		for u := 1; u <= 5; u++ {
			bank.AddUnit(uint8(u))
			bank.SetRegisters(uint8(u), modbussim.Holding, 0, uint16(g*10+u))
		}
		addr := startTCPServer(t, bank)
		fmt.Fprintf(&conns, "  - endpoint: tcp://%s\n    devices:\n", addr)
		for u := 1; u <= 5; u++ {
			fmt.Fprintf(&conns, "      - {id: ok-%d-%d, unit_id: %d, fields: [{name: v, address: 0}]}\n", g, u, u)
		}
	}
	deadAddr := freeAddr(t)
	silent := newSilentServer(t, deadAddr)
	fmt.Fprintf(&conns, "  - endpoint: tcp://%s\n    devices:\n      - {id: dead, unit_id: 1, fields: [{name: v, address: 0}]}\n", deadAddr)

	cfg := loadConfig(t, `
poll: {interval: 200ms, timeout: 150ms, retries: 1, jitter: 0.05}
breaker: {failure_threshold: 2, initial_backoff: 400ms, max_backoff: 800ms}
connections:
`+conns.String())
	// The devices' time is a manual clock, moved in steps once every connection's goroutine (one per
	// connection: a link of one) waits on it: the polls' timing is the schedule's, whatever the
	// machine's load. Only the dead device's timeouts take wall time.
	const goroutines = 5
	clk := clock.NewManual(time.Now())
	s := startReceiverOn(t, cfg, clk)
	// step moves the clock until cond holds, at most max; it tells whether cond held.
	step := func(cond func() bool, max time.Duration) bool {
		t.Helper()
		for end := clk.Now().Add(max); ; clk.Advance(10 * time.Millisecond) {
			require.Eventually(t, func() bool { return clk.Waiters() == goroutines }, 10*time.Second, 100*time.Microsecond)
			if cond() {
				return true
			}
			if !clk.Now().Before(end) {
				return false
			}
		}
	}

	// Wait until the dead device's breaker is open, then observe a window of 2 s.
	require.True(t, step(func() bool {
		b, ok := latest(points(s.metrics.AllMetrics()), "dead", device.MetricBreakerState, nil)
		return ok && b.value == 2
	}, 10*time.Second), "the dead device's breaker opens")
	from := clk.Now()
	step(func() bool { return false }, 2*time.Second)
	to := clk.Now()

	polls := map[string][]time.Time{}
	var deadDown bool
	for _, p := range points(s.metrics.AllMetrics()) {
		if p.metric != device.MetricUp || p.ts.Before(from) || p.ts.After(to) {
			continue
		}
		if p.device == "dead" {
			deadDown = deadDown || p.value == 0
			continue
		}
		assert.Equal(t, 1.0, p.value, "%s is up", p.device)
		polls[p.device] = append(polls[p.device], p.ts)
	}
	assert.True(t, deadDown)
	require.Len(t, polls, 20)
	for dev, ts := range polls {
		// 2 s at 200 ms: 10 polls; allow for phase and jitter.
		assert.GreaterOrEqual(t, len(ts), 8, "%s polled %d times in 2s", dev, len(ts))
		for i := 1; i < len(ts); i++ {
			assert.Less(t, ts[i].Sub(ts[i-1]), 2*interval, "%s: gap between polls", dev)
		}
	}

	// The device comes back on the same address.
	silent.Close()
	bank := modbussim.NewBank(1)
	bank.SetRegisters(1, modbussim.Holding, 0, 4242)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + deadAddr, Logger: log.New(io.Discard, "", 0)}, bank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })
	require.True(t, step(func() bool {
		pts := points(s.metrics.AllMetrics())
		v, ok := latest(pts, "dead", "v", nil)
		b, _ := latest(pts, "dead", device.MetricBreakerState, nil)
		return ok && !v.stale && v.value == 4242 && b.value == 0
	}, 10*time.Second), "the device's data resumes")
}
