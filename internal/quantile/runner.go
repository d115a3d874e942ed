package quantile

import (
	"context"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// Runner calls an emit function at every slide boundary (multiples of slide
// since the Unix epoch, so collectors emit in step) from a goroutine it owns.
type Runner struct {
	clock clock.Clock
	slide time.Duration
	emit  func(ctx context.Context, now time.Time)

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// NewRunner returns a Runner; nothing runs before Start.
func NewRunner(clk clock.Clock, slide time.Duration, emit func(ctx context.Context, now time.Time)) *Runner {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Runner{clock: clk, slide: slide, emit: emit}
}

// Start launches the goroutine. Calling it again, or after Stop, does nothing.
func (r *Runner) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil || r.stopped {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.loop(ctx, r.done)
}

// Stop cancels the goroutine (and the context of an emit in progress) and waits
// for it to end, or for ctx to expire. It is safe without Start and idempotent.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NextBoundary is the first slide boundary strictly after now.
func NextBoundary(now time.Time, slide time.Duration) time.Time {
	return time.Unix(0, (SlideIndex(now, slide)+1)*int64(slide))
}

// SlideIndex is the number of whole slides between the Unix epoch and t.
func SlideIndex(t time.Time, slide time.Duration) int64 {
	ns := t.UnixNano()
	s := int64(slide)
	i := ns / s
	if ns%s < 0 {
		i--
	}
	return i
}

func (r *Runner) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		now := r.clock.Now()
		next := NextBoundary(now, r.slide)
		fire, stop := r.clock.After(next.Sub(now))
		select {
		case <-ctx.Done():
			stop()
			return
		case <-fire:
		}
		now = r.clock.Now()
		if now.Before(next) {
			now = next
		}
		r.emit(ctx, now)
	}
}
