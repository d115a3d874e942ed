package poll

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

func TestNextTickSkipsMissedTicks(t *testing.T) {
	base := time.Unix(100, 0)
	iv := 10 * time.Second
	assert.Equal(t, base.Add(iv), NextTick(base, base.Add(3*time.Second), iv), "on time: the next grid point")
	assert.Equal(t, base.Add(3*iv), NextTick(base, base.Add(25*time.Second), iv), "overran 2.5 intervals: skip to the next grid point ahead")
	assert.Equal(t, base.Add(2*iv), NextTick(base, base.Add(iv), iv), "exactly on a grid point: the one after")
}

// stepClock advances a manual clock in small steps and lets the scheduler's goroutines run after each.
func stepClock(t *testing.T, c *clock.Manual, parked int, step time.Duration, steps int) {
	t.Helper()
	for range steps {
		c.Advance(step)
		require.Eventually(t, func() bool { return c.Waiters() >= parked }, 5*time.Second, time.Millisecond)
	}
}

func TestSchedulerIntervalAndJitterBounds(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	clock := clock.NewManual(start)
	s := NewScheduler(clock, 42)
	const interval = 10 * time.Second
	const jitter = 0.2
	var mu sync.Mutex
	var runs []time.Time
	s.Add(Job{Interval: interval, Jitter: jitter, Run: func(context.Context) {
		mu.Lock()
		runs = append(runs, clock.Now())
		mu.Unlock()
	}})
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, func() bool { return clock.Waiters() == 1 }, 5*time.Second, time.Millisecond)

	const step = 50 * time.Millisecond
	stepClock(t, clock, 1, step, int(205*time.Second/step))

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(runs), 19)
	first := runs[0]
	assert.Less(t, first.Sub(start), interval+time.Duration(jitter*float64(interval))+step, "first poll within the first interval (+jitter)")
	// Each run k sits on the grid first+k*interval, delayed by at most the jitter: no drift.
	phase := first
	maxJ := time.Duration(jitter * float64(interval))
	sawDelay := false
	for k, r := range runs {
		grid := phase.Add(time.Duration(k) * interval)
		delay := r.Sub(grid)
		assert.GreaterOrEqual(t, delay, -maxJ-step, "run %d too early", k)
		assert.LessOrEqual(t, delay, maxJ+step, "run %d later than its jitter allows", k)
		if delay > 2*step || delay < -2*step {
			sawDelay = true
		}
	}
	assert.True(t, sawDelay, "jitter moves polls around the grid")
}

// Devices polled at one interval fall due on one tick (a random phase of the interval, shared), so
// their records reach the pipeline together; jitter still spreads each tick.
func TestSchedulerAlignsFirstPolls(t *testing.T) {
	for _, jitter := range []float64{0, 0.05} {
		t.Run(fmt.Sprintf("jitter=%v", jitter), func(t *testing.T) {
			start := time.Unix(0, 0)
			clock := clock.NewManual(start)
			s := NewScheduler(clock, 7)
			var mu sync.Mutex
			first := map[int]time.Time{}
			const n = 20
			intervals := []time.Duration{10 * time.Second, 30 * time.Second}
			for i := range n {
				s.Add(Job{Interval: intervals[i%2], Jitter: jitter, Run: func(context.Context) {
					mu.Lock()
					if _, ok := first[i]; !ok {
						first[i] = clock.Now()
					}
					mu.Unlock()
				}})
			}
			s.Start(context.Background())
			defer s.Stop()
			require.Eventually(t, func() bool { return clock.Waiters() == n }, 5*time.Second, time.Millisecond)
			const step = 10 * time.Millisecond
			stepClock(t, clock, n, step, int(12*time.Second/step))
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, first, n, "every job's first poll within the shortest interval (+jitter)")
			lo, hi := first[0], first[0]
			for _, f := range first {
				if f.Before(lo) {
					lo = f
				}
				if f.After(hi) {
					hi = f
				}
			}
			assert.Greater(t, lo.Sub(start), time.Duration(0), "the shared phase is random, here not 0")
			maxJ := time.Duration(jitter * float64(30*time.Second)) // of the longest interval
			assert.LessOrEqual(t, hi.Sub(lo), maxJ+step, "first polls on one tick, spread by the jitter only")
			if jitter > 0 {
				assert.Greater(t, hi.Sub(lo), 2*step, "jitter spreads the tick")
			}
		})
	}
}

func TestLinkBoundsConcurrency(t *testing.T) {
	link := NewLink(clock.Real{}, 3, 0)
	var inFlight, maxSeen atomic.Int32
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, link.Acquire(context.Background()))
			n := inFlight.Add(1)
			for {
				m := maxSeen.Load()
				if n <= m || maxSeen.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			inFlight.Add(-1)
			link.Release()
		}()
	}
	require.Eventually(t, func() bool { return inFlight.Load() == 3 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int32(3), maxSeen.Load(), "never more than the link's limit at once")
}

func TestSerialLinkKeepsGapBetweenTransactions(t *testing.T) {
	clock := clock.NewManual(time.Unix(0, 0))
	link := NewLink(clock, 1, 50*time.Millisecond)
	require.NoError(t, link.Acquire(context.Background()))
	acquired := make(chan struct{})
	go func() {
		assert.NoError(t, link.Acquire(context.Background()))
		close(acquired)
	}()
	link.Release()
	// The second transaction waits for the inter-frame gap.
	require.Eventually(t, func() bool { return clock.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	select {
	case <-acquired:
		t.Fatal("acquired before the gap passed")
	default:
	}
	clock.Advance(49 * time.Millisecond)
	select {
	case <-acquired:
		t.Fatal("acquired before the gap passed")
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(time.Millisecond)
	select {
	case <-acquired:
	case <-time.After(5 * time.Second):
		t.Fatal("not acquired after the gap")
	}
	link.Release()
}

func TestLinkAcquireHonoursContext(t *testing.T) {
	link := NewLink(clock.Real{}, 1, 0)
	require.NoError(t, link.Acquire(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, link.Acquire(ctx), context.Canceled)
	link.Release()
}

func TestSchedulerStopWithoutStartAndTwice(t *testing.T) {
	s := NewScheduler(clock.Real{}, 1)
	s.Stop()
	s.Add(Job{Interval: time.Hour, Run: func(context.Context) {}})
	s.Start(context.Background())
	s.Stop()
	s.Stop()
}

func TestSchedulerSkipsTicksOfAnOverrunningPoll(t *testing.T) {
	clock := clock.NewManual(time.Unix(0, 0))
	s := NewScheduler(clock, 3)
	var mu sync.Mutex
	var starts []time.Time
	s.Add(Job{Interval: time.Second, Run: func(context.Context) {
		mu.Lock()
		starts = append(starts, clock.Now())
		n := len(starts)
		mu.Unlock()
		if n == 1 {
			clock.Advance(3500 * time.Millisecond) // the first poll takes 3.5 intervals
		}
	}})
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, func() bool { return clock.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	stepClock(t, clock, 1, 10*time.Millisecond, 600)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(starts), 3)
	// The three missed ticks are dropped: the next poll comes at the next grid point (4 intervals
	// after the first), not back to back at once.
	assert.Equal(t, 4*time.Second, starts[1].Sub(starts[0]))
	assert.Equal(t, time.Second, starts[2].Sub(starts[1]))
}

func TestSchedulerRunsJobsOfASerialLinkInDueOrderOnTheirOwnGrids(t *testing.T) {
	clock := clock.NewManual(time.Unix(0, 0))
	s := NewScheduler(clock, 11)
	link := NewLink(clock, 1, 0)
	var mu sync.Mutex
	runs := map[int][]time.Time{}
	var inFlight atomic.Int32
	const n = 4
	for i := range n {
		s.Add(Job{Interval: time.Second, Link: link, Run: func(context.Context) {
			if inFlight.Add(1) != 1 {
				t.Error("two polls on a link of one at once")
			}
			mu.Lock()
			runs[i] = append(runs[i], clock.Now())
			mu.Unlock()
			inFlight.Add(-1)
		}})
	}
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, func() bool { return clock.Waiters() == 1 }, 5*time.Second, time.Millisecond, "one goroutine waits for the whole link")
	stepClock(t, clock, 1, 10*time.Millisecond, 1000)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, runs, n)
	for i, rs := range runs {
		require.GreaterOrEqual(t, len(rs), 9, "job %d", i)
		for k := 1; k < len(rs); k++ {
			assert.Equal(t, time.Second, rs[k].Sub(rs[k-1]), "job %d keeps its own period", i)
		}
	}
}
