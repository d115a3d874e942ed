package device

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestSettingsDefaultsValidate(t *testing.T) {
	require.NoError(t, NewDefaultSettings().Validate(""))
}

func TestSettingsReportsEveryProblem(t *testing.T) {
	s := NewDefaultSettings()
	s.Poll = PollConfig{Interval: time.Second, Timeout: 5 * time.Second, Jitter: 0.9, Retries: 11, HealthInterval: -time.Second}
	s.Breaker.InitialBackoff = 0
	s.Traces.SuccessSampleRatio = 2
	err := s.Validate("")
	require.Error(t, err)
	for _, want := range []string{
		"poll.jitter: must be between 0 and 0.5",
		"poll.retries: must be between 0 and 10",
		"poll.timeout: 5s is longer than the poll interval 1s",
		"poll.health_interval: must be >= 0 (0 sends every health series at every poll), got -1s",
		"breaker.initial_backoff: must be > 0",
		"traces.success_sample_ratio: must be between 0 and 1, got 2",
	} {
		assert.ErrorContains(t, err, want)
	}
}

// poll.health_interval defaults to a minute; 0 is a value (every poll), not "unset".
func TestHealthIntervalKey(t *testing.T) {
	assert.Equal(t, time.Minute, NewDefaultSettings().Poll.HealthInterval)
	for raw, want := range map[string]time.Duration{"0s": 0, "2m": 2 * time.Minute} {
		s := NewDefaultSettings()
		require.NoError(t, confmap.NewFromStringMap(map[string]any{"poll": map[string]any{"health_interval": raw}}).Unmarshal(&s))
		assert.Equal(t, want, s.Poll.HealthInterval, raw)
		assert.Equal(t, 10*time.Second, s.Poll.Interval, "the other poll keys keep their defaults")
		require.NoError(t, s.Validate(""))
	}
}

// Each bad key is one message: a negative interval used to be reported by Validate and again by
// ValidateEffective.
func TestSettingsReportEachProblemOnce(t *testing.T) {
	s := NewDefaultSettings()
	s.Poll = PollConfig{Interval: -time.Second, Timeout: -time.Second, Jitter: -1, Retries: -1}
	err := s.Validate("")
	require.Error(t, err)
	for _, key := range []string{"poll.interval:", "poll.timeout:", "poll.jitter:", "poll.retries:"} {
		assert.Equal(t, 1, strings.Count(err.Error(), key), "%s in\n%v", key, err)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), 4)
}

// Settings is embedded with squash in every receiver's Config, whose Validate reports the settings'
// problems: were Settings a confmap.Validator too, confmap.Validate would report them twice.
func TestSettingsIsNotAConfmapValidator(t *testing.T) {
	_, ok := any(Settings{}).(confmap.Validator)
	assert.False(t, ok)
	_, ok = any(&Settings{}).(confmap.Validator)
	assert.False(t, ok)
}

func TestLayer(t *testing.T) {
	assert.Equal(t, 1, Layer(1), "no level: the base")
	assert.Equal(t, 1, Layer(1, nil, nil))
	assert.Equal(t, 0, Layer(1, Ptr(0)), "0 is a value")
	assert.Equal(t, 3, Layer(1, Ptr(2), Ptr(3)), "the most specific level wins")
	assert.Equal(t, 2, Layer(1, Ptr(2), nil), "an unset level inherits")
	assert.Equal(t, 0, Layer(1, nil, Ptr(0), nil))
	assert.False(t, Layer(true, Ptr(false)))
}

func TestLayerSet(t *testing.T) {
	assert.Equal(t, "ABCD", LayerSet("ABCD"), "no level: the base")
	assert.Equal(t, "ABCD", LayerSet("ABCD", "", ""), "empty is unset")
	assert.Equal(t, "DCBA", LayerSet("ABCD", "CDAB", "DCBA"), "the most specific level wins")
	assert.Equal(t, "CDAB", LayerSet("ABCD", "CDAB", ""), "an unset level inherits")
	assert.Equal(t, KindSum, LayerSet(KindGauge, "", KindSum))
}

func TestMetricKindValidate(t *testing.T) {
	for _, k := range []MetricKind{"", KindGauge, KindSum} {
		assert.NoError(t, k.Validate("x."))
	}
	assert.EqualError(t, MetricKind("histogram").Validate("fields[1] \"x\": "), `fields[1] "x": kind: unknown "histogram" (want gauge or sum)`)
}

func TestPollOverride(t *testing.T) {
	recv := PollConfig{Interval: 10 * time.Second, Jitter: 0.1, Timeout: 2 * time.Second, Retries: 1}
	for _, tc := range []struct {
		name   string
		levels []PollOverrides
		want   PollConfig
	}{
		{"unset inherits", []PollOverrides{{}}, recv},
		{"no level", nil, recv},
		{"retries 0 overrides 1", []PollOverrides{{Retries: Ptr(0)}}, PollConfig{Interval: 10 * time.Second, Jitter: 0.1, Timeout: 2 * time.Second, Retries: 0}},
		{"jitter 0 overrides 0.1", []PollOverrides{{Jitter: Ptr(0.0)}}, PollConfig{Interval: 10 * time.Second, Jitter: 0, Timeout: 2 * time.Second, Retries: 1}},
		{"profile between receiver and device", []PollOverrides{{Retries: Ptr(3), Timeout: Ptr(time.Second)}, {Retries: Ptr(0)}},
			PollConfig{Interval: 10 * time.Second, Jitter: 0.1, Timeout: time.Second, Retries: 0}},
		{"device unset keeps the profile's", []PollOverrides{{Retries: Ptr(3)}, {Interval: Ptr(time.Minute)}},
			PollConfig{Interval: time.Minute, Jitter: 0.1, Timeout: 2 * time.Second, Retries: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, recv.Override(tc.levels...))
		})
	}
}

// mapstructure tells a key set to 0 from a key left out (or null), durations included.
func TestPollOverridesUnmarshal(t *testing.T) {
	var zero PollOverrides
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"retries": 0, "jitter": 0, "timeout": "0s"}).Unmarshal(&zero))
	assert.Equal(t, PollOverrides{Retries: Ptr(0), Jitter: Ptr(0.0), Timeout: Ptr(time.Duration(0))}, zero)

	var some PollOverrides
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"interval": "1m", "retries": nil}).Unmarshal(&some))
	assert.Equal(t, PollOverrides{Interval: Ptr(time.Minute)}, some)
}

func TestPollOverridesValidate(t *testing.T) {
	recv := PollConfig{Interval: 10 * time.Second, Jitter: 0.1, Timeout: 2 * time.Second, Retries: 1}
	assert.NoError(t, PollOverrides{}.Validate("d: poll.", recv))
	assert.NoError(t, PollOverrides{Retries: Ptr(0), Jitter: Ptr(0.0)}.Validate("d: poll.", recv))
	assert.EqualError(t, PollOverrides{Interval: Ptr(time.Duration(0))}.Validate("d: poll.", recv),
		"d: poll.interval: must be > 0 (leave it out to inherit), got 0s")
	assert.EqualError(t, PollOverrides{Timeout: Ptr(time.Duration(0))}.Validate("d: poll.", recv),
		"d: poll.timeout: must be > 0 (leave it out to inherit), got 0s")
	assert.EqualError(t, PollOverrides{Retries: Ptr(11), Jitter: Ptr(0.6)}.Validate("d: poll.", recv),
		"d: poll.jitter: must be between 0 and 0.5 (a fraction of interval), got 0.6\nd: poll.retries: must be between 0 and 10, got 11")
	assert.EqualError(t, PollOverrides{Interval: Ptr(time.Second)}.Validate("d: poll.", recv),
		"d: poll.timeout: 2s is longer than the poll interval 1s", "the inherited timeout no longer fits")
	assert.NoError(t, PollOverrides{Retries: Ptr(2)}.Validate("d: poll.", PollConfig{Interval: time.Second, Timeout: 5 * time.Second}),
		"the receiver's own problem is reported once, by the receiver")
}

func TestSettingsUnmarshal(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"poll":    map[string]any{"interval": "30s", "timeout": "1s"},
		"breaker": map[string]any{"failure_threshold": 5},
	})
	s := NewDefaultSettings()
	require.NoError(t, conf.Unmarshal(&s))
	assert.Equal(t, 30*time.Second, s.Poll.Interval)
	assert.Equal(t, time.Second, s.Poll.Timeout)
	assert.Equal(t, 1, s.Poll.Retries, "unset keys keep their defaults")
	assert.Equal(t, 5, s.Breaker.FailureThreshold)
	// The `metrics` key belongs to each receiver's generated config (see their health tests).
}

func TestIDsRequiredAndUnique(t *testing.T) {
	ids := IDs{}
	prefix, err := ids.Validate("devices[0]", "m1")
	require.NoError(t, err)
	assert.Equal(t, `devices[0] "m1": `, prefix)
	_, err = ids.Validate("devices[1]", "m1")
	assert.EqualError(t, err, `devices[1] "m1": id: "m1" is already used by devices[0]`)
	prefix, err = ids.Validate("devices[2]", "")
	assert.Equal(t, "devices[2]: ", prefix)
	assert.EqualError(t, err, "devices[2]: id: required (it becomes the device.id resource attribute)")
}
