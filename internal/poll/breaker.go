package poll

import (
	"errors"
	"fmt"
	"time"
)

// BreakerState is the state of a device's circuit breaker, as reported by iiot.device.breaker.state.
type BreakerState int64

const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("BreakerState(%d)", int64(s))
}

// BreakerConfig sets when a device's breaker opens and how long it waits before probing again.
type BreakerConfig struct {
	// FailureThreshold is how many consecutive failed polls open the breaker; 0 disables the breaker.
	FailureThreshold int `mapstructure:"failure_threshold"`
	// InitialBackoff is how long the breaker stays open before the first probe.
	InitialBackoff time.Duration `mapstructure:"initial_backoff"`
	// MaxBackoff caps the wait, which doubles after each failed probe.
	MaxBackoff time.Duration `mapstructure:"max_backoff"`
}

// NewDefaultBreakerConfig opens after 3 failed polls and probes after 10s, 20s, … up to 5m.
func NewDefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{FailureThreshold: 3, InitialBackoff: 10 * time.Second, MaxBackoff: 5 * time.Minute}
}

// Validate reports every problem; prefix is the config key the breaker sits under (e.g. "breaker").
func (c BreakerConfig) Validate(prefix string) error {
	var errs []error
	if c.FailureThreshold < 0 {
		errs = append(errs, fmt.Errorf("%s.failure_threshold: must be >= 0 (0 disables the breaker), got %d", prefix, c.FailureThreshold))
	}
	if c.FailureThreshold > 0 {
		if c.InitialBackoff <= 0 {
			errs = append(errs, fmt.Errorf("%s.initial_backoff: must be > 0, got %s", prefix, c.InitialBackoff))
		}
		if c.MaxBackoff < c.InitialBackoff {
			errs = append(errs, fmt.Errorf("%s.max_backoff: must be >= initial_backoff (%s), got %s", prefix, c.InitialBackoff, c.MaxBackoff))
		}
	}
	return errors.Join(errs...)
}

// Breaker is a per-device circuit breaker. Consecutive failures open it; once the backoff has passed
// one probe is let through (half-open); a successful probe closes it, a failed one reopens it with the
// backoff doubled up to MaxBackoff. It is used by the single goroutine that polls the device.
type Breaker struct {
	cfg       BreakerConfig
	state     BreakerState
	failures  int
	backoff   time.Duration
	openUntil time.Time
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker { return &Breaker{cfg: cfg} }

// State returns the current state.
func (b *Breaker) State() BreakerState { return b.state }

// Backoff returns how long the breaker stays open this time (0 when closed).
func (b *Breaker) Backoff() time.Duration { return b.backoff }

// Allow tells whether a poll may run now. An open breaker whose backoff has passed turns half-open
// and lets this one poll through as the probe.
func (b *Breaker) Allow(now time.Time) bool {
	switch b.state {
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return false
		}
		b.state = BreakerHalfOpen
		return true
	default:
		return true
	}
}

// Success records a poll the device answered; it returns true if that changed the state.
func (b *Breaker) Success() bool {
	changed := b.state != BreakerClosed
	b.state, b.failures, b.backoff = BreakerClosed, 0, 0
	return changed
}

// Failure records a poll the device did not answer; it returns true if that changed the state.
func (b *Breaker) Failure(now time.Time) bool {
	if b.cfg.FailureThreshold <= 0 {
		return false
	}
	b.failures++
	switch b.state {
	case BreakerHalfOpen:
		b.backoff = min(2*b.backoff, b.cfg.MaxBackoff)
	case BreakerClosed:
		if b.failures < b.cfg.FailureThreshold {
			return false
		}
		b.backoff = b.cfg.InitialBackoff
	case BreakerOpen:
		return false
	}
	b.state = BreakerOpen
	b.openUntil = now.Add(b.backoff)
	return true
}

// Reachable turns an open breaker half-open at once, before its backoff has passed: the device was
// seen coming back (a cheap probe reached it), so the next poll is the probe poll. It returns false
// if the breaker was not open.
func (b *Breaker) Reachable() bool {
	if b.state != BreakerOpen {
		return false
	}
	b.state = BreakerHalfOpen
	return true
}
