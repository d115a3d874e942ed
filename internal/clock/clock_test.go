package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReal(t *testing.T) {
	var c Clock = Real{}
	assert.WithinDuration(t, time.Now(), c.Now(), time.Second)
	ch, stop := c.After(time.Millisecond)
	<-ch
	stop()
}

func TestManual(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewManual(t0)
	now, _ := c.After(0)
	require.Equal(t, t0, <-now, "a timer of zero fires at once")
	a, _ := c.After(time.Second)
	b, stopB := c.After(2 * time.Second)
	require.Equal(t, 2, c.Waiters())
	c.Advance(999 * time.Millisecond)
	select {
	case <-a:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Millisecond)
	assert.Equal(t, t0.Add(time.Second), <-a)
	stopB()
	assert.Equal(t, 0, c.Waiters(), "a stopped timer is gone")
	c.Advance(time.Hour)
	select {
	case <-b:
		t.Fatal("a stopped timer fired")
	default:
	}
	assert.Equal(t, t0.Add(time.Hour+time.Second), c.Now())
}
