package dlt645receiver

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// serveMeterPTY serves m on one end of a socat pty pair in dir (2400 8E1) until the test ends, and
// returns the other end.
func serveMeterPTY(t *testing.T, dir string, m *sim.Meter) string {
	t.Helper()
	pair, err := sim.NewPTYPair(context.Background(), dir)
	require.NoError(t, err)
	srv := sim.NewServer(sim.Options{Preamble: 4}, m)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeSerial(context.Background(), dlt645.DefaultSerialConfig(pair.A))
	}()
	t.Cleanup(func() { srv.Close(); <-done; _ = pair.Close() })
	return pair.B
}

// A serial bus with a second USB adapter, and a DTU bus with a second DTU: the first is down, after
// failover_after failed opens the backup serves; the first comes back and serves again after
// failback_after (manual clock), not before. Each poll's span says which endpoint served it.
func TestBackupEndpointSerialAndDTU(t *testing.T) {
	cases := []struct {
		name string
		// setup returns the endpoints, the receiver's extra keys, what to do once it runs, and how to
		// bring the first endpoint up.
		setup func(t *testing.T) (first, second, top string, started, up func())
	}{
		{name: "serial", setup: func(t *testing.T) (string, string, string, func(), func()) {
			if runtime.GOOS != "linux" {
				t.Skip("pty pairs of socat: Linux")
			}
			dir := t.TempDir() // the first adapter is unplugged: no device file
			second := serveMeterPTY(t, t.TempDir(), voltageMeter(t, "000000000001", 231.5))
			return "serial://" + filepath.Join(dir, "ttyB"), "serial://" + second, "", nil, func() {
				serveMeterPTY(t, dir, voltageMeter(t, "000000000001", 220.5))
			}
		}},
		{name: "dtu", setup: func(t *testing.T) (string, string, string, func(), func()) {
			listen := freePort(t)
			dial := func(id string, v float64) {
				_, dev := startSim(t, sim.Options{Preamble: 4}, voltageMeter(t, "000000000001", v))
				dtutest.Dial(t, listen, dtutest.Options{Registration: []byte("IMEI:" + id), Device: dev})
			}
			return "dtu://862951034567890", "dtu://862951034567891",
				`dtu: {endpoint: "` + listen + `", registration: {regex: 'IMEI:(\d{15})'}}`,
				func() { dial("862951034567891", 231.5) }, func() { dial("862951034567890", 220.5) }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first, second, top, started, up := tc.setup(t)
			cfg := loadYAML(t, `
poll: {interval: 1s, timeout: 500ms, retries: 0, jitter: 0}
breaker: {failure_threshold: 0}
traces: {success_sample_ratio: 1}
`+top+`
buses:
  - endpoints: [`+first+`, `+second+`]
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
			if started != nil {
				started()
			}
			if r.dtus != nil {
				// The listener reads the backup DTU's registration on its own goroutine: until it has, a
				// poll of the backup finds it away, and the polls the test expects would differ.
				id := strings.TrimPrefix(second, "dtu://")
				require.Eventually(t, func() bool { return !r.dtus.Registered(id).IsZero() }, 10*time.Second, time.Millisecond)
			}

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
			assert.Equal(t, []any{first, first, second}, servedBy())
			up()
			require.False(t, step(func() bool { return value() == 220.5 }, 50*time.Second), "no failback before failback_after")
			require.True(t, step(func() bool { return value() == 220.5 }, 20*time.Second), "failback after failback_after")
			polls := servedBy()
			assert.Equal(t, first, polls[len(polls)-1])
			assert.Equal(t, second, polls[len(polls)-2])
		})
	}
}

// A backup's port or DTU id belongs to its bus as the first's does: another bus naming it is a
// validate error naming both keys.
func TestBackupEndpointPortsOwned(t *testing.T) {
	m := func(id string) []MeterConfig {
		return []MeterConfig{{ID: id, Address: "1", MeterKeys: MeterKeys{Identifiers: []IdentifierConfig{{DI: "02010100"}}}}}
	}
	cfg := createDefaultConfig().(*Config)
	cfg.DTU.Endpoint = "127.0.0.1:9000"
	cfg.Buses = []BusConfig{
		{Endpoints: []string{"serial:///dev/ttyUSB0", "serial:///dev/ttyUSB1"}, Meters: m("a")},
		{Endpoint: "serial:///dev/ttyUSB1", Meters: m("b")},
		{Endpoints: []string{"dtu://A1", "dtu://B2"}, Meters: m("c")},
		{Endpoint: "dtu://B2", Meters: m("d")},
		{Endpoints: []string{"serial:///dev/ttyUSB7", "tcp://10.0.0.1:4001"}, Meters: m("e")},
	}
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "buses[1].endpoint: /dev/ttyUSB1 is the port of buses[0].endpoints[1] too")
	assert.Contains(t, err.Error(), `buses[3].endpoint: DTU "B2" is already the endpoint of buses[2].endpoints[1]`)
	assert.Contains(t, err.Error(), "buses[4].endpoints[1]: tcp:// differs from endpoints[0]'s serial:// (one connection, one protocol)")
}
