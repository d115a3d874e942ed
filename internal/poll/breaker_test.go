package poll

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBreakerTransitionsAndBackoffCap(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBreaker(BreakerConfig{FailureThreshold: 3, InitialBackoff: 10 * time.Second, MaxBackoff: 35 * time.Second})

	assert.False(t, b.Failure(now), "1st failure keeps it closed")
	assert.False(t, b.Failure(now), "2nd failure keeps it closed")
	assert.Equal(t, BreakerClosed, b.State())
	assert.True(t, b.Failure(now), "3rd consecutive failure opens it")
	assert.Equal(t, BreakerOpen, b.State())
	assert.Equal(t, 10*time.Second, b.Backoff())

	assert.False(t, b.Allow(now.Add(9*time.Second)), "no poll before the backoff has passed")
	assert.Equal(t, BreakerOpen, b.State())
	require.True(t, b.Allow(now.Add(10*time.Second)), "the probe goes through")
	assert.Equal(t, BreakerHalfOpen, b.State())

	// Failed probes double the backoff up to the cap.
	want := []time.Duration{20 * time.Second, 35 * time.Second, 35 * time.Second}
	at := now.Add(10 * time.Second)
	for i, w := range want {
		assert.True(t, b.Failure(at), "failed probe %d reopens", i)
		assert.Equal(t, BreakerOpen, b.State())
		assert.Equal(t, w, b.Backoff(), "backoff after failed probe %d", i)
		assert.False(t, b.Allow(at.Add(w-time.Millisecond)))
		at = at.Add(w)
		require.True(t, b.Allow(at))
	}

	assert.True(t, b.Success(), "a good probe closes it")
	assert.Equal(t, BreakerClosed, b.State())
	assert.Equal(t, time.Duration(0), b.Backoff())
	assert.False(t, b.Success(), "success when closed is no change")

	// After closing, it again takes the full threshold to open.
	assert.False(t, b.Failure(at))
	assert.False(t, b.Failure(at))
	assert.True(t, b.Failure(at))
	assert.Equal(t, 10*time.Second, b.Backoff(), "backoff starts over after a close")
}

func TestBreakerSuccessResetsConsecutiveCount(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewBreaker(BreakerConfig{FailureThreshold: 2, InitialBackoff: time.Second, MaxBackoff: time.Second})
	b.Failure(now)
	b.Success()
	assert.False(t, b.Failure(now), "failures must be consecutive")
	assert.Equal(t, BreakerClosed, b.State())
}

func TestBreakerDisabled(t *testing.T) {
	b := NewBreaker(BreakerConfig{})
	for range 100 {
		assert.False(t, b.Failure(time.Unix(0, 0)))
	}
	assert.Equal(t, BreakerClosed, b.State())
	assert.True(t, b.Allow(time.Unix(0, 0)))
}

func TestBreakerConfigValidate(t *testing.T) {
	require.NoError(t, NewDefaultBreakerConfig().Validate("breaker"))
	require.NoError(t, BreakerConfig{}.Validate("breaker"), "0 disables the breaker; backoffs are then unused")
	err := BreakerConfig{FailureThreshold: -1}.Validate("breaker")
	require.ErrorContains(t, err, "breaker.failure_threshold")
	err = BreakerConfig{FailureThreshold: 2, InitialBackoff: 0, MaxBackoff: -time.Second}.Validate("devices[0].breaker")
	require.ErrorContains(t, err, "devices[0].breaker.initial_backoff: must be > 0")
	require.ErrorContains(t, err, "devices[0].breaker.max_backoff: must be >= initial_backoff")
}

func TestBreakerStateString(t *testing.T) {
	assert.Equal(t, "closed", BreakerClosed.String())
	assert.Equal(t, "half-open", BreakerHalfOpen.String())
	assert.Equal(t, "open", BreakerOpen.String())
	assert.Equal(t, "BreakerState(7)", BreakerState(7).String())
}
