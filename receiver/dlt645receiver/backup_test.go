package dlt645receiver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// The first serial server is down: after failover_after failed connects the backup serves; the first
// comes back, and after failback_after (on the manual clock) it serves again. Each poll's span says
// which endpoint it went to.
func TestBackupEndpoint(t *testing.T) {
	primary := freePort(t) // nobody listens yet: connects are refused
	_, backup := startSim(t, sim.Options{Preamble: 4}, voltageMeter(t, "000000000001", 231.5))
	cfg := loadYAML(t, `
poll: {interval: 1s, timeout: 500ms, retries: 0, jitter: 0}
breaker: {failure_threshold: 0}
traces: {success_sample_ratio: 1}
buses:
  - endpoints: [tcp://`+primary+`, tcp://`+backup+`]
    failover_after: 2
    failback_after: 1m
    meters:
      - {id: m, address: "1", identifiers: ["02010100"]}
`)
	clk := clock.NewManual(time.Now())
	s := sinks{metrics: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink)}
	r, err := newReceiver(context.Background(), cfg, receivertestSettings())
	require.NoError(t, err)
	r.SetClock(clk)
	r.SetMetrics(s.metrics)
	r.SetTraces(s.traces)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	step := func(cond func() bool, max time.Duration) bool {
		t.Helper()
		for end := clk.Now().Add(max); ; clk.Advance(100 * time.Millisecond) {
			require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 10*time.Second, 100*time.Microsecond)
			if cond() {
				return true
			}
			if !clk.Now().Before(end) {
				return false
			}
		}
	}
	value := func() float64 { v, _ := lastValue(s, "m"); return v }
	servedBy := func() []any {
		var out []any
		for _, sp := range allSpans(s.traces.AllTraces()) {
			if sp.name == "dlt645.poll" {
				out = append(out, sp.attrs[attrServedBy])
			}
		}
		return out
	}

	require.True(t, step(func() bool { return value() == 231.5 }, 10*time.Second), "the backup serves")
	assert.Equal(t, []any{"tcp://" + primary, "tcp://" + primary, "tcp://" + backup}, servedBy())

	// The first server comes back (another reading, to tell them apart).
	srv := sim.NewServer(sim.Options{Preamble: 4}, voltageMeter(t, "000000000001", 220.5))
	l, err := net.Listen("tcp", primary)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	require.False(t, step(func() bool { return value() == 220.5 }, 50*time.Second), "no failback before failback_after")
	require.True(t, step(func() bool { return value() == 220.5 }, 20*time.Second), "failback after failback_after")
	polls := servedBy()
	assert.Equal(t, "tcp://"+primary, polls[len(polls)-1])
	assert.Equal(t, "tcp://"+backup, polls[len(polls)-2])
}

// The backup keys are checked, each error naming its key.
func TestBackupEndpointConfigErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Buses = []BusConfig{
		{Endpoint: "tcp://10.0.0.1:4001", Endpoints: []string{"tcp://10.0.0.1:4001", "tcp://10.0.0.2:4001"}, Meters: []MeterConfig{{ID: "a", Address: "1", MeterKeys: MeterKeys{Identifiers: []IdentifierConfig{{DI: "02010100"}}}}}},
		{Endpoints: []string{"tcp://10.0.0.3:4001", "serial:///dev/ttyUSB0"}, FailoverAfter: -1, Meters: []MeterConfig{{ID: "b", Address: "1", MeterKeys: MeterKeys{Identifiers: []IdentifierConfig{{DI: "02010100"}}}}}},
	}
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "buses[0]: give endpoint (one) or endpoints (an endpoint and its backups), not both")
	assert.Contains(t, err.Error(), "buses[1].failover_after: must be at least 1 (failed connects before the next endpoint), got -1")
	assert.Contains(t, err.Error(), "buses[1].endpoints[1]: serial:// differs from endpoints[0]'s tcp:// (one connection, one protocol)")
}
