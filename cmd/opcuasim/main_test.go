//go:build unix

package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-listen", "nohost"},
		{"-listen", "127.0.0.1:x"},
		{"-cert", "only-cert.pem"},
		{"-users", "nopassword", "-security", "all"},
		{"-security", "Basic256Sha256:Encrypt"},
		{"-users", "a:b"},
	} {
		err := run(append(args, "-update", "0"), &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
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

// TestRunServesUntilSignalled: the simulator serves the plant namespace and stops on SIGTERM.
func TestRunServesUntilSignalled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-listen", "127.0.0.1:" + strconv.Itoa(port), "-extra-namespaces", "urn:x", "-update", "50ms", "-bulk", "2"}, out)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "serving") }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, out.String(), "at index 2")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := opcua.NewClient("opc.tcp://127.0.0.1:"+strconv.Itoa(port), opcua.AutoReconnect(false))
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	v, err := c.Node(ua.NewStringNodeID(2, "Bulk.00001")).Value(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1.0, v.Value())
	require.NoError(t, c.Close(ctx))

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("opcuasim did not stop on SIGTERM")
	}
}
