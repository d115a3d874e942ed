package device

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestSettingsDefaultsValidate(t *testing.T) {
	require.NoError(t, NewDefaultSettings().Validate())
}

func TestSettingsReportsEveryProblem(t *testing.T) {
	s := NewDefaultSettings()
	s.Poll = PollConfig{Interval: time.Second, Timeout: 5 * time.Second, Jitter: 0.9, Retries: 11}
	s.Breaker.InitialBackoff = 0
	s.Traces.SuccessSampleRatio = 2
	err := s.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"poll.jitter: must be between 0 and 0.5",
		"poll.retries: must be between 0 and 10",
		"poll.timeout: 5s is longer than the poll interval 1s",
		"breaker.initial_backoff: must be > 0",
		"traces.success_sample_ratio: must be between 0 and 1, got 2",
	} {
		assert.ErrorContains(t, err, want)
	}
}

func TestPollConfigMerge(t *testing.T) {
	base := NewDefaultPollConfig()
	got := base.Merge(PollConfig{Timeout: 500 * time.Millisecond})
	assert.Equal(t, base.Interval, got.Interval)
	assert.Equal(t, 500*time.Millisecond, got.Timeout)
	assert.Equal(t, base.Retries, got.Retries)
}

func TestSettingsUnmarshal(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"poll":    map[string]any{"interval": "30s", "timeout": "1s"},
		"breaker": map[string]any{"failure_threshold": 5},
		"metrics": map[string]any{"iiot.device.requests": map[string]any{"enabled": false}},
	})
	s := NewDefaultSettings()
	require.NoError(t, conf.Unmarshal(&s))
	assert.Equal(t, 30*time.Second, s.Poll.Interval)
	assert.Equal(t, time.Second, s.Poll.Timeout)
	assert.Equal(t, 1, s.Poll.Retries, "unset keys keep their defaults")
	assert.Equal(t, 5, s.Breaker.FailureThreshold)
	assert.False(t, s.Metrics.Requests.Enabled)
	assert.True(t, s.Metrics.Up.Enabled)
}

func TestIDsRequiredAndUnique(t *testing.T) {
	ids := IDs{}
	prefix, err := ids.Check("devices[0]", "m1")
	require.NoError(t, err)
	assert.Equal(t, `devices[0] "m1": `, prefix)
	_, err = ids.Check("devices[1]", "m1")
	assert.EqualError(t, err, `devices[1] "m1": id: "m1" is already used by devices[0]`)
	prefix, err = ids.Check("devices[2]", "")
	assert.Equal(t, "devices[2]: ", prefix)
	assert.EqualError(t, err, "devices[2]: id: required (it becomes the device.id resource attribute)")
}
