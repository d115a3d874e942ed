package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// expiryLogEvery bounds the summary lines when old data keeps arriving while the backend is up
// (a device whose clock is behind): one line per outage, at most one per this interval.
const expiryLogEvery = 5 * time.Minute

// expiry drops data points older than max_sample_age from a request just before it is sent
// (on every attempt, so a request held back by an outage loses its old points as they age),
// counts them and logs one summary per outage: how many and how old.
type expiry struct {
	maxAge time.Duration
	now    func() time.Time
	logger *zap.Logger
	count  func(ctx context.Context, n int64)

	mu      sync.Mutex
	dropped int64         // in the current episode, not yet logged
	oldest  time.Duration // age of the oldest dropped point in the episode
	first   time.Time     // first drop of the episode
	logged  time.Time     // last summary
}

// drop removes the expired data points of md in place and reports how many it removed.
func (x *expiry) drop(ctx context.Context, md pmetric.Metrics) int {
	now := x.now()
	cutoff := pcommon.NewTimestampFromTime(now.Add(-x.maxAge))
	var oldest pcommon.Timestamp
	removed := 0
	expired := func(ts pcommon.Timestamp) bool {
		// A point without a timestamp is sent as "now" by the remote-write translation.
		if ts == 0 || ts >= cutoff {
			return false
		}
		if oldest == 0 || ts < oldest {
			oldest = ts
		}
		removed++
		return true
	}
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				return removeExpired(m, expired) == 0
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	if removed == 0 {
		return 0
	}
	x.count(ctx, int64(removed))
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.dropped == 0 {
		x.first = now
	}
	x.dropped += int64(removed)
	if age := now.Sub(oldest.AsTime()); age > x.oldest {
		x.oldest = age
	}
	return removed
}

// removeExpired removes the expired points of one metric and returns how many remain.
func removeExpired(m pmetric.Metric, expired func(pcommon.Timestamp) bool) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool { return expired(dp.Timestamp()) })
		return dps.Len()
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool { return expired(dp.Timestamp()) })
		return dps.Len()
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		dps.RemoveIf(func(dp pmetric.HistogramDataPoint) bool { return expired(dp.Timestamp()) })
		return dps.Len()
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		dps.RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool { return expired(dp.Timestamp()) })
		return dps.Len()
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		dps.RemoveIf(func(dp pmetric.SummaryDataPoint) bool { return expired(dp.Timestamp()) })
		return dps.Len()
	}
	return 1 // empty or unknown type: left to the remote-write translation
}

// delivered ends the episode after a request reached the backend: the summary of what the
// outage cost is logged once.
func (x *expiry) delivered() {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	if x.dropped == 0 || (!x.logged.IsZero() && now.Sub(x.logged) < expiryLogEvery) {
		return
	}
	x.logLocked(now, "Dropped data points older than max_sample_age instead of sending them (the backend would refuse them); counted in otelcol_exporter_tenantremotewrite_dropped_data_points{reason=\"max_sample_age\"}")
}

// flush logs what an episode still unlogged dropped (at shutdown).
func (x *expiry) flush() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.dropped > 0 {
		x.logLocked(x.now(), "Dropped data points older than max_sample_age; the backend has not been reached since")
	}
}

func (x *expiry) logLocked(now time.Time, msg string) {
	x.logger.Warn(msg,
		zap.Int64("dropped_data_points", x.dropped),
		zap.Duration("oldest_age", x.oldest.Round(time.Second)),
		zap.Duration("max_sample_age", x.maxAge),
		zap.Time("first_drop", x.first))
	x.dropped, x.oldest, x.logged = 0, 0, now
}
