package dlt645sim

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dlt645"
)

func TestDemoConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(DemoConfig))
	require.NoError(t, err)
	meters, animated, err := cfg.BuildMeters()
	require.NoError(t, err)
	require.Len(t, meters, 4)
	require.Len(t, animated, 4)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Run serves the demo meters on TCP until its context ends, then reports what it served.
func TestRunServesDemoMeters(t *testing.T) {
	cfg, err := ParseConfig([]byte(DemoConfig))
	require.NoError(t, err)
	cfg.Listen = "127.0.0.1:0"
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, "", &out) }()

	re := regexp.MustCompile(`serving TCP on (\S+)`)
	var addr string
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "output: %s", &out)
	require.Contains(t, out.String(), "meter 000000000001 (DL/T 645-2007)")
	require.Contains(t, out.String(), "meter 000000001997 (DL/T 645-1997)")

	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	cl := dlt645.NewClient(c)
	cl.Gap = 0
	cl.Timeout = 2 * time.Second
	a, err := dlt645.ParseAddress("000000000001")
	require.NoError(t, err)
	r, err := cl.Read(context.Background(), dlt645.V2007, a, 0x02010100)
	require.NoError(t, err)
	e, _ := dlt645.Builtin().Lookup(dlt645.V2007, 0x02010100)
	v, err := e.Format.Decode(r.Value)
	require.NoError(t, err)
	require.InDelta(t, 220, v, 15, "phase A voltage of the first demo meter")

	cancel()
	require.NoError(t, <-done)
	require.Regexp(t, `served [1-9]\d* requests, [1-9]\d* replies`, out.String())
}

func TestRunRefusesBusyAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	cfg, err := ParseConfig([]byte(DemoConfig))
	require.NoError(t, err)
	cfg.Listen = l.Addr().String()
	require.ErrorContains(t, Run(context.Background(), cfg, "", &syncBuffer{}), "address already in use")
}
