// Package poll schedules device polls: per-device intervals with jitter, links that bound how many
// polls share one connection or bus at a time, and a circuit breaker per device. Time comes from a
// clock.Clock so tests drive it by hand.
package poll
