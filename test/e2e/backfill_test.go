//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// The built collector backfills a meter's load profile into VictoriaMetrics: 20 records older than
// its first start come over several polls (8 per poll); then it is stopped (SIGTERM) for over three
// 1-minute record intervals while the meter goes on recording, and once started again it reads the
// missed records after its checkpoint in file_storage. Through VictoriaMetrics' export API (raw
// samples, duplicates included) every interval is there exactly once, none before the first record.
func TestLoadProfileBackfill(t *testing.T) {
	vm := startVictoriaMetrics(t)

	a, err := dlt645.ParseAddress("000000000001")
	require.NoError(t, err)
	m := dlt645sim.NewMeter(a, dlt645.V2007)
	m.SetClock(0, time.UTC)
	for di, v := range map[dlt645.DI]float64{0x00010000: 12345.67, 0x00020000: 12.5, 0x00030000: 3.25, 0x00040000: 1.5} {
		require.NoError(t, m.Set(di, v))
	}
	now := time.Now().UTC()
	first := now.Truncate(time.Minute).Add(-19 * time.Minute)
	for k := range 20 {
		require.NoError(t, m.AddProfileRecord(first.Add(time.Duration(k)*time.Minute), [6][]float64{3: {12000 + float64(k), 12.5, 3.25, 1.5}}))
	}
	m.SetProfileInterval(time.Minute, 0, now) // from the next minute on, the meter records by itself
	srv := dlt645sim.NewServer(dlt645sim.Options{}, m)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	col := startCollectorTestdata(t, nil, vars{"TCPAddr": l.Addr().String(), "Storage": t.TempDir(), "RemoteWrite": vm.RemoteWriteURL()}, "backfill/config.yaml")
	const selector = `electrical_energy_active_watt_hours_total{device_id="lp-1",dlt645_record="load_profile",direction="import",phase="total",tariff="total"}`

	// check tells whether VictoriaMetrics holds each minute from first to last exactly once, and
	// nothing else; it describes what differs.
	check := func(last time.Time) (bool, string) {
		got, err := vm.rawSamples(selector)
		if err != nil {
			return false, err.Error()
		}
		seen := map[int64]int{}
		for _, samples := range got {
			for ms, vals := range samples {
				seen[ms] += len(vals)
			}
		}
		var missing, twice, extra []string
		for ts := first; !ts.After(last); ts = ts.Add(time.Minute) {
			switch n := seen[ts.UnixMilli()]; {
			case n == 0:
				missing = append(missing, ts.Format("15:04"))
			case n > 1:
				twice = append(twice, fmt.Sprintf("%s×%d", ts.Format("15:04"), n))
			}
			delete(seen, ts.UnixMilli())
		}
		for ms := range seen {
			if time.UnixMilli(ms).Before(first) {
				extra = append(extra, time.UnixMilli(ms).UTC().Format("15:04"))
			}
		}
		sort.Strings(extra)
		ok := len(missing) == 0 && len(twice) == 0 && len(extra) == 0
		return ok, fmt.Sprintf("missing %v, duplicated %v, before the first record %v", missing, twice, extra)
	}

	// The history and the first live record, over several polls.
	firstLive := now.Truncate(time.Minute).Add(time.Minute)
	var why string
	if !assertEventuallyEvery(2*time.Minute, time.Second, func() bool {
		var ok bool
		ok, why = check(firstLive)
		return ok
	}) {
		t.Fatalf("before the stop: %s\n%s", why, col.output())
	}

	// Down for more than three record intervals; the meter records on.
	col.Stop(t)
	stoppedAt := time.Now()
	down := 3*time.Minute + 10*time.Second
	<-time.After(time.Until(stoppedAt.Add(down))) // the outage is real time: the meter records by its clock
	lastMissed := time.Now().UTC().Truncate(time.Minute)
	require.GreaterOrEqual(t, lastMissed.Sub(firstLive), 3*time.Minute)
	col.start(t)

	if !assertEventuallyEvery(90*time.Second, time.Second, func() bool {
		var ok bool
		ok, why = check(lastMissed)
		return ok
	}) {
		t.Fatalf("after the restart: %s\n%s", why, col.output())
	}
	t.Logf("load profile %s to %s: %d intervals, each once in VictoriaMetrics (collector down %v)", first.Format("15:04"), lastMissed.Format("15:04"), int(lastMissed.Sub(first)/time.Minute)+1, down)
}
