package modbusreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/otelcol-iiot/otelcol-iiot/internal/clock"
)

// After a doubt an RTU line of known speed is waited out (the longest frame) before it is reopened;
// TCP and RTU over TCP without baud_rate are only closed.
func TestResyncWaitsOutTheLine(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		baud   int
		want   time.Duration
	}{
		{"rtu", 9600, 256*(11*time.Second/9600) + 35*(11*time.Second/9600)/10},              // 297 ms
		{"rtuovertcp", 115200, 256*(11*time.Second/115200) + 35*(11*time.Second/115200)/10}, // 25 ms
		{"rtuovertcp", 0, 0},
		{"tcp", 0, 0},
		{"tcp+tls", 0, 0},
	} {
		clock := clock.NewManual(time.Unix(0, 0))
		c := newConn(&connSpec{scheme: tc.scheme, baud: tc.baud, endpoint: tc.scheme + "://x"}, nil, clock, zap.NewNop())
		c.open = true // as if a request had failed on an open connection
		assert.Equal(t, tc.want, c.quiet(), "%s %d", tc.scheme, tc.baud)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.resync(context.Background())
		}()
		if tc.want > 0 {
			require.Eventually(t, func() bool { return clock.Waiters() == 1 }, 5*time.Second, time.Millisecond)
			assert.False(t, c.open, "closed before the wait")
			clock.Advance(tc.want - time.Nanosecond)
			select {
			case <-done:
				t.Fatalf("%s: resync ended before the line was quiet", tc.scheme)
			default:
			}
			clock.Advance(time.Nanosecond)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: resync did not end", tc.scheme)
		}
		assert.False(t, c.open)
	}
}

// A cancelled poll does not wait the line out.
func TestResyncCancelled(t *testing.T) {
	clock := clock.NewManual(time.Unix(0, 0))
	c := newConn(&connSpec{scheme: "rtu", baud: 1200, endpoint: "rtu:///dev/x"}, nil, clock, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.resync(ctx)
	assert.Zero(t, clock.Waiters())
}
