// Package sharedcomponent lets one receiver instance serve several pipelines: the metrics and the
// traces pipeline of a device receiver share one poller (one set of connections and schedules),
// keyed by the receiver's *Config, started once and shut down when the last user is done.
package sharedcomponent

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds the shared components of one factory, keyed by their config.
type Map[K comparable, V component.Component] struct {
	mu    sync.Mutex
	items map[K]*Component[V]
}

// NewMap returns an empty map.
func NewMap[K comparable, V component.Component]() *Map[K, V] {
	return &Map[K, V]{items: map[K]*Component[V]{}}
}

// LoadOrStore returns the component for key, creating it with create on first use.
func (m *Map[K, V]) LoadOrStore(key K, create func() (V, error)) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.items[key]; ok {
		return c, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{Value: v, remove: func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.items, key)
	}}
	m.items[key] = c
	return c, nil
}

// Component wraps a shared component: Start runs once for all users, Shutdown once after the last.
type Component[V component.Component] struct {
	Value V

	mu      sync.Mutex
	users   int
	started bool
	stopped bool
	remove  func()
}

// Start starts the component on its first call.
func (c *Component[V]) Start(ctx context.Context, host component.Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users++
	if c.started {
		return nil
	}
	c.started = true
	return c.Value.Start(ctx, host)
}

// Shutdown shuts the component down when its last started user shuts down (or at once when it was
// never started). Extra calls do nothing.
func (c *Component[V]) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	if c.users > 1 {
		c.users--
		return nil
	}
	c.stopped = true
	c.remove()
	return c.Value.Shutdown(ctx)
}
