package dtu

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-iiot/otelcol-iiot/internal/dtu/dtutest"
)

func freeEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func unstarted(t *testing.T, cfg *Config, ids ...string) *Listener {
	t.Helper()
	l, err := New(context.Background(), *cfg, ids, Settings{})
	require.NoError(t, err)
	return l
}

// Two users of one endpoint share its listener; each user's ids are known while it is there; a
// user's leave ends its DTUs' sessions and forgets them; the last leave closes the port. Another
// user of an id, or other settings, are refused naming both.
func TestRegistryShares(t *testing.T) {
	reg := NewRegistry()
	cfg := defaults(func(c *Config) { c.Endpoint = freeEndpoint(t) })
	a, leaveA, err := reg.Join("receiver modbus", unstarted(t, cfg, "a"))
	require.NoError(t, err)
	b, leaveB, err := reg.Join("receiver dlt645", unstarted(t, cfg, "b"))
	require.NoError(t, err)
	require.Same(t, a, b)

	_, _, err = reg.Join("receiver dlt645/2", unstarted(t, cfg, "a"))
	require.EqualError(t, err, `dtu: DTU "a" on `+cfg.Endpoint+` is bound to receiver modbus and to receiver dlt645/2; a DTU is one line, polled by one receiver`)
	other := defaults(func(c *Config) { c.Endpoint = cfg.Endpoint; c.Heartbeat = PatternConfig{Text: "BEAT"} })
	_, _, err = reg.Join("receiver modbus/2", unstarted(t, other, "c"))
	require.EqualError(t, err, "dtu: receiver modbus/2 listens on "+cfg.Endpoint+" with other settings than receiver modbus (registration, heartbeat, timeouts, max_connections and tls must be the same for one endpoint)")

	da := dtutest.Dial(t, cfg.Endpoint, dtutest.Options{Registration: []byte("a")})
	db := dtutest.Dial(t, cfg.Endpoint, dtutest.Options{Registration: []byte("b")})
	require.Eventually(t, func() bool { return a.Connected("a") && a.Connected("b") }, 5*time.Second, time.Millisecond)

	leaveB()
	<-db.Closed() // its user is gone: the session ends
	assert.False(t, a.Connected("b"))
	assert.False(t, da.IsClosed())
	db2 := dtutest.Dial(t, cfg.Endpoint, dtutest.Options{Registration: []byte("b")})
	<-db2.Closed() // unknown now
	assert.Equal(t, uint64(1), a.Stats().Unknown)

	leaveA()
	leaveA() // once
	<-da.Closed()
	_, err = net.Dial("tcp", cfg.Endpoint)
	require.Error(t, err, "the last leave closes the port")

	// The endpoint is free again for a new first user.
	c, leaveC, err := reg.Join("receiver modbus", unstarted(t, other, "c"))
	require.NoError(t, err)
	assert.NotSame(t, a, c)
	leaveC()
}

// Port 0 is any free port: two users of 127.0.0.1:0 get listeners of their own.
func TestRegistryPortZeroNotShared(t *testing.T) {
	reg := NewRegistry()
	cfg := defaults(func(c *Config) { c.Endpoint = "127.0.0.1:0" })
	a, leaveA, err := reg.Join("x", unstarted(t, cfg, "a"))
	require.NoError(t, err)
	defer leaveA()
	b, leaveB, err := reg.Join("y", unstarted(t, cfg, "a"))
	require.NoError(t, err)
	defer leaveB()
	assert.NotEqual(t, a.Addr().String(), b.Addr().String())
}
