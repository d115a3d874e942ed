package poll

import (
	"context"
	"sync"
	"time"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// Link bounds how many polls use one connection or bus at the same time. A serial bus is a Link of
// one with a gap between transactions, so meters on it are polled strictly one after the other.
type Link struct {
	slots   chan struct{}
	clock   clock.Clock
	gap     time.Duration
	mu      sync.Mutex
	freedAt time.Time
}

// NewLink returns a link that admits maxConcurrent polls at a time and keeps at least gap between the
// end of one and the start of the next (gap matters only for a link of one).
func NewLink(clock clock.Clock, maxConcurrent int, gap time.Duration) *Link {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	return &Link{slots: make(chan struct{}, maxConcurrent), clock: clock, gap: gap}
}

// Acquire waits for a free slot (and the inter-frame gap); it fails only when ctx ends.
func (l *Link) Acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if l.gap <= 0 {
		return nil
	}
	l.mu.Lock()
	wait := l.gap - l.clock.Now().Sub(l.freedAt)
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	ch, stop := l.clock.After(wait)
	defer stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		<-l.slots
		return ctx.Err()
	}
}

// Release frees the slot taken by Acquire.
func (l *Link) Release() {
	if l.gap > 0 {
		l.mu.Lock()
		l.freedAt = l.clock.Now()
		l.mu.Unlock()
	}
	<-l.slots
}
