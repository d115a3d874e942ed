package poll

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// Job is one device's periodic poll, in two phases: Run holds the Link, Finish does not.
type Job struct {
	// Interval between polls.
	Interval time.Duration
	// Jitter is the largest random delay added to each tick, as a fraction of Interval (0 to 0.5).
	// It spreads the polls of devices that share an interval, without drifting the schedule.
	Jitter float64
	// Link the poll runs on; nil means the poll needs no shared connection.
	Link *Link
	// Run is the I/O phase of one poll: the requests, holding Link. It is never called concurrently
	// with itself or with the job's Finish.
	Run func(ctx context.Context)
	// Finish, if set, is the record phase: it runs after each Run once Link is released (also when
	// ctx has ended, to account for a poll cut short), so building and emitting the poll's data does
	// not keep a bus or connection idle.
	Finish func(ctx context.Context)
	// Defer, if set, is asked at each due time: a positive answer postpones this run by that long,
	// without holding Link (the link's other jobs run meanwhile); the job's grid does not move. E.g.
	// a time sync waits out the minutes around midnight.
	Defer func(now time.Time) time.Duration
}

// Loop is a source that waits on more than its schedule: Run is started on its own goroutine by
// Start and returns when ctx ends (Stop waits for it). Its ticks come from t, on the grid Interval
// and Jitter give, like a Job's.
type Loop struct {
	Interval time.Duration
	Jitter   float64
	Run      func(ctx context.Context, t *Ticker)
}

// Scheduler runs jobs on their intervals, one goroutine per job.
type Scheduler struct {
	clock  clock.Clock
	rand   *rand.Rand
	randMu sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	jobs   []Job
	loops  []Loop
}

// NewScheduler returns a scheduler on clock; seed makes jitter repeatable in tests.
func NewScheduler(clock clock.Clock, seed uint64) *Scheduler {
	// Jitter spreads load; a seeded generator makes it repeatable, and nothing about it is secret.
	return &Scheduler{clock: clock, rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} //nolint:gosec // jitter, not secrets
}

// Add registers a job; call before Start.
func (s *Scheduler) Add(j Job) { s.jobs = append(s.jobs, j) }

// AddLoop registers a loop; call before Start.
func (s *Scheduler) AddLoop(l Loop) { s.loops = append(s.loops, l) }

// Start starts every job. The jobs' grids share one phase, random within the shortest interval:
// devices polled at one interval fall due on the same tick (each delayed by its own jitter), so
// their records reach the pipeline together and a disk queue writes them in one transaction (group
// commit) instead of one per device: spreading the devices over the interval made a storage
// transaction, and with fsync a disk flush, per device-poll (issue 17). Jobs that share a link of
// one (a serial bus, a Modbus connection) run on one goroutine in the order they fall due: they
// could only take turns anyway, and one goroutine spares each turn a hand-over between goroutines,
// which costs more than a short request on a loopback or LAN connection.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	start := s.clock.Now()
	var shortest time.Duration
	for _, j := range s.jobs {
		if shortest == 0 || j.Interval < shortest {
			shortest = j.Interval
		}
	}
	first := start.Add(s.randomDuration(shortest))
	serial := map[*Link]*serialGroup{}
	for _, j := range s.jobs {
		if j.Link != nil && cap(j.Link.slots) == 1 {
			g := serial[j.Link]
			if g == nil {
				g = &serialGroup{}
				serial[j.Link] = g
			}
			g.jobs = append(g.jobs, j)
			g.ticks = append(g.ticks, first)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, j, first)
		}()
	}
	for _, g := range serial {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runSerial(ctx, g)
		}()
	}
	for _, l := range s.loops {
		t := &Ticker{s: s, interval: l.Interval, jitter: l.Jitter, tick: start.Add(s.randomDuration(l.Interval))}
		t.arm()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer t.stop()
			l.Run(ctx, t)
		}()
	}
}

// Stop cancels every job and waits for polls in progress to return. Safe without Start, and twice.
func (s *Scheduler) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

func (s *Scheduler) randomDuration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return time.Duration(s.rand.Int64N(int64(max)))
}

// NextTick returns the first grid point after now, given the previous one: a poll that overran its
// interval skips the ticks it missed instead of firing them back to back.
func NextTick(prev, now time.Time, interval time.Duration) time.Time {
	next := prev.Add(interval)
	if !next.After(now) {
		missed := now.Sub(next)/interval + 1
		next = next.Add(missed * interval)
	}
	return next
}

func (s *Scheduler) run(ctx context.Context, j Job, tick time.Time) {
	for {
		if !s.sleep(ctx, tick.Sub(s.clock.Now())+s.jitter(j)) {
			return
		}
		if !s.waitDeferred(ctx, j) {
			return
		}
		if !runOnce(ctx, j) {
			return
		}
		tick = NextTick(tick, s.clock.Now(), j.Interval)
	}
}

// serialGroup is the jobs of one link of one, with the grid point each is next due on.
type serialGroup struct {
	jobs  []Job
	ticks []time.Time
}

// runSerial runs the jobs of one link of one on this goroutine, always the one that falls due first;
// each keeps its own grid, jitter and skipping of missed ticks.
func (s *Scheduler) runSerial(ctx context.Context, g *serialGroup) {
	due := make([]time.Time, len(g.jobs))
	for i, j := range g.jobs {
		due[i] = g.ticks[i].Add(s.jitter(j))
	}
	for {
		k := 0
		for i := range due {
			if due[i].Before(due[k]) {
				k = i
			}
		}
		if !s.sleep(ctx, due[k].Sub(s.clock.Now())) {
			return
		}
		if j := g.jobs[k]; j.Defer != nil {
			// The other jobs of the link go on meanwhile: the deferred one just falls due later.
			if wait := j.Defer(s.clock.Now()); wait > 0 {
				due[k] = s.clock.Now().Add(wait)
				continue
			}
		}
		if !runOnce(ctx, g.jobs[k]) {
			return
		}
		g.ticks[k] = NextTick(g.ticks[k], s.clock.Now(), g.jobs[k].Interval)
		due[k] = g.ticks[k].Add(s.jitter(g.jobs[k]))
	}
}

func (s *Scheduler) jitter(j Job) time.Duration {
	return s.randomDuration(time.Duration(j.Jitter * float64(j.Interval)))
}

// waitDeferred waits, without the link, for as long as the job defers itself; false once ctx has ended.
func (s *Scheduler) waitDeferred(ctx context.Context, j Job) bool {
	if j.Defer == nil {
		return true
	}
	for {
		wait := j.Defer(s.clock.Now())
		if wait <= 0 {
			return true
		}
		if !s.sleep(ctx, wait) {
			return false
		}
	}
}

// runOnce runs one poll of j: its I/O phase on its link, then its record phase with the link free;
// false once ctx has ended.
func runOnce(ctx context.Context, j Job) bool {
	if j.Link != nil {
		if err := j.Link.Acquire(ctx); err != nil {
			return false
		}
	}
	j.Run(ctx)
	if j.Link != nil {
		j.Link.Release()
	}
	if j.Finish != nil {
		j.Finish(ctx)
	}
	return ctx.Err() == nil
}

func (s *Scheduler) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	ch, stop := s.clock.After(d)
	defer stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// Ticker gives a Loop its ticks: C fires at each grid point (delayed by the jitter); after handling
// one, the loop calls Next, which skips the ticks it missed while busy. Only the loop's goroutine uses
// it.
type Ticker struct {
	s        *Scheduler
	interval time.Duration
	jitter   float64
	tick     time.Time
	ch       <-chan time.Time
	cancel   func()
}

// C is the channel of the next tick.
func (t *Ticker) C() <-chan time.Time { return t.ch }

// Next arms the tick after the one that fired.
func (t *Ticker) Next() {
	t.stop()
	t.tick = NextTick(t.tick, t.s.clock.Now(), t.interval)
	t.arm()
}

func (t *Ticker) arm() {
	d := t.tick.Sub(t.s.clock.Now()) + t.s.randomDuration(time.Duration(t.jitter*float64(t.interval)))
	t.ch, t.cancel = t.s.clock.After(d)
}

func (t *Ticker) stop() {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
}
