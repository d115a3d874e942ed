//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildTool builds ./cmd/<name> of this repository into a temporary directory.
func buildTool(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/%s: %s", name, b)
	return out
}

// startDLT645Sim runs the DL/T 645 simulator binary with its built-in demo meters (000000000001 …
// 000000000003, 000000001997) on a port the kernel picks, and returns the address it serves on.
func startDLT645Sim(t *testing.T) string {
	t.Helper()
	p := &process{name: "dlt645sim", path: buildTool(t, "dlt645sim"), args: []string{"-listen", "127.0.0.1:0"}, env: os.Environ(), dir: t.TempDir()}
	p.register(t)
	p.start(t)
	re := regexp.MustCompile(`serving TCP on (127\.0\.0\.1:\d+)`)
	var addr string
	require.Eventually(t, func() bool {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			addr = m[1]
			return true
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "dlt645sim did not start:\n%s", p.output())
	return addr
}

// startModbusSim runs the Modbus simulator binary (SDM630 at unit 1, DTSU666 at unit 3, no inverter)
// on a free port and waits until it accepts connections.
func startModbusSim(t *testing.T) int {
	t.Helper()
	return startToolOnFreePort(t, "modbussim", func(addr string) []string { return []string{"-tcp", addr, "-inverter-unit", "0"} })
}

// startToolOnFreePort runs one of our cmd/ programs listening on a free loopback port (args gives
// its flags for the address) and returns the port once it accepts connections. The port was free a
// moment ago; should another process take it meanwhile, it tries another one.
func startToolOnFreePort(t *testing.T, name string, args func(addr string) []string) int {
	t.Helper()
	bin := buildTool(t, name)
	var p *process
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p = &process{name: name, path: bin, args: args(addr), env: os.Environ(), dir: t.TempDir()}
		p.register(t)
		p.start(t)
		if assertEventually(30*time.Second, func() bool {
			if !p.running() {
				return true // exited: try another port
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}) && p.running() {
			return port
		}
		p.stop(t)
	}
	t.Fatalf("%s did not start:\n%s", name, p.output())
	return 0
}

// TestTDigestFromReceivers: the poll latency of real receivers (DL/T 645 and Modbus simulators as
// child processes) becomes, through the tdigest processor grouped by device_group, Summary quantile
// series in a real Prometheus that agree with the raw poll-duration samples Prometheus holds for the
// same group; the receivers' poll spans, sent by OTLP to the gateway distribution, become
// span-duration quantiles through its spanquantiles connector.
func TestTDigestFromReceivers(t *testing.T) {
	dltAddr := startDLT645Sim(t)
	modbusPort := startModbusSim(t)
	prom := startPrometheus(t)
	profiles := filepath.Join(repoRoot(t), "distributions", "otelcol-iiot", "profiles")

	const (
		window = 6 * time.Second
		slide  = 2 * time.Second
	)
	// the spanquantiles connector is a gateway component: the edge sends its poll spans there by OTLP
	data := vars{"DLT645Addr": dltAddr, "Profiles": profiles, "ModbusPort": modbusPort, "GatewayOTLPPort": freePort(t),
		"Window": window, "Slide": slide, "RemoteWrite": prom.RemoteWriteURL()}
	startGatewayTestdata(t, nil, data, "tdigest/receivers_gateway.yaml")
	startCollectorTestdata(t, nil, data, "tdigest/receivers.yaml")

	const wait = 3 * time.Minute // a loaded 2-core machine: first emission after a few slides
	quantiles := []string{"0.5", "0.9", "0.99", "0.999"}

	// every device polls successfully (the groups hold what they should)
	for _, dev := range []string{"dlt-1", "dlt-2", "dlt-3", "sdm630", "dtsu666"} {
		prom.eventuallyValue(t, fmt.Sprintf(`iiot_device_up{device_id=%q}`, dev), 1, wait)
	}

	for _, group := range []string{"meters", "billing"} {
		t.Run("poll_duration/"+group, func(t *testing.T) {
			checkGroupQuantiles(t, prom, group, quantiles, window, slide, wait)
		})
	}
	// device.id and everything but device_group were aggregated away: one series per group
	prom.eventuallyValue(t, `count(iiot_device_poll_duration_quantiles_seconds{quantile="0.99"})`, 2, wait)

	// span-duration quantiles of every poll span, per receiver, span name and device_group
	for _, tc := range []struct{ job, span string }{{"dlt645", "dlt645.poll"}, {"modbus", "modbus.poll"}} {
		for _, group := range []string{"meters", "billing"} {
			sel := fmt.Sprintf(`job=%q,span_name=%q,span_kind="SPAN_KIND_INTERNAL",device_group=%q`, tc.job, tc.span, group)
			var vals []float64
			require.True(t, assertEventually(wait, func() bool {
				vals = vals[:0]
				for _, q := range quantiles {
					// successful polls (status UNSET); failed ones would be a series of their own
					s, err := prom.QueryE(fmt.Sprintf(`traces_span_duration_quantiles_seconds{%s,status_code="STATUS_CODE_UNSET",quantile=%q}`, sel, q))
					if err != nil || len(s) != 1 {
						return false
					}
					vals = append(vals, s[0].Value)
				}
				return true
			}), "no span-duration quantiles for %s", sel)
			t.Logf("span durations {%s}: quantiles %v", sel, vals)
			for i, v := range vals {
				require.Greater(t, v, 0.0, "%s quantile %s", sel, quantiles[i])
				require.Less(t, v, 10.0, "%s quantile %s: a poll takes far less than 10 s", sel, quantiles[i])
				if i > 0 {
					require.LessOrEqual(t, vals[i-1], v, "%s: quantiles ascending", sel)
				}
			}
			s := prom.Query(t, fmt.Sprintf(`traces_span_duration_quantiles_seconds_count{%s,status_code="STATUS_CODE_UNSET"}`, sel))
			require.Len(t, s, 1)
			require.Greater(t, s[0].Value, 0.0)
		}
	}
}

// checkGroupQuantiles waits for an emission of the group's summary, then compares it with the raw
// poll-duration samples Prometheus holds for the group's devices over that emission's window.
func checkGroupQuantiles(t *testing.T, prom *prometheus, group string, quantiles []string, window, slide time.Duration, wait time.Duration) {
	sel := fmt.Sprintf(`device_group=%q`, group)
	var why string // what the last attempt waited for
	scalar := func(promql string) (float64, bool) {
		s, err := prom.QueryE(promql)
		if err != nil || len(s) != 1 {
			why = fmt.Sprintf("%s: %v (err %v)", promql, s, err)
			return 0, false
		}
		return s[0].Value, true
	}
	// exactly the sample of series at Unix time end (not an earlier one still in the lookback)
	sampleAt := func(series string, end float64) (float64, bool) {
		ts, ok := scalar(fmt.Sprintf(`timestamp(%s @ %.3f)`, series, end))
		if !ok {
			return 0, false
		}
		if ts != end {
			why = fmt.Sprintf("%s: latest sample at %.3f, not yet the one at %.3f", series, ts, end)
			return 0, false
		}
		return scalar(fmt.Sprintf(`%s @ %.3f`, series, end))
	}
	var (
		end            float64 // the end of the emitted window (the samples' timestamp), Unix seconds
		qs             []float64
		maxV, minV, n  float64
		count, sum     float64
		rawMax, rawMin float64
		rawN           float64
		allMax, allMin float64
	)
	ok := assertEventually(wait, func() bool {
		var ok bool
		if end == 0 {
			// the first emission seen may cover the collector's first seconds only: take the one a
			// window later (a full window), then wait until everything about it is in
			first, ok := scalar(fmt.Sprintf(`timestamp(iiot_device_poll_duration_quantiles_seconds{%s,quantile="0.99"})`, sel))
			if !ok {
				return false
			}
			end = first + window.Seconds()
		}
		// the raw samples of the window are complete once every device of the group has a later one
		if last, ok := scalar(fmt.Sprintf(`min(timestamp(iiot_device_poll_duration_seconds{%s}))`, sel)); !ok || last < end+2 {
			if ok {
				why = fmt.Sprintf("raw samples of every device up to %.3f, window end %.3f", last, end)
			}
			return false
		}
		qs = qs[:0]
		for _, q := range quantiles {
			v, ok := sampleAt(fmt.Sprintf(`iiot_device_poll_duration_quantiles_seconds{%s,quantile=%q}`, sel, q), end)
			if !ok {
				return false
			}
			qs = append(qs, v)
		}
		for _, x := range []struct {
			series string
			dst    *float64
		}{
			{`iiot_device_poll_duration_max_seconds`, &maxV},
			{`iiot_device_poll_duration_min_seconds`, &minV},
			{`iiot_device_poll_duration_count`, &n},
			{`iiot_device_poll_duration_quantiles_seconds_count`, &count},
			{`iiot_device_poll_duration_quantiles_seconds_sum`, &sum},
		} {
			if *x.dst, ok = sampleAt(x.series+"{"+sel+"}", end); !ok {
				return false
			}
		}
		// The raw samples over the window, with a margin before it: a value's timestamp (the end of
		// its poll) is a little earlier than its arrival at the processor, which decides its slide.
		// A wider range can only widen [rawMin, rawMax], so the checks below stay sound.
		for _, x := range []struct {
			query string
			dst   *float64
		}{
			{`max(max_over_time(%s[%s] @ %.3f))`, &rawMax},
			{`min(min_over_time(%s[%s] @ %.3f))`, &rawMin},
			{`sum(count_over_time(%s[%s] @ %.3f))`, &rawN},
		} {
			q := fmt.Sprintf(x.query, `iiot_device_poll_duration_seconds{`+sel+`}`, fmt.Sprintf("%ds", int(window.Seconds())+5), end)
			if *x.dst, ok = scalar(q); !ok {
				return false
			}
		}
		// every raw sample since the collector started, for the cumulative count and sum
		if allMax, ok = scalar(fmt.Sprintf(`max(max_over_time(iiot_device_poll_duration_seconds{%s}[1h] @ %.3f))`, sel, end)); !ok {
			return false
		}
		allMin, ok = scalar(fmt.Sprintf(`min(min_over_time(iiot_device_poll_duration_seconds{%s}[1h] @ %.3f))`, sel, end))
		return ok
	})
	require.True(t, ok, "no complete emission of the %s quantiles; last waited for %s", group, why)
	t.Logf("%s: window ending %s: quantiles %v, min %g, max %g, %g values; since start %g values, sum %g; raw: %g samples, min %g, max %g",
		group, time.Unix(0, int64(end*1e9)).UTC().Format(time.RFC3339), qs, minV, maxV, n, count, sum, rawN, rawMin, rawMax)

	require.Zero(t, int64(math.Round(end*1000))%slide.Milliseconds(), "the window ends at a slide boundary")
	// a full window: a poll per device and second (some may be late or missed on a loaded machine)
	require.GreaterOrEqual(t, n, 2.0)
	require.LessOrEqual(t, n, rawN, "every value of the window is a raw sample")
	require.Greater(t, minV, 0.0, "poll durations are positive")
	for i, v := range qs {
		require.Greater(t, v, 0.0, "quantile %s", quantiles[i])
		require.GreaterOrEqual(t, v, minV, "quantile %s >= min", quantiles[i])
		require.LessOrEqual(t, v, maxV, "quantile %s <= max", quantiles[i])
		if i > 0 {
			require.LessOrEqual(t, qs[i-1], v, "quantile %s >= quantile %s", quantiles[i], quantiles[i-1])
		}
	}
	// the window holds raw values Prometheus has as samples: its quantiles and extremes lie among them
	p50, p99 := qs[0], qs[2]
	require.LessOrEqual(t, p99, rawMax, "p99 <= the largest raw sample of the window")
	require.GreaterOrEqual(t, p50, rawMin, "p50 >= the smallest raw sample of the window")
	require.LessOrEqual(t, maxV, rawMax, "max <= the largest raw sample of the window")
	require.GreaterOrEqual(t, minV, rawMin, "min >= the smallest raw sample of the window")

	// few values: the window is exact, and with at most 50 values P99 is the largest (rank (k-0.5)/n)
	if n <= 50 {
		require.Equal(t, maxV, p99, "exact window of %g values: p99 is its max", n)
	}

	// count and sum are cumulative since the series started: their mean lies among all raw samples
	require.GreaterOrEqual(t, count, n)
	require.LessOrEqual(t, count, 10000.0)
	mean := sum / count
	require.True(t, mean >= allMin*(1-1e-9) && mean <= allMax*(1+1e-9), "mean %g within the raw samples [%g, %g]", mean, allMin, allMax)
}
