package dlt645receiver

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/faultproxy"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// meterPoll is one poll of one meter as the metrics sink saw it.
type meterPoll struct {
	device     string
	up         bool
	start, end time.Time
	values     map[string]float64 // reading (name and attributes) → value
	stale      int
}

func meterPolls(mds []pmetric.Metrics) []meterPoll {
	var out []meterPoll
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			dev, _ := rm.Resource().Attributes().Get("device.id")
			r := meterPoll{device: dev.Str(), values: map[string]float64{}}
			var dur float64
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					var dps pmetric.NumberDataPointSlice
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						continue
					}
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						v := dp.DoubleValue()
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							v = float64(dp.IntValue())
						}
						var attrs []string
						dp.Attributes().Range(func(k string, a pcommon.Value) bool {
							attrs = append(attrs, k+"="+a.AsString())
							return true
						})
						sort.Strings(attrs)
						switch {
						case m.Name() == device.MetricUp:
							r.up, r.end = v == 1, dp.Timestamp().AsTime()
						case m.Name() == device.MetricPollDuration:
							dur = v
						case strings.HasPrefix(m.Name(), "iiot.device."):
						case dp.Flags().NoRecordedValue():
							r.stale++
						default:
							r.values[m.Name()+"{"+strings.Join(attrs, ",")+"}"] = v
						}
					}
				}
			}
			r.start = r.end.Add(-time.Duration(dur * float64(time.Second)))
			out = append(out, r)
		}
	}
	return out
}

// Three meters on one DL/T 645 line reached over TCP through a fault proxy, at 150, 180 and 225 ms:
// for every fault, each meter loses at most the poll in flight, is up and complete by its first poll
// after the fault ended, and never records a value out of step.
func TestFaultsDLT645OverTCP(t *testing.T) {
	const timeout = 150 * time.Millisecond
	cases := []struct {
		name  string
		fault faultproxy.Fault
	}{
		{"split after header", faultproxy.Split(4+10, 2*timeout)},
		{"split inside header", faultproxy.Split(6, 2*timeout)},
		{"truncate", faultproxy.Truncate(4 + 11)},
		{"duplicate", faultproxy.Duplicate()},
		{"reorder", faultproxy.Reorder()},
		{"garbage before frame", faultproxy.Garbage(0, []byte{0x68, 0x01, 0x68, 0x16, 0x33})},
		{"garbage inside frame", faultproxy.Garbage(4+10, []byte{0x68, 0x16})},
		{"reset", faultproxy.Reset()},
		{"stall", faultproxy.Fault{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var meters []*sim.Meter
			var cfg strings.Builder
			interval := map[string]time.Duration{}
			for i := 1; i <= 3; i++ {
				meters = append(meters, meter(t, fmt.Sprintf("00000000000%d", i), dlt645.V2007, map[dlt645.DI]float64{
					0x00010000: 1000*float64(i) + 0.25, 0x02010100: 220 + float64(i)/10, 0x02020100: float64(i) + 0.5,
				}))
				dev := fmt.Sprintf("m%d", i)
				interval[dev] = timeout * time.Duration([]int{10, 12, 15}[i-1]) / 10
				fmt.Fprintf(&cfg, "      - {id: %s, address: \"%d\", poll: {interval: %s}, identifiers: [\"00010000\", \"02010100\", \"02020100\"]}\n", dev, i, interval[dev])
			}
			_, addr := startSim(t, sim.Options{Preamble: 4}, meters...)
			p, err := faultproxy.New(addr, faultproxy.WithFramer(faultproxy.DLT645Frames))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, p.Close()) })
			s := startReceiver(t, loadYAML(t, fmt.Sprintf(`
poll: {interval: %s, timeout: %s, retries: 1, jitter: 0}
breaker: {failure_threshold: 3, initial_backoff: 300ms, max_backoff: 300ms}
buses:
  - endpoint: tcp://%s
    meters:
%s`, timeout, timeout, p.Addr(), cfg.String())))

			healthy := func(from time.Time, n int) {
				require.Eventually(t, func() bool {
					good := map[string]int{}
					for _, mp := range meterPolls(s.metrics.AllMetrics()) {
						if mp.up && mp.stale == 0 && mp.start.After(from) {
							good[mp.device]++
						}
					}
					return good["m1"] >= n && good["m2"] >= n && good["m3"] >= n
				}, 15*time.Second, 5*time.Millisecond)
			}
			healthy(time.Time{}, 2)
			want := map[string]map[string]float64{}
			for _, mp := range meterPolls(s.metrics.AllMetrics()) {
				if mp.up && mp.stale == 0 && want[mp.device] == nil {
					want[mp.device] = mp.values
				}
			}

			hit := time.Now()
			var ended time.Time
			if tc.fault.IsZero() {
				replies := p.Stats().Replies
				p.Stall()
				require.Eventually(t, func() bool { return p.Stats().Replies >= replies+2 }, 10*time.Second, time.Millisecond)
				p.Resume()
				ended = time.Now()
			} else {
				p.Inject(tc.fault)
				require.Eventually(t, func() bool { return p.Stats().Applied == 1 }, 10*time.Second, time.Millisecond)
				ended = p.Stats().LastEnd
			}
			healthy(ended, 2)

			first := map[string]bool{}
			down := map[string]int{}
			last := map[string]time.Time{}
			for _, mp := range meterPolls(s.metrics.AllMetrics()) {
				for k, v := range mp.values {
					assert.Equal(t, want[mp.device][k], v, "%s %s at %s: never a value out of step", mp.device, k, mp.end.Format("15:04:05.000"))
				}
				if !mp.up && !mp.end.Before(hit) {
					down[mp.device]++
				}
				if mp.start.After(ended) && !first[mp.device] {
					first[mp.device] = true
					assert.True(t, mp.up, "%s: first poll after the fault ended is up", mp.device)
					assert.Zero(t, mp.stale, "%s: first poll after the fault ended reads every identifier", mp.device)
				}
				if !last[mp.device].IsZero() {
					// slack for a loaded machine (the tests share two cores)
					limit := 2*interval[mp.device] + 2*timeout + 500*time.Millisecond
					assert.Less(t, mp.end.Sub(last[mp.device]), limit, "%s keeps its period (poll ending %s)", mp.device, mp.end.Format("15:04:05.000"))
				}
				last[mp.device] = mp.end
			}
			for dev, n := range down {
				assert.LessOrEqual(t, n, 1, "%s loses at most the poll in flight", dev)
			}
		})
	}
}
