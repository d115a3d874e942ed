package poll

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// The record phase runs with the link free: a job still finishing (emitting) does not keep the next
// job on the link from running its I/O.
func TestFinishRunsWithTheLinkReleased(t *testing.T) {
	for _, size := range []int{1, 2} {
		link := NewLink(clock.Real{}, size, 0)
		finish, finishing := make(chan struct{}), make(chan struct{})
		var ioInFinish atomic.Bool
		j := Job{Interval: time.Hour, Link: link,
			Run: func(context.Context) {},
			Finish: func(context.Context) {
				close(finishing)
				// The link is free: taking it here would block if the scheduler still held it.
				require.NoError(t, link.Acquire(context.Background()))
				for range size - 1 {
					require.NoError(t, link.Acquire(context.Background()))
				}
				ioInFinish.Store(true)
				for range size {
					link.Release()
				}
				<-finish
			}}
		done := make(chan struct{})
		go func() { runOnce(context.Background(), j); close(done) }()
		<-finishing
		require.Eventually(t, ioInFinish.Load, 5*time.Second, time.Millisecond, "link of %d still held during Finish", size)
		close(finish)
		<-done
	}
}

// Run holds the link: two jobs on a link of one never run their I/O at once, but one's Finish may
// overlap the other's Run.
func TestRunHoldsTheLink(t *testing.T) {
	link := NewLink(clock.Real{}, 1, 0)
	var inIO, maxIO atomic.Int32
	var finishes atomic.Int32
	job := Job{Interval: time.Hour, Link: link,
		Run: func(context.Context) {
			if n := inIO.Add(1); n > maxIO.Load() {
				maxIO.Store(n)
			}
			time.Sleep(time.Millisecond) //nolint:forbidigo // widen the window in which an overlap would show
			inIO.Add(-1)
		},
		Finish: func(context.Context) { finishes.Add(1) }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); runOnce(context.Background(), job) }()
	}
	wg.Wait()
	assert.Equal(t, int32(1), maxIO.Load())
	assert.Equal(t, int32(8), finishes.Load(), "every Run is followed by its Finish")
}

// A job that defers itself waits without the link: the other jobs of its serial link keep their
// schedule, and the deferred one runs once it stops deferring, then returns to its grid.
func TestDeferredJobDoesNotHoldItsSerialLink(t *testing.T) {
	clk := clock.NewManual(time.Unix(0, 0))
	s := NewScheduler(clk, 5)
	link := NewLink(clk, 1, 0)
	var mu sync.Mutex
	var polls, syncs []time.Time
	holdUntil := time.Unix(0, 0).Add(35 * time.Second)
	s.Add(Job{Interval: time.Second, Link: link, Run: func(context.Context) {
		mu.Lock()
		polls = append(polls, clk.Now())
		mu.Unlock()
	}})
	s.Add(Job{Interval: 20 * time.Second, Link: link,
		Defer: func(now time.Time) time.Duration {
			if now.Before(holdUntil) {
				return holdUntil.Sub(now)
			}
			return 0
		},
		Run: func(context.Context) {
			mu.Lock()
			syncs = append(syncs, clk.Now())
			mu.Unlock()
		}})
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	stepClock(t, clk, 1, 100*time.Millisecond, 700)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(polls), 68)
	for k := 1; k < len(polls); k++ {
		assert.Equal(t, time.Second, polls[k].Sub(polls[k-1]), "the poll keeps its period while the other job defers")
	}
	require.NotEmpty(t, syncs)
	assert.Equal(t, holdUntil, syncs[0], "the deferred job runs when it stops deferring")
	require.GreaterOrEqual(t, len(syncs), 3)
	assert.Less(t, syncs[1].Sub(syncs[0]), 20*time.Second, "then back on its grid, not an interval after the deferred run")
	assert.Equal(t, 20*time.Second, syncs[2].Sub(syncs[1]))
}

// A job with a link of its own (not serial) also defers without holding the link.
func TestDeferredJobWaitsWithoutTheLink(t *testing.T) {
	clk := clock.NewManual(time.Unix(0, 0))
	s := NewScheduler(clk, 5)
	link := NewLink(clk, 2, 0)
	ran := make(chan time.Time, 4)
	s.Add(Job{Interval: 10 * time.Second, Link: link,
		Defer: func(now time.Time) time.Duration {
			if now.Before(time.Unix(30, 0)) {
				return time.Unix(30, 0).Sub(now)
			}
			return 0
		},
		Run: func(context.Context) { ran <- clk.Now() }})
	s.Start(context.Background())
	defer s.Stop()
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	clk.Advance(10 * time.Second) // the first tick: deferred
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	// While it waits, both slots of the link are free.
	require.NoError(t, link.Acquire(context.Background()))
	require.NoError(t, link.Acquire(context.Background()))
	link.Release()
	link.Release()
	select {
	case <-ran:
		t.Fatal("ran while deferring")
	default:
	}
	clk.Advance(20 * time.Second)
	select {
	case at := <-ran:
		assert.Equal(t, time.Unix(30, 0), at)
	case <-time.After(5 * time.Second):
		t.Fatal("the deferred job did not run")
	}
}

// A loop gets its ticks on the grid, skips the ones it missed while busy, and ends with Stop.
func TestLoopTicksOnItsGrid(t *testing.T) {
	clk := clock.NewManual(time.Unix(0, 0))
	s := NewScheduler(clk, 9)
	var mu sync.Mutex
	var ticks []time.Time
	events := make(chan struct{})
	handled := make(chan struct{}, 1)
	ended := make(chan struct{})
	s.AddLoop(Loop{Interval: time.Second, Run: func(ctx context.Context, tk *Ticker) {
		defer close(ended)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C():
				mu.Lock()
				ticks = append(ticks, clk.Now())
				n := len(ticks)
				mu.Unlock()
				if n == 2 {
					clk.Advance(2500 * time.Millisecond) // this tick's work overruns 2.5 intervals
				}
				tk.Next()
			case <-events:
				handled <- struct{}{}
			}
		}
	}})
	s.Start(context.Background())
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	events <- struct{}{} // the loop serves its own events between ticks
	<-handled
	stepClock(t, clk, 1, 10*time.Millisecond, 800)
	s.Stop()
	<-ended
	assert.Zero(t, clk.Waiters(), "the ticker's timer is stopped")
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(ticks), 5)
	assert.Less(t, ticks[0].Sub(time.Unix(0, 0)), time.Second, "first tick within the first interval")
	assert.Equal(t, time.Second, ticks[1].Sub(ticks[0]))
	assert.Equal(t, 3*time.Second, ticks[2].Sub(ticks[1]), "the missed ticks are skipped")
	for k := 3; k < len(ticks); k++ {
		assert.Equal(t, time.Second, ticks[k].Sub(ticks[k-1]))
	}
}
