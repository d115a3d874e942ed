package modbusreceiver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/faultproxy"
	"github.com/otelcol-iiot/otelcol-iiot/internal/modbus/modbustest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// pollRecord is one poll of one device as the metrics sink saw it.
type pollRecord struct {
	device     string
	up         bool
	skipped    bool // the breaker let it not through (no duration)
	start, end time.Time
	values     map[string]float64 // readings with a value
	stale      int                // readings without
}

func pollRecords(mds []pmetric.Metrics) []pollRecord {
	var out []pollRecord
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			dev, _ := rm.Resource().Attributes().Get("device.id")
			r := pollRecord{device: dev.Str(), skipped: true, values: map[string]float64{}}
			var dur float64
			sms := rm.ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
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
						switch {
						case m.Name() == device.MetricUp:
							r.up, r.end = v == 1, dp.Timestamp().AsTime()
						case m.Name() == device.MetricPollDuration:
							dur, r.skipped = v, false
						case strings.HasPrefix(m.Name(), "iiot.device."):
						case dp.Flags().NoRecordedValue():
							r.stale++
						default:
							r.values[m.Name()] = v
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

// faultEnv is a fleet of devices whose connection runs through a fault proxy.
type faultEnv struct {
	proxy    *faultproxy.Proxy
	sink     sinks
	expected map[string]map[string]float64 // per device: reading → value
	interval map[string]time.Duration
	timeout  time.Duration
	retries  int
}

func (e *faultEnv) polls() []pollRecord { return pollRecords(e.sink.metrics.AllMetrics()) }

// healthy waits until every device has had n good polls since from.
func (e *faultEnv) healthy(t testing.TB, from time.Time, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		good := map[string]int{}
		for _, p := range e.polls() {
			if p.up && p.start.After(from) {
				good[p.device]++
			}
		}
		for dev := range e.expected {
			if good[dev] < n {
				return false
			}
		}
		return true
	}, 15*time.Second, 5*time.Millisecond, "every device answers %d polls", n)
}

// startModbusFaultEnv runs three units at base, base+20 % and base+50 % (timeout: base) on one connection
// through a fault proxy:
// each reads two blocks (addresses 0-3 and 40-41), so a reply parsed out of step would show in the values.
func startModbusFaultEnv(t testing.TB, scheme string, base time.Duration) *faultEnv {
	t.Helper()
	bank := modbussim.NewBank(1, 2, 3)
	e := &faultEnv{expected: map[string]map[string]float64{}, interval: map[string]time.Duration{}, timeout: base, retries: 1}
	var target string
	framer := faultproxy.MBAPFrames
	extra := ""
	switch scheme {
	case "tcp":
		target = startTCPServer(t, bank)
	case "rtuovertcp":
		srv, err := modbussim.ListenRTUOverTCP("127.0.0.1:0", bank)
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Close() })
		target, framer, extra = srv.Addr(), faultproxy.RTUFrames, "    baud_rate: 115200\n"
	case "asciiovertcp":
		srv, err := modbustest.ListenASCIIOverTCP("127.0.0.1:0", bank)
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Close() })
		target, framer, extra = srv.Addr(), modbustest.ASCIIFrames, "    baud_rate: 115200\n"
	}
	p, err := faultproxy.New(target, faultproxy.WithFramer(framer))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	e.proxy = p

	var devs strings.Builder
	for u := 1; u <= 3; u++ {
		dev := fmt.Sprintf("u%d", u)
		// Meter-like float32 values (voltage, frequency, energy): their bytes, read as an MBAP header by a
		// client out of step, make implausible lengths, as on a real meter.
		a, b, c := float32(230.5+float64(u)), float32(49.75), float32(1234.25*float64(u))
		bank.SetRegisters(uint8(u), modbussim.Holding, 0, append(f32regs(a), f32regs(b)...)...)
		bank.SetRegisters(uint8(u), modbussim.Holding, 40, f32regs(c)...)
		e.expected[dev] = map[string]float64{"a": float64(a), "b": float64(b), "c": float64(c)}
		e.interval[dev] = base * time.Duration([]int{10, 12, 15}[u-1]) / 10
		fmt.Fprintf(&devs, "      - {id: %s, unit_id: %d, poll: {interval: %s}, fields: [{name: a, address: 0, type: float32}, {name: b, address: 2, type: float32}, {name: c, address: 40, type: float32}]}\n",
			dev, u, e.interval[dev])
	}
	cfg := loadConfig(t, fmt.Sprintf(`
poll: {interval: %s, timeout: %s, retries: %d, jitter: 0}
breaker: {failure_threshold: 3, initial_backoff: 300ms, max_backoff: 300ms}
connections:
  - endpoint: %s://%s
%s    devices:
%s`, base, e.timeout, e.retries, scheme, p.Addr(), extra, devs.String()))
	e.sink = startReceiver(t, cfg)
	e.healthy(t, time.Time{}, 2)
	return e
}

// checkRecovery asserts what a fault may cost: every reading ever recorded is exact; each device loses
// at most the poll in flight when the fault hit (one poll down, none after); the first poll of each
// device that starts after the fault ended is up and complete; devices keep their period.
func (e *faultEnv) checkRecovery(t *testing.T, hit, ended time.Time) {
	t.Helper()
	e.healthy(t, ended, 2)
	polls := e.polls()
	first := map[string]bool{}
	down := map[string]int{}
	last := map[string]time.Time{}
	for _, p := range polls {
		for name, v := range p.values {
			assert.Equal(t, e.expected[p.device][name], v, "%s %s at %s: a reading is never out of step", p.device, name, p.end.Format("15:04:05.000"))
		}
		if !p.up && !p.end.Before(hit) {
			down[p.device]++
		}
		if p.start.After(ended) && !first[p.device] {
			first[p.device] = true
			assert.True(t, p.up, "%s: first poll after the fault ended is up", p.device)
			assert.Zero(t, p.stale, "%s: first poll after the fault ended reads every field", p.device)
		}
		if !last[p.device].IsZero() {
			// The poll hit by the fault may hold the connection for its timeouts and a resync; the rest
			// is slack for a loaded machine (the tests share two cores).
			limit := 2*e.interval[p.device] + time.Duration(e.retries+1)*e.timeout + 500*time.Millisecond
			assert.Less(t, p.end.Sub(last[p.device]), limit, "%s keeps its period (poll ending %s)", p.device, p.end.Format("15:04:05.000"))
		}
		last[p.device] = p.end
	}
	for dev, n := range down {
		assert.LessOrEqual(t, n, 1, "%s loses at most the poll in flight", dev)
	}
	if t.Failed() {
		e.logErrors(t, hit.Add(-time.Second))
	}
}

// logErrors logs the failed requests since from, to tell a fault from a slow machine.
func (e *faultEnv) logErrors(t testing.TB, from time.Time) {
	for _, td := range e.sink.traces.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			dev, _ := rs.Resource().Attributes().Get("device.id")
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					sp := ss.At(k)
					if sp.Status().Message() == "" || sp.StartTimestamp().AsTime().Before(from) {
						continue
					}
					t.Logf("%s %s-%s %s: %s", dev.Str(), sp.StartTimestamp().AsTime().Format("15:04:05.000"),
						sp.EndTimestamp().AsTime().Format("15:04:05.000"), sp.Name(), sp.Status().Message())
				}
			}
		}
	}
	t.Logf("proxy: %+v", e.proxy.Stats())
}

// faultCase injects one fault and returns when it ended.
type faultCase struct {
	name string
	run  func(t *testing.T, p *faultproxy.Proxy) time.Time
}

// inject applies one fault to the next reply and waits until it did.
func inject(f faultproxy.Fault) func(t *testing.T, p *faultproxy.Proxy) time.Time {
	return func(t *testing.T, p *faultproxy.Proxy) time.Time {
		applied := p.Stats().Applied
		p.Inject(f)
		require.Eventually(t, func() bool { return p.Stats().Applied > applied }, 10*time.Second, time.Millisecond)
		return p.Stats().LastEnd
	}
}

func faultCases(timeout time.Duration, headerLen, secondBlockLen int) []faultCase {
	second := func(b []byte) bool { return len(b) == secondBlockLen }
	return []faultCase{
		// The reported defect: header in time, body after the timeout.
		{"split after header", inject(faultproxy.Split(headerLen, 2*timeout))},
		// The same on the second read of a poll, after the device has answered the first one.
		{"split second block", inject(faultproxy.When(second, faultproxy.Split(headerLen, 2*timeout)))},
		{"split inside header", inject(faultproxy.Split(3, 2*timeout))},
		{"truncate", inject(faultproxy.Truncate(headerLen + 1))},
		{"duplicate", inject(faultproxy.Duplicate())},
		{"reorder", inject(faultproxy.Reorder())},
		{"garbage before frame", inject(faultproxy.Garbage(0, []byte{0x00, 0x41, 0x21, 0x36, 0xC4}))},
		{"garbage inside frame", inject(faultproxy.Garbage(headerLen, []byte{0x36, 0x21}))},
		{"reset", inject(faultproxy.Reset())},
		{"reset all", func(t *testing.T, p *faultproxy.Proxy) time.Time {
			p.ResetAll()
			return time.Now()
		}},
		{"stall", func(t *testing.T, p *faultproxy.Proxy) time.Time {
			replies := p.Stats().Replies
			p.Stall()
			// Two replies held back: at least one request has timed out meanwhile.
			require.Eventually(t, func() bool { return p.Stats().Replies >= replies+2 }, 10*time.Second, time.Millisecond)
			p.Resume()
			return time.Now()
		}},
	}
}

func testFaults(t *testing.T, scheme string, headerLen, secondBlockLen int) {
	const base = 150 * time.Millisecond
	for _, fc := range faultCases(base, headerLen, secondBlockLen) {
		t.Run(fc.name, func(t *testing.T) {
			e := startModbusFaultEnv(t, scheme, base)
			hit := time.Now()
			ended := fc.run(t, e.proxy)
			if ended.Before(hit) {
				ended = hit
			}
			e.checkRecovery(t, hit, ended)
		})
	}
}

// Modbus/TCP through every fault of the proxy: a cut, late, doubled, swapped, garbled or reset reply
// costs at most the poll in flight, never a reading out of step, never the connection for good.
func TestFaultsModbusTCP(t *testing.T) { testFaults(t, "tcp", 7, 7+2+4) }

// RTU over TCP (a serial gateway): the same faults on RTU frames (no transaction ids at all).
func TestFaultsRTUOverTCP(t *testing.T) { testFaults(t, "rtuovertcp", 3, 3+4+2) }

// ASCII over TCP (a serial server in front of ASCII devices): the same faults on ASCII frames; a
// header is ':', unit and function (5 characters) plus the byte count (2).
func TestFaultsASCIIOverTCP(t *testing.T) { testFaults(t, "asciiovertcp", 7, 1+2*(3+4+1)+2) }
