package poll

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// A job that releases its link once its protocol work is done lets the next job on the link run
// while it finishes (building and emitting its data).
func TestReleaseLinkFreesLinkEarly(t *testing.T) {
	link := NewLink(clock.Real{}, 1, 0)
	s := NewScheduler(clock.Real{}, 1)
	finish, started := make(chan struct{}), make(chan struct{})
	otherRan := make(chan struct{}, 1)
	first := true
	s.Add(Job{Interval: time.Hour, Link: link, Run: func(ctx context.Context) {
		if !first {
			return
		}
		first = false
		close(started)
		ReleaseLink(ctx)
		ReleaseLink(ctx) // a second call does nothing
		<-finish         // still "emitting"
	}})
	s.Add(Job{Interval: time.Hour, Link: link, Run: func(ctx context.Context) {
		select {
		case otherRan <- struct{}{}:
		default:
		}
	}})
	// Start both at once: an hour-long interval puts the first polls at random phases, so run the
	// jobs' first polls by hand instead through the scheduler's loop with a zero tick.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	go func() { s.run(ctx, s.jobs[0], time.Now()); done <- struct{}{} }()
	<-started // the first job holds the link
	go func() { s.run(ctx, s.jobs[1], time.Now()); done <- struct{}{} }()
	select {
	case <-otherRan:
	case <-time.After(5 * time.Second):
		t.Fatal("the second job did not get the link while the first was still running")
	}
	close(finish)
	cancel()
	<-done
	<-done
	ReleaseLink(context.Background()) // no link in the context: nothing happens
	require.NoError(t, link.Acquire(context.Background()))
	link.Release()
}
