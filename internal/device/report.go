package device

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Report by exception: a reading is sent only when it moved by more than its deadband since the value
// last sent, or when max_silence has passed since then. Cellular sites pay per byte, and most
// readings of a steady meter repeat the last one.
//
// Prometheus (and Mimir, Thanos …) look back 5 minutes for a series' last sample: a series with no
// sample for 5 minutes disappears from queries. max_silence therefore defaults to 5m − 2 × the poll
// interval (at least one interval): a reading is then sent at the first poll at or after max_silence,
// which comes at most one interval (plus jitter, at most half an interval) later, so the gap between
// two samples stays under 5 minutes by half an interval.
//
// Sums (counters) follow the same rule and keep their monotonic cumulative semantics: every point sent
// is a value the device reported, in order, with the same start time, so the series never goes
// backwards, and rate()/increase() over any window that holds two samples are exact. A counter that
// went down (a reset, a replaced meter) is sent at once, whatever the deadband.
//
// Staleness is never held back: a reading that fails still sends its stale marker at once, and the
// next good reading after it is sent whatever its value.
//
// The health metrics follow a rule of their own, with no deadband (Recorder.appendHealth):
// iiot.device.up and iiot.device.poll.duration go out at every poll (rules take avg_over_time and
// changes of up, the tdigest processor every duration); the breaker state, the requests and each
// poll.errors point go out when they change (the requests: when a poll made a different number of
// requests than the one before, i.e. the counter leaves its straight line), else at the poll nearest to
// poll.health_interval (default 1m) after the last that sent them all; and all of them at the first
// poll and after a resource attribute changed. A counter subsampled this way keeps rate() and
// increase() exact, and a 5-minute window still holds several samples.

// LookbackDelta is Prometheus' default lookback: a series with no sample for that long is stale.
const LookbackDelta = 5 * time.Minute

// ReportConfig is a `report` block: at a receiver's top level, in a profile, a device and a reading
// (a Modbus field, a DL/T 645 identifier). Each key it sets replaces the one of the level above, 0
// included; a key it leaves out is inherited (see Layer).
type ReportConfig struct {
	// Enabled turns report by exception on (default off: every poll sends every reading).
	Enabled *bool `mapstructure:"enabled"`
	// Deadband is the least absolute change, in the reading's unit, that is sent (default 0: any change).
	Deadband *float64 `mapstructure:"deadband"`
	// DeadbandPercent is the least change, as a percentage of the value last sent, that is sent (default
	// 0). With both, a change must exceed both: the absolute deadband is the floor that keeps a
	// percentage of a value near zero from sending its noise.
	DeadbandPercent *float64 `mapstructure:"deadband_percent"`
	// MaxSilence is the longest time a reading goes unsent (default: 5m − 2 × the poll interval, at
	// least one interval, which keeps series from going stale in Prometheus).
	MaxSilence *time.Duration `mapstructure:"max_silence"`
}

// Over returns c with the keys that o sets applied over it.
func (c ReportConfig) Over(o ReportConfig) ReportConfig {
	return ReportConfig{
		Enabled:         LayerSet(c.Enabled, o.Enabled),
		Deadband:        LayerSet(c.Deadband, o.Deadband),
		DeadbandPercent: LayerSet(c.DeadbandPercent, o.DeadbandPercent),
		MaxSilence:      LayerSet(c.MaxSilence, o.MaxSilence),
	}
}

// Validate reports every problem of the keys c sets, named under prefix (e.g. `fields[2] "v": report.`).
func (c ReportConfig) Validate(prefix string) error {
	var errs []error
	if c.Deadband != nil && (*c.Deadband < 0 || math.IsNaN(*c.Deadband) || math.IsInf(*c.Deadband, 0)) {
		errs = append(errs, fmt.Errorf("%sdeadband: must be a number >= 0 (in the reading's unit), got %g", prefix, *c.Deadband))
	}
	if c.DeadbandPercent != nil && !(*c.DeadbandPercent >= 0 && *c.DeadbandPercent <= 100) {
		errs = append(errs, fmt.Errorf("%sdeadband_percent: must be between 0 and 100, got %g", prefix, *c.DeadbandPercent))
	}
	if c.MaxSilence != nil && *c.MaxSilence <= 0 {
		errs = append(errs, fmt.Errorf("%smax_silence: must be > 0 (leave it out for the default, 5m − 2 × the poll interval), got %s", prefix, *c.MaxSilence))
	}
	return errors.Join(errs...)
}

// Report is a reading's resolved report-by-exception settings.
type Report struct {
	Enabled         bool
	Deadband        float64
	DeadbandPercent float64
	MaxSilence      time.Duration
}

// DefaultMaxSilence is the max_silence of readings polled every interval: 5m − 2 × interval, at
// least one interval (see the package comment on report by exception).
func DefaultMaxSilence(interval time.Duration) time.Duration {
	return max(LookbackDelta-2*interval, interval)
}

// ResolveReport returns the settings of a reading polled every interval from its levels, ordered from
// general to specific (e.g. receiver, profile, device, field).
func ResolveReport(interval time.Duration, levels ...ReportConfig) Report {
	var c ReportConfig
	for _, l := range levels {
		c = c.Over(l)
	}
	return Report{
		Enabled:         Layer(false, c.Enabled),
		Deadband:        Layer(0, c.Deadband),
		DeadbandPercent: Layer(0, c.DeadbandPercent),
		MaxSilence:      Layer(DefaultMaxSilence(interval), c.MaxSilence),
	}
}

// reportState is what a series sent last, for report by exception.
type reportState struct {
	Report
	sum   bool
	sent  bool // a value was sent, and no stale marker since
	isInt bool
	f     float64
	i     int64
	own   pcommon.Timestamp // the point's own timestamp (0: it had the poll's)
	at    pcommon.Timestamp // the poll that sent it
}

// SetReport sets the series' report by exception; a Report not Enabled sends every reading.
func (s *Series) SetReport(rep Report) {
	if !rep.Enabled {
		s.report = nil
		return
	}
	s.report = &reportState{Report: rep, sum: s.sum}
}

// moved reports whether pt, recorded by a poll at, is to be sent.
func (st *reportState) moved(pt *point, at pcommon.Timestamp) bool {
	// A poll starts when its goroutine wakes, a little after its tick: max_silence is met by the poll
	// due at max_silence even when the poll that sent woke later than its own tick (1/32 of slack).
	silence := st.MaxSilence - st.MaxSilence/32
	switch {
	case !st.sent, pt.ts != st.own, at-st.at >= pcommon.Timestamp(silence):
		return true
	case pt.isInt != st.isInt:
		return true
	}
	var last, diff float64
	if pt.isInt {
		if pt.ival == st.i {
			return false
		}
		if st.sum && pt.ival < st.i {
			return true // a counter reset
		}
		// the difference in uint64 is exact where int64 would overflow
		var d uint64
		if pt.ival > st.i {
			d = uint64(pt.ival) - uint64(st.i)
		} else {
			d = uint64(st.i) - uint64(pt.ival)
		}
		last, diff = float64(st.i), float64(d)
	} else {
		last = st.f
		if pt.value == last {
			return false
		}
		if math.IsNaN(pt.value) || math.IsNaN(last) || (st.sum && pt.value < last) {
			return true
		}
		diff = math.Abs(pt.value - last)
	}
	return diff > st.Deadband && diff > st.DeadbandPercent/100*math.Abs(last)
}

// remember notes pt as sent by the poll at.
func (st *reportState) remember(pt *point, at pcommon.Timestamp) {
	st.sent, st.isInt, st.f, st.i, st.own, st.at = true, pt.isInt, pt.value, pt.ival, pt.ts, at
}

// holdUnchanged drops the points of series reporting by exception that did not move, counting them in
// p.held. at is the time the poll began. After a resource attribute changed, every point is sent: its
// series starts anew under the new resource.
func (p *Poll) holdUnchanged(at pcommon.Timestamp) {
	fresh := p.r.hasOld
	kept := p.points[:0]
	for i := range p.points {
		pt := p.points[i]
		st := pt.series.report
		switch {
		case st == nil:
		case pt.stale:
			st.sent = false // the next good reading is sent whatever its value
		case fresh || st.moved(&pt, at):
			st.remember(&pt, at)
		default:
			p.held++
			continue
		}
		kept = append(kept, pt)
	}
	p.points = kept
}
