//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	dlt645sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// vmSeries is one series of VictoriaMetrics' export API: its labels and raw samples.
type vmSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export returns every series matching selector with its raw samples (duplicates included).
func (v *victoriaMetrics) export(selector string) ([]vmSeries, error) {
	resp, err := http.Get(v.URL() + "/api/v1/export?match[]=" + url.QueryEscape(selector))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("export %s: %s", selector, resp.Status)
	}
	var out []vmSeries
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var s vmSeries
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// recordWant is a record series and its samples, exactly: value at the record's own time.
type recordWant struct {
	name    string
	labels  map[string]string
	samples map[time.Time]float64 // nil: only the latest value matters (readings stamped by the poll)
	latest  float64
}

// key names a series by its name and the labels a want gives.
func (w recordWant) String() string {
	var kv []string
	for k, v := range w.labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return w.name + "{" + strings.Join(kv, ",") + "}"
}

// check compares one want with the exported series; "" when it holds.
func (w recordWant) check(all []vmSeries) string {
	var found []vmSeries
	for _, s := range all {
		if s.Metric["__name__"] != w.name {
			continue
		}
		ok := true
		for k, v := range w.labels {
			ok = ok && s.Metric[k] == v
		}
		if ok {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return fmt.Sprintf("%s: %d series", w, len(found))
	}
	s := found[0]
	if w.samples == nil {
		if len(s.Values) == 0 || s.Values[len(s.Values)-1] != w.latest {
			return fmt.Sprintf("%s: latest of %v, want %v", w, s.Values, w.latest)
		}
		return ""
	}
	got := map[time.Time][]float64{}
	for i, ms := range s.Timestamps {
		got[time.UnixMilli(ms).UTC()] = append(got[time.UnixMilli(ms).UTC()], s.Values[i])
	}
	if len(got) != len(w.samples) {
		return fmt.Sprintf("%s: samples %v, want %v", w, got, w.samples)
	}
	for ts, v := range w.samples {
		// Once: a record is sent again only when the meter has a new one, so one sample per time.
		if vs := got[ts]; len(vs) != 1 || vs[0] != v {
			return fmt.Sprintf("%s: at %s %v, want [%v] once (all: %v)", w, ts.Format(time.RFC3339), vs, v, got)
		}
	}
	return ""
}

// The built collector polls a simulated meter for the records of issue 15 into VictoriaMetrics, and
// each arrives with its exact value at the record's own time, once over many polls: the maximum
// demand of the total and each tariff at when it occurred (a period without one sends nothing), the
// energies of the last two settlement days at their settlement times, a daily freeze's energies at
// the freeze time; harmonics by phase and order, event counts, the last power-down's start (Unix
// seconds) and duration, and the over-voltage counts and minutes per phase with the poll's time.
func TestDLT645RecordsVictoriaMetrics(t *testing.T) {
	now := time.Now().UTC()
	settled1 := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if now.Sub(settled1) < 15*time.Minute {
		t.Skip("within the first minutes of a month the meter's settlement is too near to tell which one is last")
	}
	settled2 := settled1.AddDate(0, -1, 0)
	demandAt := now.Add(-50 * time.Hour).Truncate(time.Minute)
	tariff1At := now.Add(-75 * time.Hour).Truncate(time.Minute)
	frozeAt := now.Add(-26 * time.Hour).Truncate(24 * time.Hour)
	powerDown := now.Add(-30 * time.Hour).Truncate(time.Second)

	vm := startVictoriaMetrics(t)
	a, err := dlt645.ParseAddress("000000000001")
	require.NoError(t, err)
	m := dlt645sim.NewMeter(a, dlt645.V2007)
	m.SetClock(0, time.UTC)
	for di, v := range map[dlt645.DI]float64{
		0x00010000: 1000, 0x00010100: 400, 0x00010200: 600,
		0x00010001: 900, 0x00010002: 800,
		0x020A0101: 99.5, 0x020A0102: 3.25, 0x020A0103: 0.07, 0x020B0102: 12.5,
		0x03110000: 7,
	} {
		require.NoError(t, m.Set(di, v))
	}
	require.NoError(t, m.SetRecord(0x01010000, []float64{12.3456}, []time.Time{demandAt}))
	require.NoError(t, m.SetRecord(0x01010100, []float64{10}, []time.Time{tariff1At}))
	require.NoError(t, m.SetRecord(0x01010200, []float64{12.3456}, []time.Time{demandAt}))
	require.NoError(t, m.SetRecord(0x01020000, []float64{0}, nil)) // no reverse maximum this period
	require.NoError(t, m.SetRecord(0x03110001, nil, []time.Time{powerDown, powerDown.Add(90 * time.Second)}))
	// over-voltage: count and minutes of A, B, C (XXXXXX each, low byte first)
	m.SetRaw(0x03030000, []byte{0x03, 0, 0, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0x05, 0, 0})
	m.SetSettlementDays(dlt645.SettlementDay{Day: 1})
	require.NoError(t, m.Freeze(0x06, frozeAt)) // the daily freeze holds the energies as they are now
	srv := dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, m)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	col := startCollectorTestdata(t, nil, vars{"TCPAddr": l.Addr().String(), "RemoteWrite": vm.RemoteWriteURL()}, "dlt645_records/config.yaml")

	at := func(ts time.Time, v float64) map[time.Time]float64 { return map[time.Time]float64{ts: v} }
	fwd := func(tariff string) map[string]string {
		return map[string]string{"direction": "import", "tariff": tariff}
	}
	wants := []recordWant{
		{name: "electrical_demand_max_active_watts", labels: fwd("total"), samples: at(demandAt, 12345.6)},
		{name: "electrical_demand_max_active_watts", labels: fwd("1"), samples: at(tariff1At, 10000)},
		{name: "electrical_demand_max_active_watts", labels: fwd("2"), samples: at(demandAt, 12345.6)},
		{name: "electrical_energy_active_settled_watt_hours", labels: fwd("total"), samples: map[time.Time]float64{settled1: 900000, settled2: 800000}},
		{name: "electrical_energy_active_frozen_watt_hours", labels: map[string]string{"direction": "import", "tariff": "total", "freeze": "daily"}, samples: at(frozeAt, 1000000)},
		{name: "electrical_energy_active_frozen_watt_hours", labels: map[string]string{"direction": "import", "tariff": "1", "freeze": "daily"}, samples: at(frozeAt, 400000)},
		{name: "electrical_energy_active_frozen_watt_hours", labels: map[string]string{"direction": "import", "tariff": "2", "freeze": "daily"}, samples: at(frozeAt, 600000)},
		{name: "electrical_voltage_harmonic_percent", labels: map[string]string{"phase": "A", "order": "1"}, latest: 99.5},
		{name: "electrical_voltage_harmonic_percent", labels: map[string]string{"phase": "A", "order": "2"}, latest: 3.25},
		{name: "electrical_voltage_harmonic_percent", labels: map[string]string{"phase": "A", "order": "3"}, latest: 0.07},
		{name: "electrical_current_harmonic_percent", labels: map[string]string{"phase": "A", "order": "2"}, latest: 12.5},
		{name: "dlt645_event_count_total", labels: map[string]string{"event": "power_down"}, latest: 7},
		{name: "dlt645_event_last_time_seconds", labels: map[string]string{"event": "power_down"}, latest: float64(powerDown.Unix())},
		{name: "dlt645_event_last_duration_seconds", labels: map[string]string{"event": "power_down"}, latest: 90},
		{name: "dlt645_event_count_total", labels: map[string]string{"event": "over_voltage", "phase": "A"}, latest: 3},
		{name: "dlt645_event_duration_minutes_total", labels: map[string]string{"event": "over_voltage", "phase": "A"}, latest: 120},
		{name: "dlt645_event_count_total", labels: map[string]string{"event": "over_voltage", "phase": "C"}, latest: 1},
		{name: "dlt645_event_duration_minutes_total", labels: map[string]string{"event": "over_voltage", "phase": "C"}, latest: 5},
		{name: "electrical_energy_active_watt_hours_total", labels: fwd("total"), latest: 1000000},
	}
	var why []string
	check := func() bool {
		all, err := vm.export(`{device_id="rec-1"}`)
		if err != nil {
			why = []string{err.Error()}
			return false
		}
		why = nil
		for _, w := range wants {
			if msg := w.check(all); msg != "" {
				why = append(why, msg)
			}
		}
		for _, s := range all {
			if s.Metric["__name__"] == "electrical_demand_max_active_watts" && s.Metric["direction"] == "export" {
				why = append(why, "a period without a maximum sent a reverse demand")
			}
		}
		return len(why) == 0
	}
	if !assertEventuallyEvery(60*time.Second, time.Second, check) {
		t.Fatalf("records in VictoriaMetrics:\n%s\nseries: %s\n%s", strings.Join(why, "\n"), seriesNames(vm), col.output())
	}
	// Several more polls: still every record once.
	polls := srv.Stats().Requests
	require.Eventually(t, func() bool { return srv.Stats().Requests > polls+3*11 }, 30*time.Second, 100*time.Millisecond)
	time.Sleep(2 * time.Second) //nolint:forbidigo // the remote-write batch of the last polls reaches VictoriaMetrics
	require.True(t, check(), "after more polls: %s", strings.Join(why, "\n"))
}

// seriesNames lists the metric names VictoriaMetrics holds, for a failure message.
func seriesNames(vm *victoriaMetrics) string {
	all, err := vm.export(`{__name__=~"(dlt645|electrical)_.*"}`)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, s := range all {
		if !slices.Contains(names, s.Metric["__name__"]) {
			names = append(names, s.Metric["__name__"])
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// The built collector finds three meters on one simulated bus (no meter listed, `discover:` with the
// three_phase profile): their answers collide on the bus, the search narrows their addresses, and each
// meter's readings reach Prometheus under its derived device id and address; the search logs the
// device list once and counts three meters.
func TestDLT645Discovery(t *testing.T) {
	prom := startPrometheus(t)
	var meters []*dlt645sim.Meter
	for i, addr := range []string{"000000000101", "000000000201", "000000000350"} {
		m := dltMeter(t, addr)
		require.NoError(t, m.Set(0x02010100, 221.1+1.1*float64(i)))
		meters = append(meters, m)
	}
	srv := dlt645sim.NewServer(dlt645sim.Options{Preamble: 4}, meters...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	data := vars{"TCPAddr": l.Addr().String(), "RemoteWrite": prom.RemoteWriteURL(), "TraceSink": "127.0.0.1:1"}
	col := startCollectorTestdata(t, nil, data, "common.yaml", "dlt645_discovery/config.yaml")
	prom.expectValues(t, "dlt645_discovery/expected.yaml", data)
	s := prom.Query(t, `electrical_voltage_volts{device_id="meter-000000000201",phase="A"}`)
	require.Len(t, s, 1)
	require.Equal(t, "000000000201", s[0].Labels["dlt645_meter_address"])
	require.Equal(t, "tcp://"+l.Addr().String()+"/000000000201", s[0].Labels["device_address"])
	out := col.output()
	require.Equal(t, 1, strings.Count(out, "Meters found on the bus"), out)
	for _, want := range []string{
		`{id: meter-000000000101, address: \"000000000101\", profile: three_phase}`,
		`{id: meter-000000000201, address: \"000000000201\", profile: three_phase}`,
		`{id: meter-000000000350, address: \"000000000350\", profile: three_phase}`,
	} {
		require.Contains(t, out, want)
	}
}
