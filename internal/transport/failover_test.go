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

func TestParseEndpoints(t *testing.T) {
	parse := func(raw string) (Endpoint, error) { return ParseEndpoint(raw, modbusSchemes...) }
	eps, errs := ParseEndpoints("c", []string{"rtu:///dev/ttyUSB0", "rtu:///dev/ttyUSB1"}, parse)
	assert.Empty(t, errs)
	assert.Equal(t, []Endpoint{
		{URL: "rtu:///dev/ttyUSB0", Scheme: "rtu", Address: "/dev/ttyUSB0", Serial: true},
		{URL: "rtu:///dev/ttyUSB1", Scheme: "rtu", Address: "/dev/ttyUSB1", Serial: true},
	}, eps)
	_, errs = ParseEndpoints("c", []string{"tcp://a:1", "rtuovertcp://b:1", "x://", "tcp://a:1"}, parse)
	if assert.Len(t, errs, 3) {
		assert.EqualError(t, errs[0], "c.endpoints[1]: rtuovertcp:// differs from endpoints[0]'s tcp:// (one connection, one protocol)")
		assert.EqualError(t, errs[1], `c.endpoints[2]: unknown scheme "x" in "x://" (want tcp, rtuovertcp, tcp+tls, rtu, ascii or asciiovertcp)`)
		assert.EqualError(t, errs[2], "c.endpoints[3]: a:1 is endpoints[0] already")
	}
}

// ResolveBackups: the endpoints' addresses and URLs in order with the failover defaults; without
// `endpoints:` no addresses; a bad endpoint and a bad key are each one error.
func TestResolveBackups(t *testing.T) {
	parse := func(raw string) (Endpoint, error) { return ParseEndpoint(raw, modbusSchemes...) }
	b, errs := ResolveBackups("c", "", []string{"tcp://a:1", "tcp://b:1"}, 0, 0, parse)
	assert.Empty(t, errs)
	assert.Equal(t, Backups{Addresses: []string{"a:1", "b:1"}, URLs: []string{"tcp://a:1", "tcp://b:1"},
		FailoverAfter: DefaultFailoverAfter, FailbackAfter: DefaultFailbackAfter}, b)

	b, errs = ResolveBackups("c", "tcp://a:1", nil, 0, 0, parse)
	assert.Empty(t, errs)
	assert.Nil(t, b.Addresses)

	_, errs = ResolveBackups("c", "", []string{"tcp://a:1", "x://"}, -1, 0, parse)
	assert.Len(t, errs, 2)
}
