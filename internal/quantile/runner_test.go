package quantile

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSlideIndexAndBoundary(t *testing.T) {
	s := 10 * time.Second
	assert.Equal(t, int64(170_000_000), SlideIndex(t0, s))
	assert.Equal(t, int64(170_000_000), SlideIndex(t0.Add(9999*time.Millisecond), s))
	assert.Equal(t, int64(-1), SlideIndex(time.Unix(-1, 0), s))
	assert.Equal(t, t0.Add(s), NextBoundary(t0, s))
	assert.Equal(t, t0.Add(s), NextBoundary(t0.Add(time.Nanosecond), s))
}

func TestRunnerEmitsAtBoundaries(t *testing.T) {
	clk := clock.NewManual(t0.Add(time.Second))
	var mu sync.Mutex
	var got []time.Time
	r := NewRunner(clk, 10*time.Second, func(ctx context.Context, now time.Time) {
		require.NoError(t, ctx.Err())
		mu.Lock()
		got = append(got, now)
		mu.Unlock()
	})
	r.Start()
	r.Start() // no second goroutine
	emits := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	for i := 1; i <= 3; i++ {
		require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
		if i == 1 {
			clk.Advance(9 * time.Second)
		} else {
			clk.Advance(10 * time.Second)
		}
		require.Eventually(t, func() bool { return emits() == i }, 5*time.Second, time.Millisecond)
	}
	mu.Lock()
	assert.Equal(t, []time.Time{t0.Add(10 * time.Second), t0.Add(20 * time.Second), t0.Add(30 * time.Second)}, got)
	mu.Unlock()
	// a short advance does not emit
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	clk.Advance(5 * time.Second)
	require.NoError(t, r.Stop(context.Background()))
	require.NoError(t, r.Stop(context.Background()))
	assert.Equal(t, 3, emits())
	assert.Equal(t, 0, clk.Waiters(), "timer released")
	r.Start() // after Stop: nothing
	assert.Equal(t, 0, clk.Waiters())
}

func TestRunnerStopWithoutStart(t *testing.T) {
	r := NewRunner(nil, time.Second, func(context.Context, time.Time) {})
	require.NoError(t, r.Stop(context.Background()))
}

func TestRunnerStopHonoursDeadline(t *testing.T) {
	clk := clock.NewManual(t0)
	block := make(chan struct{})
	entered := make(chan struct{})
	r := NewRunner(clk, 10*time.Second, func(context.Context, time.Time) {
		close(entered)
		<-block // an emit that ignores its context
	})
	r.Start()
	require.Eventually(t, func() bool { return clk.Waiters() == 1 }, 5*time.Second, time.Millisecond)
	clk.Advance(10 * time.Second)
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Stop(ctx), context.DeadlineExceeded)
	close(block)
	require.NoError(t, r.Stop(context.Background()))
}
