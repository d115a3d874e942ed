package modbusreceiver

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/faultproxy"
)

// BenchmarkSoakFaults runs three devices (100, 120 and 150 ms) on one connection through the fault
// proxy: for soakFaultPolls polls a quarter of the replies get a random fault (seeded: split with the
// rest after the timeout, truncated, duplicated, swapped, garbled or reset), then the faults stop and
// the next soakCleanPolls polls are counted. recovered is the fraction of those that succeeded with
// every field (1: the connection is clean again at once). Each iteration takes a few seconds: run with
// -benchtime=3x.
func BenchmarkSoakFaults(b *testing.B) {
	const soakFaultPolls, soakCleanPolls = 90, 90
	for _, tc := range []struct {
		scheme    string
		headerLen int
	}{{"tcp", 7}, {"rtuovertcp", 3}} {
		b.Run(tc.scheme, func(b *testing.B) {
			var up, total, faults int
			for i := 0; i < b.N; i++ {
				e := startModbusFaultEnv(b, tc.scheme, 100*time.Millisecond)
				rng := rand.New(rand.NewPCG(uint64(i+1), 42))
				h := tc.headerLen
				kinds := []faultproxy.Fault{
					faultproxy.Split(h, 2*e.timeout), faultproxy.Split(2, 2*e.timeout), faultproxy.Truncate(h + 1),
					faultproxy.Duplicate(), faultproxy.Reorder(), faultproxy.Garbage(0, []byte{0x00, 0x41, 0x21, 0x36}),
					faultproxy.Garbage(h, []byte{0x36, 0x21}), faultproxy.Reset(),
				}
				start := time.Now()
				e.proxy.SetPolicy(func() faultproxy.Fault {
					if rng.Float64() < 0.25 {
						return kinds[rng.IntN(len(kinds))]
					}
					return faultproxy.Fault{}
				})
				count := func(from time.Time) (n, ok int) {
					for _, p := range e.polls() {
						if p.start.After(from) {
							n++
							if p.up && p.stale == 0 {
								ok++
							}
						}
					}
					return n, ok
				}
				require.Eventually(b, func() bool { n, _ := count(start); return n >= soakFaultPolls }, time.Minute, 5*time.Millisecond)
				e.proxy.SetPolicy(nil)
				ended := time.Now()
				if st := e.proxy.Stats(); st.LastEnd.After(ended) {
					ended = st.LastEnd // a split's rest still on its way
				}
				faults += e.proxy.Stats().Applied
				require.Eventually(b, func() bool { n, _ := count(ended); return n >= soakCleanPolls }, time.Minute, 5*time.Millisecond)
				n, ok := count(ended)
				up += ok
				total += n
			}
			b.ReportMetric(float64(up)/float64(total), "recovered")
			b.ReportMetric(float64(faults)/float64(b.N), "faults/run")
		})
	}
}
