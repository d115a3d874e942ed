package modbusreceiver

import (
	"io"
	"log"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// The first endpoint is closed: after failover_after failed connects the backup serves; the first
// endpoint comes back, and after failback_after (on the manual clock) it serves again. Each poll's
// span says which endpoint it went to.
func TestBackupEndpoint(t *testing.T) {
	primary := freeAddr(t) // nobody listens yet: connects are refused
	backupBank := modbussim.NewBank(1)
	backupBank.SetRegisters(1, modbussim.Holding, 0, 2)
	backup := startTCPServer(t, backupBank)
	cfg := loadConfig(t, `
poll: {interval: 1s, timeout: 500ms, retries: 0, jitter: 0}
breaker: {failure_threshold: 0}
traces: {success_sample_ratio: 1}
connections:
  - endpoints: [tcp://`+primary+`, tcp://`+backup+`]
    failover_after: 2
    failback_after: 1m
    devices:
      - {id: d, fields: [{name: v, address: 0}]}
`)
	clk := clock.NewManual(time.Now())
	s := startReceiverOn(t, cfg, clk)
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
	value := func() float64 {
		p, ok := latest(points(s.metrics.AllMetrics()), "d", "v", nil)
		if !ok || p.stale {
			return 0
		}
		return p.value
	}
	servedBy := func() []any {
		var out []any
		for _, sp := range spans(s.traces.AllTraces()) {
			if sp.name == "modbus.poll" {
				out = append(out, sp.attrs[attrServedBy])
			}
		}
		return out
	}

	require.True(t, step(func() bool { return value() == 2 }, 10*time.Second), "the backup serves")
	polls := servedBy()
	require.Len(t, polls, 3, "two failed connects to the first endpoint, then the backup")
	assert.Equal(t, []any{"tcp://" + primary, "tcp://" + primary, "tcp://" + backup}, polls)
	switched := clk.Now().Add(-time.Second) // at the second failed connect, one interval before

	// The first endpoint returns; the backup serves until failback_after.
	primaryBank := modbussim.NewBank(1)
	primaryBank.SetRegisters(1, modbussim.Holding, 0, 1)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + primary, MaxClients: 4, Timeout: time.Minute, Logger: log.New(io.Discard, "", 0)}, primaryBank.Handler())
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })
	require.False(t, step(func() bool { return value() == 1 }, 50*time.Second), "no failback before failback_after")
	require.True(t, step(func() bool { return value() == 1 }, 20*time.Second), "failback after failback_after")
	assert.GreaterOrEqual(t, clk.Now().Sub(switched), time.Minute)
	polls = servedBy()
	assert.Equal(t, "tcp://"+primary, polls[len(polls)-1])
	assert.Equal(t, "tcp://"+backup, polls[len(polls)-2])
	assert.Zero(t, primaryBank.Requests(1)-1, "one poll on the first endpoint so far")
}

// The backup keys are checked, each error naming its key.
func TestBackupEndpointConfigErrors(t *testing.T) {
	err := unmarshal(t, `
connections:
  - endpoint: tcp://10.0.0.1:502
    endpoints: [tcp://10.0.0.1:502, tcp://10.0.0.2:502]
    devices: [{id: a, fields: [{name: x, address: 0}]}]
  - endpoints: [tcp://10.0.0.3:502, rtuovertcp://10.0.0.4:4001, tcp://10.0.0.3:502]
    failover_after: -1
    devices: [{id: b, fields: [{name: x, address: 0}]}]
  - endpoint: tcp://10.0.0.5:502
    failback_after: 1m
    devices: [{id: c, fields: [{name: x, address: 0}]}]
`).Validate()
	require.Error(t, err)
	assert.Equal(t, "connections[0]: give endpoint (one) or endpoints (an endpoint and its backups), not both\n"+
		"connections[1].failover_after: must be at least 1 (failed connects before the next endpoint), got -1\n"+
		"connections[1].endpoints[1]: rtuovertcp:// differs from endpoints[0]'s tcp:// (one connection, one protocol)\n"+
		"connections[1].endpoints[2]: 10.0.0.3:502 is endpoints[0] already\n"+
		"connections[2]: failover_after and failback_after apply only with endpoints: (an endpoint and its backups)", err.Error())
}

// The README's backup example is valid.
func TestBackupEndpointReadmeExample(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(readmeExample(t, "### Backup endpoints")["modbus/substation"]).Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.Len(t, cfg.Connections[0].Endpoints, 2)
}
