package dlt645receiver

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

var storageID = component.MustNewID("file_storage")

type storageHost struct {
	exts map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// startStorage starts a real file_storage extension on dir (one "collector start").
func startStorage(t *testing.T, dir string) extension.Extension {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext
}

// profileRig is one collector run: a receiver (not scheduled: the test runs its polls) on a storage.
type profileRig struct {
	r      *dlt645Receiver
	ext    extension.Extension
	mu     sync.Mutex
	mds    []pmetric.Metrics
	refuse func(md pmetric.Metrics) error // optional: the pipeline's answer
	logs   *observer.ObservedLogs
}

func startRig(t *testing.T, yml, dir string, clk clock.Clock) *profileRig {
	t.Helper()
	rig := &profileRig{ext: startStorage(t, dir)}
	core, logs := observer.New(zapcore.InfoLevel)
	rig.logs = logs
	set := receivertestSettings()
	set.ID = component.MustNewID("dlt645") // the same receiver across restarts: the same storage client
	set.Logger = zap.New(core)
	r, err := newReceiver(context.Background(), loadYAML(t, yml), set)
	require.NoError(t, err)
	r.SetClock(clk)
	next, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		rig.mu.Lock()
		refuse := rig.refuse
		rig.mu.Unlock()
		if refuse != nil {
			if err := refuse(md); err != nil {
				return err
			}
		}
		rig.mu.Lock()
		defer rig.mu.Unlock()
		c := pmetric.NewMetrics()
		md.CopyTo(c)
		rig.mds = append(rig.mds, c)
		return nil
	})
	require.NoError(t, err)
	r.SetMetrics(next)
	r.profileSink.next = next
	require.NoError(t, r.storageClients(context.Background(), storageHost{map[component.ID]component.Component{storageID: rig.ext}}))
	r.Build(func() { r.add(r.specs) })
	rig.r = r
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			rig.stop(t)
		}
	})
	return rig
}

func (rig *profileRig) stop(t *testing.T) {
	require.NoError(t, rig.r.Shutdown(context.Background()))
	require.NoError(t, rig.ext.Shutdown(context.Background()))
	rig.r.profileSink.next = nil
}

func (rig *profileRig) poll() { rig.r.Runners()[0].RunOnce(context.Background()) }

// profile returns the forward active energy points of the load profile (record time, value) and the
// number of live points of the same metric.
func (rig *profileRig) profile() (recs []stampedPoint, live int) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	for _, p := range devicetest.Points(rig.mds...) {
		if p.Metric != dlt645.MetricActiveEnergy || p.Attrs["direction"] != "import" || p.Attrs["tariff"] != "total" || p.Stale {
			continue
		}
		if p.Attrs[attrRecord] == recordLoadProfile {
			recs = append(recs, stampedPoint{ts: p.Time.AsTime().UTC(), value: p.Value})
		} else {
			live++
		}
	}
	return recs, live
}

var profileT0 = time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)

// profileMeter is a meter that has recorded class 4 (energies) every minute from first to last,
// the forward active energy being 1000 + the minutes since profileT0.
func profileMeter(t *testing.T, m *sim.Meter, first, last int) {
	t.Helper()
	for k := first; k <= last; k++ {
		require.NoError(t, m.AddProfileRecord(profileT0.Add(time.Duration(k)*time.Minute), [6][]float64{3: {float64(1000 + k), 0, 0, 0}}))
	}
}

func profileYAML(addr, extra string) string { return profileYAMLBound(addr, 10, extra) }

func profileYAMLBound(addr string, bound int, extra string) string {
	return `
time_zone: UTC
buses:
  - endpoint: tcp://` + addr + `
    meters:
      - id: m
        address: "1"
        identifiers: ["00010000"]
        load_profile:
          class: 4
          interval: 1m
          max_records_per_poll: ` + strconv.Itoa(bound) + `
          max_backfill: 1h
          storage: file_storage
` + extra
}

// want lists record times and values from minute first to last.
func wantRecords(first, last int) []stampedPoint {
	var out []stampedPoint
	for k := first; k <= last; k++ {
		out = append(out, stampedPoint{ts: profileT0.Add(time.Duration(k) * time.Minute), value: float64(1000+k) * 1000}) // kWh → Wh
	}
	return out
}

// A restart resumes after the checkpoint: 31 missed records come over four polls (at most 10 each,
// the live reading in every poll), each once, in order, with its record time.
// A load-profile energy is an integer data point in Wh, as its live reading is (XXXXXX.XX kWh is a
// whole number of Wh).
func TestLoadProfileEnergyIsInteger(t *testing.T) {
	clk := clock.NewManual(profileT0.Add(30 * time.Second))
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
	m.SetClock(0, time.UTC)
	profileMeter(t, m, -3, 0)
	_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
	rig := startRig(t, profileYAML(addr, ""), t.TempDir(), clk)
	defer rig.stop(t)
	rig.poll()
	rig.mu.Lock()
	defer rig.mu.Unlock()
	n := 0
	for _, p := range devicetest.Points(rig.mds...) {
		if p.Metric == dlt645.MetricActiveEnergy && !p.Stale {
			assert.True(t, p.Int, "%s %v at %v (record %q)", p.Metric, p.Attrs, p.Time.AsTime(), p.Attrs[attrRecord])
			n++
		}
	}
	assert.Greater(t, n, 4, "live and load-profile energies")
}

func TestLoadProfileRestart(t *testing.T) {
	clk := clock.NewManual(profileT0.Add(30 * time.Second))
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
	m.SetClock(0, time.UTC)
	profileMeter(t, m, -30, 0)
	_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
	dir := t.TempDir()
	di := dlt645.DI(0x06040001)

	a := startRig(t, profileYAML(addr, ""), dir, clk)
	a.poll()
	recs, live := a.profile()
	assert.Equal(t, wantRecords(-30, -21), recs, "first poll: the bound, from now - max_backfill (all 31 are younger)")
	assert.Equal(t, 1, live)
	a.poll()
	recs, live = a.profile()
	assert.Equal(t, wantRecords(-30, -11), recs)
	assert.Equal(t, 2, live, "live polling goes on during the catch-up")
	a.stop(t)
	reads := m.Reads(di)

	b := startRig(t, profileYAML(addr, ""), dir, clk)
	b.poll()
	b.poll()
	recs, _ = b.profile()
	assert.Equal(t, wantRecords(-10, 0), recs, "the restart resumes after the checkpoint: nothing twice, nothing lost")
	assert.Equal(t, reads+2, m.Reads(di))
	b.poll()
	assert.Equal(t, reads+2, m.Reads(di), "no new record is due: the meter is not asked")

	// Live: the next record, once due.
	profileMeter(t, m, 1, 1)
	clk.Advance(time.Minute)
	b.poll()
	recs, _ = b.profile()
	assert.Equal(t, wantRecords(-10, 1), recs)
	assert.NotZero(t, b.logs.FilterMessage("Load profile resumes after its checkpoint").Len())
}

// A meter outage: it goes on recording, polls fail; back, the gap is read over several polls.
func TestLoadProfileMeterOutage(t *testing.T) {
	clk := clock.NewManual(profileT0.Add(30 * time.Second))
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
	m.SetClock(0, time.UTC)
	profileMeter(t, m, 0, 0)
	_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
	rig := startRig(t, profileYAML(addr, `        poll: {timeout: 100ms, retries: 0}
`), t.TempDir(), clk)
	rig.poll()
	recs, _ := rig.profile()
	require.Equal(t, wantRecords(0, 0), recs)

	m.SetOff(true)
	for k := 1; k <= 25; k++ {
		clk.Advance(time.Minute)
		profileMeter(t, m, k, k)
		rig.poll()
	}
	recs, _ = rig.profile()
	require.Equal(t, wantRecords(0, 0), recs, "nothing while the meter is off")

	m.SetOff(false)
	clk.Advance(time.Minute)
	profileMeter(t, m, 26, 26)
	for range 3 {
		rig.poll()
	}
	recs, _ = rig.profile()
	assert.Equal(t, wantRecords(0, 26), recs, "26 missed records in three polls of at most 10")
	rig.poll()
	recs, _ = rig.profile()
	assert.Len(t, recs, 27, "nothing twice")
}

// No checkpoint or an unreadable one: the backfill starts at now - max_backfill, and says so.
func TestLoadProfileCheckpointMissingOrCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name, stored, log string
	}{
		{"missing", "", "No load-profile checkpoint; backfilling from now minus max_backfill"},
		{"corrupt", "\x00garbage{", "Load-profile checkpoint corrupt; backfilling from now minus max_backfill"},
		{"zero", `{"last":"0001-01-01T00:00:00Z"}`, "Load-profile checkpoint corrupt; backfilling from now minus max_backfill"},
		{"corrupt file", "", "Load-profile storage unusable; checkpoint kept in memory only, backfilling from now minus max_backfill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewManual(profileT0.Add(30 * time.Second))
			m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
			m.SetClock(0, time.UTC)
			profileMeter(t, m, -200, 0) // older than max_backfill (1h)
			_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
			dir := t.TempDir()
			if tc.name == "corrupt file" {
				// Not a bbolt file: file_storage cannot open it.
				require.NoError(t, os.WriteFile(filepath.Join(dir, "receiver_dlt645__load_profile"), bytes.Repeat([]byte("not a database "), 1000), 0o600))
			}
			if tc.stored != "" {
				ext := startStorage(t, dir)
				c, err := ext.(storage.Extension).GetClient(context.Background(), component.KindReceiver, component.MustNewID("dlt645"), "load_profile")
				require.NoError(t, err)
				require.NoError(t, c.Set(context.Background(), "load_profile/m", []byte(tc.stored)))
				require.NoError(t, c.Close(context.Background()))
				require.NoError(t, ext.Shutdown(context.Background()))
			}
			rig := startRig(t, profileYAMLBound(addr, 100, ""), dir, clk)
			rig.poll()
			recs, _ := rig.profile()
			assert.Equal(t, wantRecords(-60, 0), recs, "from now - max_backfill (10:00:30 - 1h, whole minute)")
			assert.Equal(t, 1, rig.logs.FilterMessage(tc.log).Len())
		})
	}
}

// The pipeline refuses: the records are kept and offered again, not read again nor lost; and the
// checkpoint is not moved, so a restart in between would read them again.
func TestLoadProfileRefused(t *testing.T) {
	clk := clock.NewManual(profileT0.Add(30 * time.Second))
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
	m.SetClock(0, time.UTC)
	profileMeter(t, m, -4, 0)
	_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
	rig := startRig(t, profileYAML(addr, ""), t.TempDir(), clk)
	rig.refuse = func(md pmetric.Metrics) error {
		if hasProfile(md) {
			return errors.New("queue full")
		}
		return nil
	}
	rig.poll()
	recs, live := rig.profile()
	assert.Empty(t, recs)
	assert.Equal(t, 1, live)
	assert.Equal(t, 1, m.Reads(0x06040001))
	assert.Equal(t, 1, rig.logs.FilterMessage("The pipeline refused load-profile records; they are sent again at the next poll").Len())
	rig.mu.Lock()
	rig.refuse = nil
	rig.mu.Unlock()
	rig.poll()
	recs, _ = rig.profile()
	assert.Equal(t, wantRecords(-4, 0), recs)
	assert.Equal(t, 1, m.Reads(0x06040001), "the kept records are sent, not read again")
}

// A crash between the pipeline's acceptance and the checkpoint write (the storage is gone when the
// checkpoint is written): the next start sends the batch again. Delivery is at-least-once.
func TestLoadProfileCrashBeforeCheckpoint(t *testing.T) {
	clk := clock.NewManual(profileT0.Add(30 * time.Second))
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
	m.SetClock(0, time.UTC)
	profileMeter(t, m, -14, 0)
	_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
	dir := t.TempDir()
	a := startRig(t, profileYAML(addr, ""), dir, clk)
	a.poll() // -14 … -5, checkpointed
	crashed := false
	a.refuse = func(md pmetric.Metrics) error {
		if hasProfile(md) && !crashed {
			crashed = true
			// Accepted (returns nil below), and the power goes before the checkpoint is written.
			require.NoError(t, a.r.closeStorage(context.Background()))
		}
		return nil
	}
	a.poll() // -4 … 0 accepted, checkpoint lost
	require.True(t, crashed)
	recsA, _ := a.profile()
	require.Equal(t, wantRecords(-14, 0), recsA)
	assert.Equal(t, 1, a.logs.FilterMessage("Load-profile checkpoint not stored; after a restart the records since the stored one are sent again").Len())
	a.stop(t)

	b := startRig(t, profileYAML(addr, ""), dir, clk)
	b.poll()
	recsB, _ := b.profile()
	assert.Equal(t, wantRecords(-4, 0), recsB, "the batch whose checkpoint was lost comes again, and only it")
}

// A meter read only for its load profile (no identifiers).
func TestLoadProfileOnly(t *testing.T) {
	clk := clock.NewManual(profileT0.Add(30 * time.Second))
	m := meter(t, "1", dlt645.V2007, nil)
	m.SetClock(0, time.UTC)
	profileMeter(t, m, -2, 0)
	_, addr := startSim(t, sim.Options{Now: clk.Now}, m)
	rig := startRig(t, `
time_zone: UTC
buses:
  - endpoint: tcp://`+addr+`
    meters:
      - id: m
        address: "1"
        load_profile: {class: 4, interval: 1m, storage: file_storage}
`, t.TempDir(), clk)
	rig.poll()
	recs, live := rig.profile()
	assert.Equal(t, wantRecords(-2, 0), recs)
	assert.Zero(t, live)
}

func hasProfile(md pmetric.Metrics) bool {
	for _, p := range devicetest.Points(md) {
		if p.Attrs[attrRecord] == recordLoadProfile {
			return true
		}
	}
	return false
}

func TestLoadProfileConfigErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Buses = []BusConfig{{Endpoint: "tcp://127.0.0.1:1", Meters: []MeterConfig{{
		ID: "m", Address: "1", MeterKeys: MeterKeys{Identifiers: []IdentifierConfig{{DI: "00010000"}},
			LoadProfile: &LoadProfileConfig{Class: 7, MaxRecordsPerPoll: -1, MaxBackfill: -time.Hour}},
	}}}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		`buses[0].meters[0] "m": load_profile.class: must be 0 (every class) or 1 to 6, got 7`,
		"load_profile.interval: required, the meter's recording period in whole minutes (e.g. 15m), got 0s",
		"load_profile.max_records_per_poll: must be 1 to 10000, got -1",
		"load_profile.max_backfill: must be positive, got -1h0m0s",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// A storage that is not there fails the start, naming the key.
func TestLoadProfileStorageMissing(t *testing.T) {
	r, err := newReceiver(context.Background(), loadYAML(t, profileYAML("127.0.0.1:1", "")), receivertestSettings())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `buses[0].meters[0].load_profile.storage: extension "file_storage" not found`)
	require.NoError(t, r.Shutdown(context.Background()))

	// The same for a discover: template, named by its key.
	r, err = newReceiver(context.Background(), loadYAML(t, `
buses:
  - endpoint: tcp://127.0.0.1:1
    discover:
      identifiers: ["00010000"]
      load_profile: {class: 4, interval: 1m, storage: file_storage}
`), receivertestSettings())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `buses[0].discover.load_profile.storage: extension "file_storage" not found`)
	require.NoError(t, r.Shutdown(context.Background()))
}

// TestDiscoverLoadProfile: a bus's discover: template with load_profile backfills the load profile of
// every meter found, under the meter's own checkpoint (its device.id, made of its address): each record
// arrives once, and a collector restarted on the same storage finds the checkpoint and sends none again.
func TestDiscoverLoadProfile(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	m := meter(t, "123456780001", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 5})
	m.SetClock(0, time.UTC)
	const first = -20
	for k := first; k <= 0; k++ {
		require.NoError(t, m.AddProfileRecord(now.Add(time.Duration(k)*time.Minute), [6][]float64{3: {float64(1000 + k), 0, 0, 0}}))
	}
	_, addr := startSim(t, sim.Options{}, m)
	dir := t.TempDir()
	cfg := `
time_zone: UTC
poll: {interval: 200ms, timeout: 100ms, retries: 0, jitter: 0}
buses:
  - endpoint: tcp://` + addr + `
    inter_frame_gap: 1ms
    discover:
      identifiers: ["00010000"]
      load_profile: {class: 4, interval: 1m, max_records_per_poll: 10, max_backfill: 1h, storage: file_storage}
`
	// run starts a collector on the storage and returns what its pipeline got; stop ends it.
	run := func() (sink *consumertest.MetricsSink, stop func()) {
		ext := startStorage(t, dir)
		set := receivertestSettings()
		set.ID = component.MustNewID("dlt645") // the same receiver across restarts: the same storage client
		r, err := newReceiver(context.Background(), loadYAML(t, cfg), set)
		require.NoError(t, err)
		sink = new(consumertest.MetricsSink)
		r.SetMetrics(sink)
		r.profileSink.next = sink
		require.NoError(t, r.Start(context.Background(), storageHost{map[component.ID]component.Component{storageID: ext}}))
		return sink, func() {
			require.NoError(t, r.Shutdown(context.Background()))
			require.NoError(t, ext.Shutdown(context.Background()))
		}
	}
	records := func(sink *consumertest.MetricsSink) (recs map[int64]int, live int) {
		recs = map[int64]int{}
		for _, p := range devicetest.Points(sink.AllMetrics()...) {
			if p.Device != "meter-123456780001" || p.Metric != dlt645.MetricActiveEnergy || p.Attrs["direction"] != "import" || p.Attrs["tariff"] != "total" || p.Stale {
				continue
			}
			if p.Attrs[attrRecord] == recordLoadProfile {
				require.Equal(t, float64(1000+p.Time.AsTime().Sub(now)/time.Minute)*1000, p.Value, "record at %s", p.Time)
				recs[p.Time.AsTime().Unix()]++
			} else {
				live++
			}
		}
		return recs, live
	}

	sink, stop := run()
	require.Eventually(t, func() bool {
		recs, _ := records(sink)
		return len(recs) == 1-first
	}, 30*time.Second, 20*time.Millisecond, "the found meter's load profile, minute %d to now", first)
	recs, _ := records(sink)
	for ts, n := range recs {
		assert.Equal(t, 1, n, "record at %s sent %d times", time.Unix(ts, 0).UTC(), n)
	}
	stop()

	sink, stop = run()
	defer stop()
	require.Eventually(t, func() bool {
		_, live := records(sink)
		return live >= 3
	}, 30*time.Second, 20*time.Millisecond, "the meter is found and polled again after the restart")
	recs, _ = records(sink)
	assert.Empty(t, recs, "after the restart the found meter resumes after its checkpoint: no record again")
}
