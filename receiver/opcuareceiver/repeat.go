package opcuareceiver

import (
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device"
)

// Repeating held values (subscription.repeat_interval).
//
// A monitored item reports only changes: a value inside its deadband, or one that does not change,
// gives no data point at all, and Prometheus ends a series that received nothing for its lookback
// (5 minutes by default). So at each heartbeat the last value of every reading whose newest point is
// at least repeat_interval old is sent again.
//
// A repeated point carries the collector's time, in every timestamp mode: Prometheus keeps one sample
// per series and timestamp, so sending the value again with its source or server timestamp would be
// dropped as a duplicate and would not keep the series alive. The repeated point says "the value was
// still this at this time", which is what the subscription tells: no change beyond the deadband was
// reported.
//
// With timestamp source or server, a change sampled before the repeat but delivered after it carries
// an earlier timestamp than the repeated point (also whenever the server's clock is behind the
// collector's); with any mode, a change may arrive in the same millisecond as the repeat. Prometheus
// refuses a whole remote-write request that holds one sample not newer than the newest of its series
// (with another value), so such a value is sent 1 ms after the repeated point (afterRepeated): its
// value stays exact, its time moves by at most the publishing delay (or the clock offset).

// repeatHeld sends again the last value of every reading of the session whose newest point is at least
// repeat_interval old. Readings whose last status was Bad (or whose value was unusable) hold no value:
// they stay stale. Only values received in this session are repeated, and only after a heartbeat that
// found the server answering with a moving clock.
func (r *opcuaReceiver) repeatHeld(p *device.Poll, s *session) {
	if r.repeatEvery <= 0 || (r.cfg.Heartbeat.Enabled && s.beatSeq != r.pollSeq) {
		return
	}
	now := r.Clock().Now()
	repeated := 0
	for _, it := range s.items {
		e := it.entry
		if it.err != nil || len(e.last) == 0 || e.lastSess != r.sessions || e.seq == r.pollSeq ||
			now.Sub(e.lastTime) < r.repeatEvery || now.UnixMilli() <= e.lastTime.UnixMilli() {
			continue
		}
		for _, h := range e.last {
			h.value.Record(p, h.series, now)
		}
		e.seq, e.lastTime, e.floor = r.pollSeq, now, now
		repeated++
	}
	if repeated > 0 {
		p.Attr("opcua.repeated", repeated)
	}
}

// afterRepeated returns the timestamp of a received value: ts itself, unless the reading's last
// repeated point is not older (in Prometheus' millisecond resolution), then 1 ms after that point.
// Zero ts stands for the end of the poll, which is later than its start.
func (r *opcuaReceiver) afterRepeated(e *seriesEntry, ts, pollStart time.Time) time.Time {
	if e.floor.IsZero() {
		return ts
	}
	at := ts
	if at.IsZero() {
		at = pollStart
	}
	if at.UnixMilli() > e.floor.UnixMilli() {
		e.floor = time.Time{}
		return ts
	}
	ts = time.UnixMilli(e.floor.UnixMilli() + 1)
	e.floor = ts
	return ts
}
