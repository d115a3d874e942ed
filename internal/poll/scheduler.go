package poll

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
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
	clock  Clock
	rand   *rand.Rand
	randMu sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	jobs   []Job
}

// NewScheduler returns a scheduler on clock; seed makes jitter repeatable in tests.
func NewScheduler(clock Clock, seed uint64) *Scheduler {
	return &Scheduler{clock: clock, rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Add registers a job; call before Start.
func (s *Scheduler) Add(j Job) { s.jobs = append(s.jobs, j) }

// Start starts every job. The first poll of each job comes at a random phase within its first
// interval, so devices configured together do not all fire at the same instant.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	start := s.clock.Now()
	for _, j := range s.jobs {
		phase := s.randomDuration(j.Interval)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, j, start.Add(phase))
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
		delay := tick.Sub(s.clock.Now()) + s.randomDuration(time.Duration(j.Jitter*float64(j.Interval)))
		if !s.sleep(ctx, delay) {
			return
		}
		runCtx := ctx
		var hold *linkHold
		if j.Link != nil {
			if err := j.Link.Acquire(ctx); err != nil {
				return
			}
			hold = &linkHold{link: j.Link}
			runCtx = context.WithValue(ctx, linkHoldKey{}, hold)
		}
		j.Run(runCtx)
		hold.release()
		if ctx.Err() != nil {
			return
		}
		tick = NextTick(tick, s.clock.Now(), j.Interval)
	}
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
