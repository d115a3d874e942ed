package poll

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// Job is one device's periodic poll.
type Job struct {
	// Interval between polls.
	Interval time.Duration
	// Jitter is the largest random delay added to each tick, as a fraction of Interval (0 to 0.5).
	// It spreads the polls of devices that share an interval, without drifting the schedule.
	Jitter float64
	// Link the poll runs on; nil means the poll needs no shared connection.
	Link *Link
	// Run performs one poll. It is never called concurrently with itself.
	Run func(ctx context.Context)
}

// Scheduler runs jobs on their intervals, one goroutine per job.
type Scheduler struct {
	clock  clock.Clock
	rand   *rand.Rand
	randMu sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	jobs   []Job
}

// NewScheduler returns a scheduler on clock; seed makes jitter repeatable in tests.
func NewScheduler(clock clock.Clock, seed uint64) *Scheduler {
	return &Scheduler{clock: clock, rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Add registers a job; call before Start.
func (s *Scheduler) Add(j Job) { s.jobs = append(s.jobs, j) }

// Start starts every job. The first poll of each job comes at a random phase within its first
// interval, so devices configured together do not all fire at the same instant. Jobs that share a
// link of one (a serial bus, a Modbus connection) run on one goroutine in the order they fall due:
// they could only take turns anyway, and one goroutine spares each turn a hand-over between
// goroutines, which costs more than a short request on a loopback or LAN connection.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	start := s.clock.Now()
	serial := map[*Link]*serialGroup{}
	for _, j := range s.jobs {
		first := start.Add(s.randomDuration(j.Interval))
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

// runOnce runs one poll of j on its link; false once ctx has ended.
func runOnce(ctx context.Context, j Job) bool {
	runCtx := ctx
	var hold *linkHold
	if j.Link != nil {
		if err := j.Link.Acquire(ctx); err != nil {
			return false
		}
		hold = &linkHold{link: j.Link}
		runCtx = context.WithValue(ctx, linkHoldKey{}, hold)
	}
	j.Run(runCtx)
	hold.release()
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

type linkHoldKey struct{}

// linkHold is a poll's hold on its link, released once.
type linkHold struct {
	link     *Link
	released bool
}

func (h *linkHold) release() {
	if h != nil && !h.released {
		h.released = true
		h.link.Release()
	}
}

// ReleaseLink lets the next poll use the link of the poll running under ctx before this one returns:
// a job calls it once its protocol work is done, so that building and emitting the poll's data (which
// may wait on the pipeline) does not keep a bus or connection idle. Calling it again, or under a
// context without a link, does nothing. Call it from the job's goroutine.
func ReleaseLink(ctx context.Context) {
	if h, ok := ctx.Value(linkHoldKey{}).(*linkHold); ok {
		h.release()
	}
}
