package opcuareceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestRequestTimeoutCoversKeepAlive: the client's request timeout (the Publish requests' TimeoutHint)
// is twice the subscription's keep-alive period, so a server answers a quiet subscription with its
// keep-alive before the hint runs out (a BadTimeout fault would end the client's connection).
func TestRequestTimeoutCoversKeepAlive(t *testing.T) {
	tests := []struct {
		name    string
		mode    Mode
		timeout time.Duration
		publish time.Duration
		keep    uint32
		want    time.Duration
	}{
		{"poll mode keeps poll.timeout", ModePoll, 2 * time.Second, time.Second, 10, 2 * time.Second},
		{"subscribe: twice the keep-alive period", ModeSubscribe, 2 * time.Second, time.Second, 10, 20 * time.Second},
		{"subscribe: e2e settings", ModeSubscribe, time.Second, 200 * time.Millisecond, 10, 4 * time.Second},
		{"subscribe: poll.timeout when longer", ModeSubscribe, 5 * time.Second, 100 * time.Millisecond, 2, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Mode = tt.mode
			cfg.Poll.Timeout = tt.timeout
			cfg.Subscription.PublishingInterval = tt.publish
			cfg.Subscription.KeepAliveCount = tt.keep
			r := &opcuaReceiver{cfg: cfg}
			assert.Equal(t, tt.want, r.requestTimeout())
		})
	}
}
