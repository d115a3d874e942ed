package opcuareceiver

import (
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/opcua"
)

const testRepeat = 300 * time.Millisecond

// repeatConfig subscribes with a fast heartbeat and a short repeat interval.
func repeatConfig(endpoint string, repeat time.Duration) *Config {
	cfg := testConfig(endpoint)
	cfg.Mode = ModeSubscribe
	cfg.Poll.Interval = 100 * time.Millisecond
	cfg.Poll.Timeout = 100 * time.Millisecond
	cfg.Subscription.RepeatInterval = repeat
	cfg.Nodes = []NodeConfig{
		{ID: nsu + "s=Temperature", Name: "temperature", Unit: "Cel"},
		{ID: nsu + "s=Pressure", Name: "pressure", Unit: "bar"},
		{ID: nsu + "s=Vector", Name: "vector"},
		{ID: nsu + "s=Broken", Name: "broken"},
		{ID: nsu + "s=Doubtful", Name: "doubtful"},
	}
	return cfg
}

// series returns the points of one series in the order they were emitted.
func (h *harness) series(name string, attrs map[string]string) []point {
	var out []point
	for _, p := range h.allPoints() {
		if p.name == name && hasAttrs(p.attrs, attrs) {
			out = append(out, p)
		}
	}
	return out
}

// countValue counts the points of a series with the value.
func countValue(pts []point, v float64) int {
	n := 0
	for _, p := range pts {
		if !p.stale && p.value == v {
			n++
		}
	}
	return n
}

// TestSubscriptionRepeatsHeldValues: values the server does not send again are repeated with the
// collector's time once they are repeat_interval old; a Bad value is never repeated; a good value
// after it is repeated again.
func TestSubscriptionRepeatsHeldValues(t *testing.T) {
	srv := startSim(t, sim.Config{})
	h := startReceiver(t, repeatConfig(srv.Endpoint(), testRepeat))

	require.Eventually(t, func() bool {
		return countValue(h.series("opcua.temperature", nil), 21.5) >= 3 &&
			countValue(h.series("opcua.vector", map[string]string{"index": "2"}), 3.5) >= 3 &&
			countValue(h.series("opcua.doubtful", nil), 7) >= 2
	}, 15*time.Second, 20*time.Millisecond, "steady values are repeated; points: %v", h.summary())

	temps := h.series("opcua.temperature", nil)
	for i := 1; i < len(temps); i++ {
		gap := temps[i].ts.Sub(temps[i-1].ts)
		assert.GreaterOrEqual(t, gap, testRepeat-50*time.Millisecond, "point %d comes a repeat interval after the one before (%v)", i, temps)
	}
	for _, p := range h.series("opcua.broken", nil) {
		assert.True(t, p.stale, "a Bad node is never given a value: %v", p)
	}
	require.Eventually(t, func() bool {
		for _, s := range h.spans() {
			if v, ok := s.Attributes().Get("opcua.repeated"); ok && v.Int() >= 1 {
				trigger, _ := s.Attributes().Get("opcua.trigger")
				return s.Name() == "opcua.poll" && trigger.Str() == "heartbeat"
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "the heartbeat poll span counts the repeated readings")

	// A Bad status ends the series, and nothing brings the old value back, while the other steady
	// values keep being repeated.
	srv.SetStatus("Temperature", nil, ua.StatusBadSensorFailure)
	h.waitStale(t, "opcua.temperature", nil)
	var marker int
	require.Eventually(t, func() bool {
		pts := h.allPoints()
		marker = -1
		for i, p := range pts {
			if p.name == "opcua.temperature" && p.stale {
				marker = i
			}
		}
		pressures := 0
		for _, p := range pts[marker+1:] {
			if p.name == "opcua.pressure" && !p.stale {
				pressures++
			}
		}
		return marker >= 0 && pressures >= 3
	}, 15*time.Second, 20*time.Millisecond, "pressure is repeated after the temperature went Bad; points: %v", h.summary())
	for _, p := range h.allPoints()[marker+1:] {
		if p.name == "opcua.temperature" {
			assert.True(t, p.stale, "a reading whose last status was Bad is not repeated: %v", p)
		}
	}

	// A good value again: received, then repeated.
	srv.Set("Temperature", 43.5)
	require.Eventually(t, func() bool {
		return countValue(h.series("opcua.temperature", nil), 43.5) >= 2
	}, 15*time.Second, 20*time.Millisecond, "the new value is repeated; points: %v", h.summary())
}

// TestSubscriptionRepeatWithSourceTimestamps: a value whose source timestamp is an hour old is
// repeated at the next heartbeat with the collector's time (the same timestamp again would be a
// duplicate to Prometheus), and a change whose source timestamp is before the repeated point is sent
// 1 ms after it, so the series stays in time order.
func TestSubscriptionRepeatWithSourceTimestamps(t *testing.T) {
	srv := startSim(t, sim.Config{})
	old := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	srv.SetAt("Temperature", 21.5, ua.StatusOK, old)
	cfg := repeatConfig(srv.Endpoint(), testRepeat)
	cfg.Timestamp = TimestampSourceSource
	start := time.Now()
	h := startReceiver(t, cfg)

	var repeated point
	require.Eventually(t, func() bool {
		pts := h.series("opcua.temperature", nil)
		if len(pts) < 2 {
			return false
		}
		repeated = pts[1]
		return true
	}, 15*time.Second, 20*time.Millisecond, "the old value is repeated; points: %v", h.summary())
	first := h.series("opcua.temperature", nil)[0]
	assert.Equal(t, old, first.ts.UTC(), "the received point keeps its source timestamp")
	assert.Equal(t, 21.5, repeated.value)
	assert.False(t, repeated.ts.Before(start), "the repeated point carries the collector's time, not %v", repeated.ts)
	assert.False(t, repeated.ts.After(time.Now()))

	// A change stamped before the repeated point: sent 1 ms after the newest point of the series.
	srv.SetAt("Temperature", 50.0, ua.StatusOK, repeated.ts.Add(-10*time.Second))
	h.waitValue(t, "opcua.temperature", nil, 50)
	pts := h.series("opcua.temperature", nil)
	var before point
	for i, p := range pts {
		if p.value == 50 {
			before = pts[i-1]
			assert.Equal(t, before.ts.UnixMilli()+1, p.ts.UnixMilli(), "a late change is sent just after the repeated point %v", before)
			break
		}
	}
	assert.Equal(t, 21.5, before.value)

	// A change stamped after it keeps its source timestamp.
	later := time.Now().Add(2 * time.Second).Truncate(time.Millisecond).UTC()
	srv.SetAt("Temperature", 51.0, ua.StatusOK, later)
	h.waitValue(t, "opcua.temperature", nil, 51)
	p, _ := h.latest("opcua.temperature", nil)
	assert.Equal(t, later, p.ts.UTC())
}

// TestSubscriptionRepeatOff: with repeat_interval 0 a steady value is sent once.
func TestSubscriptionRepeatOff(t *testing.T) {
	srv := startSim(t, sim.Config{})
	h := startReceiver(t, repeatConfig(srv.Endpoint(), 0))
	h.waitValue(t, "opcua.temperature", nil, 21.5)
	heartbeats := func() int {
		n := 0
		for _, s := range h.spans() {
			if s.Name() == "opcua.heartbeat" {
				n++
			}
		}
		return n
	}
	seen := heartbeats()
	require.Eventually(t, func() bool { return heartbeats() >= seen+8 }, 15*time.Second, 20*time.Millisecond,
		"heartbeats continue")
	assert.Len(t, h.series("opcua.temperature", nil), 1, "no repeat: %v", h.series("opcua.temperature", nil))
}

// TestAfterRepeated: a received value is never stamped at or before the last repeated point of its
// series (millisecond resolution); later ones keep their time.
func TestAfterRepeated(t *testing.T) {
	r := &opcuaReceiver{}
	floor := time.UnixMilli(1_700_000_000_500).Add(300 * time.Microsecond)
	ms := func(v int64) time.Time { return time.UnixMilli(v) }

	e := &seriesEntry{}
	assert.True(t, r.afterRepeated(e, time.Time{}, floor).IsZero(), "no repeat: nothing changes")

	e = &seriesEntry{floor: floor}
	assert.Equal(t, ms(1_700_000_000_501), r.afterRepeated(e, floor.Add(-10*time.Second), floor), "older source time")
	assert.Equal(t, ms(1_700_000_000_502), r.afterRepeated(e, floor.Add(-5*time.Second), floor), "still older: the next millisecond")
	late := ms(1_700_000_001_000)
	assert.Equal(t, late, r.afterRepeated(e, late, floor), "newer: kept")
	assert.True(t, e.floor.IsZero())
	assert.Equal(t, floor.Add(-time.Hour), r.afterRepeated(e, floor.Add(-time.Hour), floor), "once passed, no longer adjusted")

	e = &seriesEntry{floor: floor}
	assert.Equal(t, ms(1_700_000_000_501), r.afterRepeated(e, time.Time{}, floor.Add(200*time.Microsecond)),
		"the poll's time in the same millisecond as the repeat")
	e = &seriesEntry{floor: floor}
	assert.True(t, r.afterRepeated(e, time.Time{}, floor.Add(time.Millisecond)).IsZero(), "the poll's time after it")
}
