package sharedcomponent

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

type counting struct {
	starts, shutdowns int
}

func (c *counting) Start(context.Context, component.Host) error { c.starts++; return nil }
func (c *counting) Shutdown(context.Context) error              { c.shutdowns++; return nil }

func TestSharedBetweenTwoPipelines(t *testing.T) {
	m := NewMap[string, *counting]()
	created := 0
	create := func() (*counting, error) { created++; return &counting{}, nil }
	a, err := m.LoadOrStore("cfg", create)
	require.NoError(t, err)
	b, err := m.LoadOrStore("cfg", create)
	require.NoError(t, err)
	assert.Same(t, a, b)
	assert.Equal(t, 1, created)

	host := componenttest.NewNopHost()
	require.NoError(t, a.Start(context.Background(), host))
	require.NoError(t, b.Start(context.Background(), host))
	assert.Equal(t, 1, a.Value.starts)
	require.NoError(t, a.Shutdown(context.Background()))
	assert.Equal(t, 0, a.Value.shutdowns, "still used by the other pipeline")
	require.NoError(t, b.Shutdown(context.Background()))
	require.NoError(t, b.Shutdown(context.Background()))
	assert.Equal(t, 1, a.Value.shutdowns)

	c, err := m.LoadOrStore("cfg", create)
	require.NoError(t, err)
	assert.NotSame(t, a, c, "a shut-down component is removed from the map")
}

func TestShutdownWithoutStart(t *testing.T) {
	m := NewMap[int, *counting]()
	c, err := m.LoadOrStore(1, func() (*counting, error) { return &counting{}, nil })
	require.NoError(t, err)
	require.NoError(t, c.Shutdown(context.Background()))
	assert.Equal(t, 1, c.Value.shutdowns)
}

func TestCreateError(t *testing.T) {
	m := NewMap[int, *counting]()
	_, err := m.LoadOrStore(1, func() (*counting, error) { return nil, errors.New("boom") })
	require.EqualError(t, err, "boom")
}
