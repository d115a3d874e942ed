// Package poll schedules device polls: per-device intervals with jitter, links that bound how many
// polls share one connection or bus at a time, and a circuit breaker per device. Time comes from a
// clock.Clock so tests drive it by hand.
//
// The runtime contract of a poll: the scheduler owns the link. At each tick it asks the job whether
// to wait (Job.Defer, without the link), takes the job's Link, runs the I/O phase (Job.Run: the
// protocol requests, which need the connection or bus), releases the link, and only then runs the
// record phase (Job.Finish: building readings and emitting them, which may wait on the pipeline).
// The next poll on the link starts while the previous one records. No callee takes or frees a link.
//
// A source that waits on more than its schedule (an OPC UA subscription: ticks, reconnects and
// notifications) is a Loop: one goroutine from Start to Stop that owns its session and selects on
// its Ticker and its own events.
package poll
