package transport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFailover(t *testing.T) {
	t0 := time.Unix(0, 0)
	f := NewFailover(3, 2, time.Minute)
	assert.False(t, f.Failed(t0))
	f.Connected() // a connect in between starts the count again
	assert.False(t, f.Failed(t0))
	assert.True(t, f.Failed(t0))
	assert.Equal(t, 1, f.Active())
	assert.False(t, f.FailbackDue(t0.Add(59*time.Second)))
	assert.True(t, f.FailbackDue(t0.Add(time.Minute)))
	b := f.TryFirst()
	assert.Equal(t, 0, f.Active())
	f.Resume(b, t0.Add(time.Minute)) // the first is still down
	assert.Equal(t, 1, f.Active())
	assert.False(t, f.FailbackDue(t0.Add(time.Minute+59*time.Second)))
	f.Failed(t0)
	assert.True(t, f.Failed(t0))
	assert.Equal(t, 2, f.Active())
	f.Failed(t0)
	assert.True(t, f.Failed(t0), "the last wraps to the first")
	assert.Equal(t, 0, f.Active())
	assert.False(t, f.FailbackDue(t0.Add(time.Hour)), "the first is in use")

	one := NewFailover(1, 1, time.Minute)
	assert.False(t, one.Failed(t0))
	assert.False(t, one.FailbackDue(t0.Add(time.Hour)))
}
