package dlt645receiver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
	"github.com/otelcol-iiot/otelcol-iiot/internal/poll"
	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/dlt645"
)

// pollOnce builds the first meter of the first bus of cfg and polls it once, directly.
func pollOnce(t *testing.T, cfg *Config) []dataPoint {
	t.Helper()
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	ms := &buses[0].meters[0]
	rec := device.NewRecorder(ms.identity, device.RecorderSettings{Health: device.AllHealthMetrics(), Start: time.Now()})
	m := newMeterPoller(ms, b, rec, clock.Real{}, zap.NewNop())
	p := rec.Begin(time.Now())
	m.Poll(context.Background(), p)
	md, _ := p.End(time.Now(), poll.BreakerClosed)
	return dataPoints(append([]pmetricMetrics{}, md))
}

func TestClockDrift(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ids    string
		offset time.Duration
		zone   string
	}{
		{"date and time, fast", `["00010000", "04000101", "04000102"]`, 90 * time.Second, "Asia/Shanghai"},
		{"date-time, slow", `["00010000", "0400010C"]`, -30 * time.Second, "UTC"},
		{"on time", `["00010000", "04000101", "04000102"]`, 0, "America/New_York"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := time.LoadLocation(tc.zone)
			require.NoError(t, err)
			m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 1})
			m.SetClock(tc.offset, loc)
			_, addr := startSim(t, sim.Options{}, m)
			pts := pollOnce(t, loadYAML(t, `
time_zone: `+tc.zone+`
buses:
  - endpoint: tcp://`+addr+`
    meters: [{id: m, address: "1", identifiers: `+tc.ids+`}]
`))
			d, ok := last(pts, "m", MetricClockDrift, nil)
			require.True(t, ok)
			require.False(t, d.stale)
			assert.Equal(t, "s", d.unit)
			assert.InDelta(t, tc.offset.Seconds(), d.value, 1.0, "resolution is one second")
		})
	}
}

// The wrong time zone shows as a drift of whole hours: the zone setting matters.
func TestClockDriftTimeZone(t *testing.T) {
	m := meter(t, "1", dlt645.V2007, map[dlt645.DI]float64{0x00010000: 1})
	m.SetClock(0, time.FixedZone("UTC+8", 8*3600))
	_, addr := startSim(t, sim.Options{}, m)
	pts := pollOnce(t, loadYAML(t, `
time_zone: UTC
buses:
  - endpoint: tcp://`+addr+`
    meters: [{id: m, address: "1", identifiers: ["04000101", "04000102"]}]
`))
	d, _ := last(pts, "m", MetricClockDrift, nil)
	assert.InDelta(t, 8*3600, d.value, 1.0)
}

// The date is read just before the meter's midnight and the time just after: the receiver reads
// the date again instead of reporting a drift of a day.
func TestClockDriftAcrossMidnight(t *testing.T) {
	m := meter(t, "1", dlt645.V2007, nil)
	m.SetClock(0, time.UTC)
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	// The simulated meter answers its first request 100ms before midnight, the others 200ms after.
	var mu sync.Mutex
	calls := 0
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return midnight.Add(-100 * time.Millisecond)
		}
		return midnight.Add(200 * time.Millisecond)
	}
	_, addr := startSim(t, sim.Options{Now: clock}, m)
	pts := pollOnce(t, loadYAML(t, `
time_zone: UTC
buses:
  - endpoint: tcp://`+addr+`
    meters: [{id: m, address: "1", identifiers: ["04000101", "04000102"]}]
`))
	want := time.Until(midnight.Add(200 * time.Millisecond)).Seconds()
	d, ok := last(pts, "m", MetricClockDrift, nil)
	require.True(t, ok)
	assert.InDelta(t, want, d.value, 1.0, "not a day off")
	assert.Equal(t, 2, m.Reads(dlt645.DIDate2007), "the date was read again")
}

func TestClockUnreadableIsStale(t *testing.T) {
	m := meter(t, "1", dlt645.V2007, nil)
	m.SetError(dlt645.DITime2007, 0x01)
	_, addr := startSim(t, sim.Options{}, m)
	pts := pollOnce(t, loadYAML(t, `
buses:
  - endpoint: tcp://`+addr+`
    meters: [{id: m, address: "1", identifiers: ["04000101", "04000102"]}]
`))
	d, ok := last(pts, "m", MetricClockDrift, nil)
	require.True(t, ok)
	assert.True(t, d.stale)
}

func TestTimeSync(t *testing.T) {
	loc := time.FixedZone("UTC+8", 8*3600)
	m1 := meter(t, "1", dlt645.V2007, nil)
	m2 := meter(t, "2", dlt645.V1997, nil)
	m1.SetClock(5*time.Minute, loc)
	m2.SetClock(-3*time.Minute, loc)
	srv, addr := startSim(t, sim.Options{}, m1, m2)
	cfg := loadYAML(t, `
time_zone: Asia/Shanghai
buses:
  - endpoint: tcp://`+addr+`
    time_sync: {interval: 24h}
    meters: [{id: m, address: "1", identifiers: ["00010000"]}]
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	b := newBus(&buses[0], nil, clock.Real{}, zap.NewNop())
	t.Cleanup(b.close)
	if untilClearOfMidnight(time.Now().In(loc)) > 0 {
		t.Skip("too close to midnight in UTC+8 for a time sync")
	}
	require.NoError(t, b.link.Acquire(context.Background()))
	b.syncTime(context.Background()) // the scheduler holds the link around the job
	b.link.Release()
	require.Eventually(t, func() bool { return srv.Stats().Requests >= 1 }, 5*time.Second, 10*time.Millisecond)
	for _, m := range []*sim.Meter{m1, m2} {
		assert.InDelta(t, 0, m.ClockOffset().Seconds(), 1.5, "%s", m.Address())
	}
	assert.Zero(t, srv.Stats().Replies, "nobody answers a broadcast")
}

func TestUntilClearOfMidnight(t *testing.T) {
	day := func(h, m, s int) time.Time { return time.Date(2024, 3, 5, h, m, s, 0, time.UTC) }
	assert.Equal(t, time.Duration(0), untilClearOfMidnight(day(12, 0, 0)))
	assert.Equal(t, time.Duration(0), untilClearOfMidnight(day(0, 5, 0)))
	assert.Equal(t, 4*time.Minute+time.Second, untilClearOfMidnight(day(0, 1, 0)))
	assert.Equal(t, 7*time.Minute+time.Second, untilClearOfMidnight(day(23, 58, 0)))
	assert.Equal(t, time.Duration(0), untilClearOfMidnight(day(23, 54, 0)))
}

// Near midnight the time sync defers itself without the bus: the meters on it are polled on schedule
// meanwhile, and the broadcast goes out once midnight is clear.
func TestTimeSyncWaitsOutMidnightWithoutTheBus(t *testing.T) {
	m1 := meter(t, "1", dlt645.V2007, nil)
	srv, addr := startSim(t, sim.Options{}, m1)
	cfg := loadYAML(t, `
time_zone: Asia/Shanghai
buses:
  - endpoint: tcp://`+addr+`
    time_sync: {interval: 24h}
    meters: [{id: m, address: "1", identifiers: ["00010000"]}]
`)
	buses, err := cfg.resolve()
	require.NoError(t, err)
	loc := buses[0].location
	start := time.Date(2026, 3, 5, 23, 58, 0, 0, loc)
	clk := clock.NewManual(start)
	b := newBus(&buses[0], nil, clk, zap.NewNop())
	t.Cleanup(b.close)

	var mu sync.Mutex
	var polls, syncs []time.Time
	sched := poll.NewScheduler(clk, 3)
	sched.Add(poll.Job{Interval: 30 * time.Second, Link: b.link, Run: func(context.Context) {
		mu.Lock()
		polls = append(polls, clk.Now())
		mu.Unlock()
	}})
	job := b.syncJob(2 * time.Minute) // the first sync falls due before midnight is clear
	run := job.Run
	job.Run = func(ctx context.Context) {
		mu.Lock()
		syncs = append(syncs, clk.Now())
		mu.Unlock()
		run(ctx)
	}
	sched.Add(job)
	sched.Start(context.Background())
	defer sched.Stop()
	end := time.Date(2026, 3, 6, 0, 7, 0, 0, loc)
	for clk.Now().Before(end) {
		require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
		clk.Advance(5 * time.Second)
	}
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, syncs)
	for _, s := range syncs {
		assert.Zero(t, untilClearOfMidnight(s), "no sync within %s of midnight: %s", midnightGuard, s)
	}
	assert.False(t, syncs[0].Before(time.Date(2026, 3, 6, 0, 5, 0, 0, loc)))
	// The meter kept its 30 s period across the wait (9 minutes: 18 polls).
	require.GreaterOrEqual(t, len(polls), 17)
	for k := 1; k < len(polls); k++ {
		assert.Equal(t, 30*time.Second, polls[k].Sub(polls[k-1]), "poll %d", k)
	}
	require.Eventually(t, func() bool { return srv.Stats().Requests >= 1 }, 5*time.Second, 10*time.Millisecond, "the broadcast went out")
}
