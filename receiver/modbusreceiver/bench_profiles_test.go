package modbusreceiver

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
	"github.com/otelcol-iiot/otelcol-iiot/receiver/modbusreceiver/internal/metadata"
)

// BenchmarkProfilePoll polls each shipped profile over loopback, in the same run: as the planner reads
// it, and with one request per field (what a poller without a planner does, here given as one explicit
// block per field). It reports requests/poll and the time of a whole poll.
func BenchmarkProfilePoll(b *testing.B) {
	files, err := filepath.Glob(profilesDir + "*.yaml")
	require.NoError(b, err)
	bank := modbussim.NewBank(1)
	addr := startTCPServer(b, bank)

	var names []string
	profileFile := map[string]string{}
	perField := map[string]string{}
	for _, f := range files {
		profiles, err := loadProfileFile(f)
		require.NoError(b, err)
		for name, p := range profiles {
			specs, errs := buildFields(p.Fields, p.ByteOrder, 0, newDefaultRequestSpec(), "")
			require.Empty(b, errs)
			var sb strings.Builder
			for _, s := range specs {
				fmt.Fprintf(&sb, "{table: %s, address: %d, count: %d}, ", s.table, s.address, s.count)
			}
			names = append(names, name)
			abs, err := filepath.Abs(f)
			require.NoError(b, err)
			profileFile[name] = abs
			perField[name] = sb.String()
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, mode := range []struct{ name, requests string }{
			{"planner", ""},
			{"one_request_per_field", "requests: {blocks: [" + perField[name] + "]}"},
		} {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				cfg := loadConfig(b, fmt.Sprintf(`
poll: {interval: 10s, timeout: 1s}
profile_files: [%q]
connections:
  - endpoint: tcp://%s
    devices:
      - id: d
        unit_id: 1
        profile: %s
        %s
`, profileFile[name], addr, name, mode.requests))
				conns, err := cfg.resolve()
				require.NoError(b, err)
				r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
				require.NoError(b, err)
				r.build(conns)
				points := 0
				runner := r.rebuildRunners(func(_ context.Context, md pmetric.Metrics, _ ptrace.Traces) { points = md.DataPointCount() })[0]
				defer func() {
					for _, c := range r.conns {
						c.close()
					}
				}()
				ctx := context.Background()
				runner.RunOnce(ctx) // connect, first plan
				before := bank.Requests(1)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					runner.RunOnce(ctx)
				}
				b.ReportMetric(float64(bank.Requests(1)-before)/float64(b.N), "requests/poll")
				b.ReportMetric(float64(points), "points/poll")
			})
		}
	}
}
